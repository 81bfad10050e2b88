"""Find and cut off the instrument's data bar at the bottom of an SEM micrograph.

The data bar (a band of text and scale bar at the bottom of the frame) is found by
:func:`find_data_bar`: metadata when the vendor says where it is, else a detector looking for a
bottom band dominated by near-black / near-white pixels with a sharp edge at its top, else a
fixed fraction of the height. :func:`crop_data_bar` cuts it off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._metadata import SEMMetadata
from ._read import to_grey, to_unit

__all__ = ["BarCrop", "find_data_bar", "crop_data_bar"]


# Detection parameters of the data-bar detector (see ``_detect_bar``).
_DARK = 0.10  # a pixel <= this is "near-black"
_BRIGHT = 0.90  # a pixel >= this is "near-white"
_SEARCH_FRACTION = 0.25  # the bar lies within the bottom quarter of the frame
_BAND_MIN_MEAN = 0.80  # mean extreme-pixel fraction over the whole band
_BAND_ROW_MIN = 0.50  # a band row is "bar-like" when >= this fraction is extreme ...
_BAND_ROWS_BARLIKE = 0.85  # ... and at least this share of band rows are bar-like
_TOP_MIN_MEAN = 0.75  # the first rows of the band must be mostly extreme
_EDGE_MIN = 0.30  # extreme fraction must jump by at least this at the top edge
_ABOVE_ROW_MAX = 0.75  # the row just above the top is not mostly extreme
_INK_MIN = 0.005  # the band holds text: >= this share of its pixels is across mid-grey


@dataclass(frozen=True)
class BarCrop:
    """Where the data bar starts.

    Attributes
    ----------
    row : int
        First row of the data bar, i.e. the number of rows kept (``H`` when nothing is cut).
    method : str
        ``'metadata'``, ``'detected'``, ``'fraction'`` or ``'none'``.
    """

    row: int
    method: str


def _as_grey_float(image: np.ndarray) -> np.ndarray:
    """Any ``(H, W)`` / ``(H, W, C)`` image as a grey float32 ``(H, W)`` array (integers scaled to ``[0, 1]``)."""
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {arr.shape}")
    if arr.dtype == bool or np.issubdtype(arr.dtype, np.integer):
        arr = to_unit(arr)
    return to_grey(arr.astype(np.float32, copy=False))


def _detect_bar(grey: np.ndarray) -> int | None:
    """Top row of a bottom data bar, or ``None`` when there is no convincing one.

    Per row, the fraction of near-black or near-white pixels (``ext``) is computed for
    the bottom quarter of the frame. A candidate top row ``t`` must satisfy:

    * the band ``[t, H)`` is bar-like: mean ``ext`` >= 0.8 and >= 85 % of its rows have
      ``ext`` >= 0.5 (text and scale bar on a flat black or white fill);
    * its first ``k`` rows are mostly extreme (mean ``ext`` >= 0.75);
    * the ``k`` rows above ``t`` are not: ``ext`` jumps by >= 0.3 at ``t``;
    * the band carries text: on its bar-like rows >= 0.5 % of the pixels lie in the
      other half of the grey range than the fill (light text on black, dark text on
      white, sharp or blurred), so a plain black vacuum region is no bar;
    * the row just above ``t`` is not mostly extreme (``ext`` < 0.75).

    Among candidates the strongest edge wins. The top must lie in the bottom quarter
    with non-bar rows above it, so an all-dark or saturated frame gives ``None``.
    """
    h, w = grey.shape
    k = max(3, h // 200)
    min_rows = max(k, h // 100)
    lo = h - int(round(_SEARCH_FRACTION * h))
    start = max(lo - k, 0)
    if h - start < min_rows + k or w < 2:
        return None
    band = grey[start:]
    dark = (band <= _DARK).mean(axis=1)
    bright = (band >= _BRIGHT).mean(axis=1)
    ext = dark + bright  # (n,) fraction of extreme pixels per row
    n = ext.size
    csum = np.concatenate([[0.0], np.cumsum(ext)])
    barlike = ext >= _BAND_ROW_MIN
    # text shows as the other half of the grey range; counted on bar-like rows only
    upper = np.where(barlike, (band >= 0.5).mean(axis=1), 0.0)
    cupper = np.concatenate([[0.0], np.cumsum(upper)])
    cbar = np.concatenate([[0.0], np.cumsum(barlike)])
    # candidate tops (indices into ext): need k rows above inside the window
    t = np.arange(max(k, lo - start + 1), n - min_rows + 1)
    if t.size == 0:
        return None
    length = n - t
    band_mean = (csum[n] - csum[t]) / length
    band_barlike = (cbar[n] - cbar[t]) / length
    top_mean = (csum[t + k] - csum[t]) / k
    above_mean = (csum[t] - csum[t - k]) / k
    edge = top_mean - above_mean
    n_barlike = np.maximum(cbar[n] - cbar[t], 1.0)
    upper_share = (cupper[n] - cupper[t]) / n_barlike
    ink = np.minimum(upper_share, 1.0 - upper_share)
    ok = (
        (band_mean >= _BAND_MIN_MEAN)
        & (band_barlike >= _BAND_ROWS_BARLIKE)
        & (top_mean >= _TOP_MIN_MEAN)
        & (edge >= _EDGE_MIN)
        & (ink >= _INK_MIN)
        & (ext[t - 1] < _ABOVE_ROW_MAX)
    )
    if not ok.any():
        return None
    score = np.where(ok, edge, -np.inf)
    best = int(t[int(np.argmax(score))])
    return start + best


_METHODS = ("auto", "metadata", "detect", "fraction", "none")


def find_data_bar(
    image: np.ndarray,
    meta: SEMMetadata | None = None,
    method: str = "auto",
    fraction: float = 0.0667,
) -> BarCrop:
    """Find the first row of the instrument's data bar at the bottom of a micrograph.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` grey image (float in ``[0, 1]`` or integer), or ``(H, W, C)`` colour.
    meta : SEMMetadata, optional
        Its ``bar_top`` is used when known.
    method : {'auto', 'metadata', 'detect', 'fraction', 'none'}
        ``'auto'``: metadata, else detection, else ``fraction``. The others force one
        way; forced ``'metadata'`` or ``'detect'`` give ``BarCrop(H, 'none')`` when they
        find nothing.
    fraction : float
        Height fraction of the bar used by ``'fraction'`` (and the ``'auto'`` fallback).

    Returns
    -------
    BarCrop
        ``row`` is the number of rows to keep.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {arr.shape}")
    h = int(arr.shape[0])
    if method == "none":
        return BarCrop(h, "none")
    if method in ("auto", "metadata"):
        top = meta.bar_top if meta is not None else None
        if top is not None and 0 < int(top) <= h:
            return BarCrop(int(top), "metadata")
        if method == "metadata":
            return BarCrop(h, "none")
    if method in ("auto", "detect"):
        row = _detect_bar(_as_grey_float(arr))
        if row is not None:
            return BarCrop(row, "detected")
        if method == "detect":
            return BarCrop(h, "none")
    cut = int(round(fraction * h))
    return BarCrop(max(h - cut, 1), "fraction")


def crop_data_bar(
    image: np.ndarray,
    meta: SEMMetadata | None = None,
    method: str = "auto",
    fraction: float = 0.0667,
) -> tuple[np.ndarray, BarCrop]:
    """Cut the data bar off the bottom of an image.

    Parameters
    ----------
    image, meta, method, fraction
        As for :func:`find_data_bar`.

    Returns
    -------
    cropped : numpy.ndarray
        ``image[:crop.row]`` (a view).
    crop : BarCrop
        Where and how the cut was decided.
    """
    crop = find_data_bar(image, meta=meta, method=method, fraction=fraction)
    return np.asarray(image)[: crop.row], crop
