"""Small image adapters shared by the explain modules: unit range, grey, map resizing.

They are thin wrappers around the package's single definitions
(:func:`semcathode.io._read.to_grey`, :func:`semcathode.data._preprocess.resize`) that add
what the CAM code needs on top: integer/bool inputs scaled by their dtype, and a
nearest-neighbour path for masks.
"""

from __future__ import annotations

import numpy as np

from ..data._preprocess import resize
from ..io._read import to_grey, to_unit

__all__ = ["unit", "grey01", "resize_map", "fit_side"]


def unit(img: np.ndarray) -> np.ndarray:
    """float32 in [0, 1]: uint8 / 255, other integers by their dtype's range, bool as 0/1,
    floats NaN-cleaned and clipped (never min-max stretched)."""
    img = np.asarray(img)
    if np.issubdtype(img.dtype, np.floating):  # a CAM or overlay value: clipped, not stretched
        return np.clip(np.nan_to_num(img.astype(np.float32)), 0.0, 1.0)
    return to_unit(img)  # integers by their dtype's range, bool as 0/1


def grey01(image: np.ndarray) -> np.ndarray:
    """A float32 grey image in [0, 1] from grey/RGB(A), float or integer input.

    The values are first brought to [0, 1] by :func:`unit` (``to_grey`` expects that), then
    :func:`semcathode.io._read.to_grey` takes the luminance of colour input.
    """
    return to_grey(unit(image))


def resize_map(arr: np.ndarray, shape: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize a 2-D map to ``shape``: :func:`semcathode.data._preprocess.resize` (bilinear), or
    nearest neighbour for masks; the same shape is returned unchanged (as float32)."""
    arr = np.asarray(arr, np.float32)
    shape = (int(shape[0]), int(shape[1]))
    if arr.shape == shape:
        return arr
    if not nearest:
        return resize(arr, shape)
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * arr.shape[0] / shape[0]).astype(np.int64), arr.shape[0] - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * arr.shape[1] / shape[1]).astype(np.int64), arr.shape[1] - 1)
    return arr[np.ix_(rows, cols)]


def fit_side(img: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale a 2-D image (:func:`resize_map`) so that its longer side is at most ``max_side``
    pixels; None, 0 or an image small enough returns it unchanged."""
    if max_side and max(img.shape) > max_side:
        f = max_side / max(img.shape)
        return resize_map(img, (max(1, round(img.shape[0] * f)), max(1, round(img.shape[1] * f))))
    return img
