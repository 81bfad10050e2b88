"""Pixel arithmetic of the SEM readers: scaling to ``[0, 1]``, luminance, the finite-value check.

Private to :mod:`semcathode.io`; :func:`to_unit` and :func:`to_grey` are public through
:mod:`semcathode.io._read`. Scaling never overflows (float images holding values near the float32
limits are scaled in halves) and treats NaN / infinite samples deterministically.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ._guards import SEMReadError, SEMReadWarning

__all__ = ["to_unit", "to_grey", "finite_check"]

#: ITU-R BT.601 luma weights (the same as Pillow's ``convert("L")``).
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def to_unit(arr: np.ndarray, max_value: float | None = None) -> np.ndarray:
    """Scale an array to float32 ``[0, 1]``: integers by their range, floats kept or min-max scaled.

    Parameters
    ----------
    arr : numpy.ndarray
        Pixel values of any shape: bool, integer or float.
    max_value : float, optional
        The value that maps to 1 for integer input (e.g. ``4095`` for 12-bit samples);
        default the dtype's maximum.

    Returns
    -------
    numpy.ndarray
        ``float32``, same shape: integers divided by their range and clipped; floats kept when
        already in ``[0, 1]``, else min-max scaled (without overflow, even for values near the
        float32 limits). Non-finite floats take the nearest finite extreme: NaN and -inf the
        minimum, +inf the maximum; an array without any finite value gives zeros.

    Examples
    --------
    >>> import numpy as np
    >>> to_unit(np.array([0, 51, 255], dtype=np.uint8)).tolist()
    [0.0, 0.20000000298023224, 1.0]
    >>> to_unit(np.array([-3e38, 0.0, 3e38, np.nan], dtype=np.float32)).tolist()
    [0.0, 0.5, 1.0, 0.0]
    """
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        if max_value is None:
            max_value = float(np.iinfo(arr.dtype).max)
        out = arr.astype(np.float32) / np.float32(max_value)
        return np.clip(out, 0.0, 1.0, out=out)
    if arr.size == 0:
        return arr.astype(np.float32)
    work = np.result_type(arr.dtype, np.float32).type  # float64 input is scaled in float64
    finite = np.isfinite(arr)
    all_finite = bool(finite.all())
    if not all_finite and not finite.any():
        return np.zeros(arr.shape, np.float32)
    where = True if all_finite else finite
    lo = work(np.min(arr, where=where, initial=np.inf))
    hi = work(np.max(arr, where=where, initial=-np.inf))
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        if lo >= 0.0 and hi <= 1.0:
            out = arr.astype(np.float32)
            return out if all_finite else np.nan_to_num(out, copy=False, nan=lo, posinf=hi, neginf=lo)
        if not hi > lo:
            return np.zeros(arr.shape, np.float32)
        # halves: (x - lo) and (hi - lo) may overflow near the float limits, their halves cannot
        half = np.multiply(arr, work(0.5), dtype=work)
        if not all_finite:
            np.nan_to_num(half, copy=False, nan=lo / 2, posinf=hi / 2, neginf=lo / 2)
        half -= lo / 2
        half /= hi / 2 - lo / 2
    out = half.astype(np.float32, copy=False)
    return np.clip(out, 0.0, 1.0, out=out)


def to_grey(arr: np.ndarray) -> np.ndarray:
    """Luminance of an ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` float array (alpha dropped).

    Parameters
    ----------
    arr : numpy.ndarray
        Image with values already scaled to ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        ``float32`` ``(H, W)``. For grey stored as RGB the result equals the channel.
    """
    if arr.ndim == 2:
        return arr.astype(np.float32, copy=False)
    if arr.ndim == 3 and arr.shape[2] == 1:
        return arr[..., 0].astype(np.float32, copy=False)
    if arr.ndim == 3 and arr.shape[2] == 2:  # grey + alpha
        return arr[..., 0].astype(np.float32, copy=False)
    if arr.ndim == 3 and arr.shape[2] >= 3:
        rgb = arr[..., :3].astype(np.float32, copy=False)
        grey = rgb @ _LUMA
        return np.clip(grey, 0.0, 1.0, out=grey)
    raise ValueError(f"cannot make a grey image from an array of shape {arr.shape}")


def finite_check(path: Path, data: np.ndarray) -> None:
    """Refuse a float image without a finite sample; warn (once) when some are NaN or infinite.

    Parameters
    ----------
    path : Path
        The file, named in the message.
    data : numpy.ndarray
        The decoded samples; only float (and complex) arrays are looked at.

    Raises
    ------
    SEMReadError
        Complex samples, or not one finite float sample.

    Warns
    -----
    SEMReadWarning
        Some (not all) float samples are NaN or infinite.
    """
    if data.dtype.kind == "c":
        raise SEMReadError(path, f"complex samples ({data.dtype}) are not an SEM image")
    if data.dtype.kind != "f":
        return
    n_finite = int(np.count_nonzero(np.isfinite(data)))
    if n_finite == 0:
        raise SEMReadError(path, f"all {data.size:,} float samples are NaN or infinite: no image in it")
    if n_finite < data.size:
        warnings.warn(
            f"{path}: {data.size - n_finite:,} of {data.size:,} float samples are NaN or infinite; "
            "they take the nearest finite extreme (NaN the minimum)",
            SEMReadWarning,
            stacklevel=4,
        )
