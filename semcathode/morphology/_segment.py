"""Secondary particles of a micrograph, segmented with every length in µm.

:func:`segment_particles`: bring the bar-free grey micrograph to a working pixel size, denoise it,
threshold it (Otsu, or, when the illumination is uneven, Otsu on the micrograph minus its smooth
local mean over ``local_block_um``: a local threshold; the choice is made per micrograph and stated), split touching particles with a marker-based watershed on the distance
transform (a marker is a distance maximum at least ``marker_h_um`` above its saddle) and drop the
regions under ``min_diameter_um``. Nothing here uses a trained model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

from ..config._sections import MorphologyConfig

__all__ = ["Segmentation", "segment_particles", "working_pixel_size"]

#: Background scale (µm) over which the illumination's unevenness is measured.
_BACKGROUND_UM = 25.0


@dataclass
class Segmentation:
    """Labelled particles of one micrograph.

    Attributes
    ----------
    labels : numpy.ndarray
        int32 ``(h, w)`` at the working pixel size: 0 background, 1..n one per particle.
    image : numpy.ndarray
        float32 ``(h, w)`` grey micrograph at the working pixel size (not denoised), in [0, 1].
    pixel_size_um : float
        µm per pixel of ``labels`` and ``image``.
    source_pixel_size_um : float
        µm per pixel of the micrograph as given.
    threshold_method : str
        ``'otsu'`` or ``'local'``: the one used for this micrograph.
    threshold : float
        The Otsu level, or the mean of the local threshold surface.
    unevenness : float
        Std of the background (the image smoothed over 25 µm) over the image's std: what ``auto``
        compared with ``uneven_ratio``.
    settings : MorphologyConfig
        The settings used.
    """

    labels: np.ndarray
    image: np.ndarray
    pixel_size_um: float
    source_pixel_size_um: float
    threshold_method: str
    threshold: float
    unevenness: float
    settings: MorphologyConfig

    @property
    def n_particles(self) -> int:
        """Particles labelled."""
        return int(self.labels.max())

    def stated(self) -> dict[str, float | str]:
        """The choices and settings of this segmentation, as a flat row (lengths in µm)."""
        row: dict[str, float | str] = {"threshold_method": self.threshold_method, "threshold": self.threshold,
                                       "unevenness": self.unevenness, "work_pixel_size_um": self.pixel_size_um,
                                       "pixel_size_um": self.source_pixel_size_um}
        row.update({f"setting_{k}": v for k, v in asdict(self.settings).items()})
        return row


def working_pixel_size(pixel_size_um: float, settings: MorphologyConfig | None = None) -> float:
    """µm per pixel at which a micrograph of ``pixel_size_um`` is segmented.

    The coarser of the micrograph's own pixel and ``settings.work_um`` (0: always the
    micrograph's own): finer micrographs are downsampled, coarser ones are never upsampled.

    Parameters
    ----------
    pixel_size_um : float
    settings : MorphologyConfig, optional

    Returns
    -------
    float

    Examples
    --------
    >>> working_pixel_size(0.2625), working_pixel_size(1.0)
    (0.5, 1.0)
    """
    s = settings or MorphologyConfig()
    return float(max(pixel_size_um, s.work_um)) if s.work_um > 0 else float(pixel_size_um)


def _check(image: np.ndarray, pixel_size_um: float) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 3:
        img = img[..., :3].mean(-1)
    if img.ndim != 2 or min(img.shape) < 8:
        raise ValueError(f"expected a grey (H, W) micrograph of at least 8 x 8 px, got shape {np.shape(image)}")
    if not (np.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise ValueError(f"pixel size must be a positive number of µm, got {pixel_size_um!r}")
    if np.issubdtype(img.dtype, np.integer):
        img = img / float(np.iinfo(img.dtype).max)
    img = img.astype(np.float32)
    if not np.isfinite(img).all():
        raise ValueError("the micrograph holds NaN or infinite pixels")
    return img


def _resample(img: np.ndarray, factor: float) -> np.ndarray:
    """``img`` scaled by ``factor`` (< 1: smaller) with an anti-aliasing area average."""
    if abs(factor - 1.0) < 1e-6:
        return img
    from skimage.transform import rescale

    return rescale(img, factor, order=1, anti_aliasing=factor < 1, preserve_range=True).astype(np.float32)


def _background(g: np.ndarray, px: float) -> np.ndarray:
    """The illumination: ``g`` smoothed over :data:`_BACKGROUND_UM` (computed on block means, for speed)."""
    k = max(1, int(_BACKGROUND_UM / px / 8))
    h, w = (g.shape[0] // k) * k, (g.shape[1] // k) * k
    small = g[:h, :w].reshape(h // k, k, w // k, k).mean((1, 3)) if k > 1 else g
    return ndi.gaussian_filter(small, _BACKGROUND_UM / px / k)


def _threshold(g: np.ndarray, px: float, s: MorphologyConfig) -> tuple[np.ndarray, str, float, float]:
    from skimage.filters import threshold_otsu

    unevenness = float(_background(g, px).std() / (g.std() + 1e-9))
    method = s.threshold if s.threshold != "auto" else ("local" if unevenness > s.uneven_ratio else "otsu")
    if method == "local":  # Otsu on the micrograph flattened by its illumination (a smooth local mean)
        surface = ndi.gaussian_filter(g, s.local_block_um / px / 2)
        flat = g - surface
        if np.ptp(flat) < 1e-6:
            return np.zeros(g.shape, bool), method, float(g.mean()), unevenness
        level = float(threshold_otsu(flat))
        return flat > level, method, float((surface + level).mean()), unevenness
    if np.ptp(g) < 1e-6:
        return np.zeros(g.shape, bool), method, float(g.mean()), unevenness
    level = float(threshold_otsu(g))
    return g > level, method, level, unevenness


def _drop_small(labels: np.ndarray, min_px: float) -> np.ndarray:
    from skimage.segmentation import relabel_sequential

    sizes = np.bincount(labels.ravel())
    small = sizes < min_px
    small[0] = False
    labels = np.where(small[labels], 0, labels)
    return relabel_sequential(labels)[0].astype(np.int32)


def segment_particles(image: np.ndarray, pixel_size_um: float,
                      settings: MorphologyConfig | None = None) -> Segmentation:
    """Segment the secondary particles of a bar-free grey micrograph.

    Parameters
    ----------
    image : numpy.ndarray
        Grey ``(H, W)`` (float in [0, 1] or integer; RGB is averaged), the data bar cut off.
    pixel_size_um : float
        µm per pixel of ``image``.
    settings : MorphologyConfig, optional
        Lengths in µm (the defaults when omitted).

    Returns
    -------
    Segmentation

    Raises
    ------
    ValueError
        Not a 2-D image of at least 8 x 8 px, a pixel size that is not a positive number, or
        non-finite pixels.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:200, :200]
    >>> img = 0.2 + 0.6 * ((yy - 60) ** 2 + (xx - 60) ** 2 < 30 ** 2) + 0.6 * ((yy - 140) ** 2 + (xx - 140) ** 2 < 20 ** 2)
    >>> seg = segment_particles(img, 0.5)
    >>> seg.n_particles, seg.threshold_method
    (2, 'otsu')
    """
    from skimage.measure import label
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    s = settings or MorphologyConfig()
    img = _check(image, pixel_size_um)
    px = working_pixel_size(pixel_size_um, s)
    img = np.clip(_resample(img, pixel_size_um / px), 0.0, 1.0)
    g = ndi.gaussian_filter(img, s.denoise_um / px) if s.denoise_um > 0 else img
    mask, method, level, unevenness = _threshold(g, px, s)
    min_px = np.pi * (s.min_diameter_um / 2 / px) ** 2
    mask = _drop_small(label(~mask, connectivity=1), min_px) == 0  # fill the holes smaller than a particle
    mask = _drop_small(label(mask, connectivity=1), min_px) > 0  # (not the gaps between particles)
    # µm to the nearest background pixel, the micrograph mirrored at its edges: a particle cut by the
    # border keeps one maximum (outside pixels counted as particle would move it onto the edge)
    pad = int(min(mask.shape[0] - 1, mask.shape[1] - 1, np.ceil(_BACKGROUND_UM / px)))
    dist = ndi.distance_transform_edt(np.pad(mask, pad, mode="reflect"))[pad:pad + mask.shape[0], pad:pad + mask.shape[1]] * px
    dist = ndi.gaussian_filter(dist, 0.5)  # half a pixel: the integer steps of the transform, not its saddles
    markers = label(h_maxima(dist, s.marker_h_um) & mask)
    labels = watershed(-dist, markers, mask=mask)
    labels = _drop_small(labels.astype(np.int32), min_px)
    return Segmentation(labels=labels, image=img, pixel_size_um=px, source_pixel_size_um=float(pixel_size_um),
                        threshold_method=method, threshold=level, unevenness=unevenness, settings=s)
