"""Particle outlines drawn over the micrograph, to check a segmentation by looking at it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._files import atomic_save
from ._measure import _touching
from ._segment import Segmentation

__all__ = ["outline_overlay", "outline_mask", "save_outlines"]

#: Outline colours: particles in the size statistics, and those cut by the border (left out).
SIZED_RGB = (255, 60, 30)
BORDER_RGB = (255, 210, 0)


def outline_mask(seg: Segmentation, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Outline pixels of the segmented particles: int8 ``(H, W)``, 0 none, 1 sized, 2 touching the border.

    Parameters
    ----------
    seg : Segmentation
    shape : (int, int), optional
        Draw at this size (the label map is scaled with nearest neighbours), e.g. the micrograph's
        own resolution; default the working resolution.

    Returns
    -------
    numpy.ndarray
    """
    from skimage.segmentation import find_boundaries
    from skimage.transform import resize

    labels = seg.labels
    if shape is not None and tuple(shape) != labels.shape:
        labels = resize(labels, shape, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
    edge = find_boundaries(labels, mode="inner")
    out = np.zeros(labels.shape, np.int8)
    out[edge] = np.where(_touching(labels)[labels[edge]], 2, 1)
    return out


def outline_overlay(grey: np.ndarray, seg: Segmentation) -> np.ndarray:
    """The micrograph in grey with its particle outlines in colour (red: sized, yellow: cut by the border).

    Parameters
    ----------
    grey : numpy.ndarray
        The bar-free micrograph ``(H, W)`` in [0, 1] at any resolution (usually its own).
    seg : Segmentation
        Its segmentation.

    Returns
    -------
    numpy.ndarray
        uint8 RGB ``(H, W, 3)``.

    Examples
    --------
    >>> import numpy as np
    >>> from semcathode.morphology import segment_particles
    >>> yy, xx = np.mgrid[:120, :120]
    >>> img = 0.2 + 0.6 * ((yy - 60) ** 2 + (xx - 60) ** 2 < 25 ** 2)
    >>> rgb = outline_overlay(img, segment_particles(img, 0.5))
    >>> rgb.shape, bool((rgb == (255, 60, 30)).all(-1).any())
    ((120, 120, 3), True)
    """
    g = np.asarray(grey, np.float32)
    if g.ndim == 3:
        g = g[..., :3].mean(-1)
    rgb = np.repeat(np.clip(np.rint(g * 255), 0, 255).astype(np.uint8)[..., None], 3, -1)
    lines = outline_mask(seg, g.shape)
    rgb[lines == 1] = SIZED_RGB
    rgb[lines == 2] = BORDER_RGB
    return rgb


def save_outlines(path: str | Path, grey: np.ndarray, seg: Segmentation) -> Path:
    """Write :func:`outline_overlay` as PNG, atomically (a temporary file in the same folder, then renamed).

    Parameters
    ----------
    path : str or Path
        The PNG; its folder is created if needed.
    grey, seg
        As for :func:`outline_overlay`.

    Returns
    -------
    Path
    """
    from PIL import Image

    rgb = outline_overlay(grey, seg)
    return atomic_save(path, lambda tmp: Image.fromarray(rgb).save(tmp, format="PNG"))
