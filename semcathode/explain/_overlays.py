"""Heat-map overlays of a CAM on its micrograph, in memory and as image files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._files import atomic_save
from ._images import fit_side, grey01, resize_map, unit

__all__ = ["overlay", "save_overlay"]


def overlay(image: np.ndarray, cam: np.ndarray, opacity: float = 0.45, cmap: str = "jet") -> np.ndarray:
    """Blend a CAM heat map over a micrograph, at the micrograph's own resolution.

    Parameters
    ----------
    image : numpy.ndarray
        Grey ``(H, W)`` or RGB(A) ``(H, W, 3|4)``; float in [0, 1] or integer.
    cam : numpy.ndarray
        ``(h, w)`` map in [0, 1], any resolution (resized bilinearly to ``(H, W)``).
    opacity : float
        Weight of the heat map, in [0, 1].
    cmap : str
        Matplotlib colour map name.

    Returns
    -------
    numpy.ndarray
        uint8 RGB ``(H, W, 3)``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((4, 6), 0.5)
    >>> out = overlay(img, np.eye(2), opacity=0.4)
    >>> out.shape, out.dtype.name
    ((4, 6, 3), 'uint8')
    >>> overlay(img, np.eye(2), opacity=0.0)[0, 0].tolist()  # no heat: the grey image
    [128, 128, 128]
    """
    import matplotlib

    if not 0.0 <= float(opacity) <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        rgb = np.repeat(unit(img)[..., None], 3, axis=-1)
    elif img.ndim == 3 and img.shape[-1] in (3, 4):
        rgb = unit(img[..., :3])
    else:
        raise ValueError(f"image must be (H, W) or (H, W, 3|4), got shape {img.shape}")
    cam = np.asarray(cam, np.float32)
    if cam.ndim != 2:
        raise ValueError(f"cam must be 2-D, got shape {cam.shape}")
    cam = np.clip(np.nan_to_num(resize_map(cam, rgb.shape[:2])), 0.0, 1.0)
    heat = matplotlib.colormaps[cmap](cam)[..., :3].astype(np.float32)
    out = (1.0 - opacity) * rgb + opacity * heat
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def _image_writer(rgb: np.ndarray, fmt: str) -> Callable[[str], Any]:
    from PIL import Image

    kwargs = {"quality": 88} if fmt == "JPEG" else {}
    return lambda tmp: Image.fromarray(rgb).save(tmp, format=fmt, **kwargs)


def save_overlay(path: str | Path, image: np.ndarray, cam: np.ndarray, opacity: float = 0.45,
                 max_side: int | None = None) -> Path:
    """Write :func:`overlay` ``(image, cam, opacity)`` as PNG (or JPEG for ``.jpg``), atomically.

    Parameters
    ----------
    path : str or Path
        Output file; its folder is created if needed.
    image : numpy.ndarray
        The micrograph (grey or RGB, float in [0, 1] or integer; colour is made grey).
    cam : numpy.ndarray
        ``(h, w)`` map in [0, 1], any resolution.
    opacity : float
        Weight of the heat map, in [0, 1].
    max_side : int, optional
        Downscale the micrograph (and the CAM with it) so that its longer side is at most this
        many pixels (for reports); None keeps the micrograph's own resolution.

    Returns
    -------
    Path
        ``path`` (written through a temporary file in the same folder and ``os.replace``).
    """
    grey = fit_side(grey01(image), max_side)
    fmt = "JPEG" if Path(path).suffix.lower() in (".jpg", ".jpeg") else "PNG"
    return atomic_save(path, _image_writer(overlay(grey, cam, opacity=opacity), fmt))
