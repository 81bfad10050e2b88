"""Limits on what bringing one micrograph to a model's scale may cost, checked before resampling
(private to :mod:`semcathode.data`; :func:`semcathode.data._preprocess.preprocess_image` runs the check).

A model at 1.0 µm/px given a frame whose metadata says 14 µm/px would upsample it ×14 (a
240 KB JPEG became 55,554 tiles, 3.5 GB); at 99.75 µm/px the resampling alone runs out of
memory. :func:`check_resample` estimates the resampled size and the tile count from the frame's
size and the scale factor (nothing is allocated) and refuses, naming the file, an upsampling
beyond :data:`MAX_UPSAMPLE`, a resampled frame beyond the image-pixel limit of
:func:`semcathode.io._read.max_image_pixels`, or more than :data:`MAX_TILES` tiles.
"""

from __future__ import annotations

import math
from typing import Any

from ..config._limits import env_limit
from ._tiles import grid_size

__all__ = ["MAX_TILES", "MAX_UPSAMPLE", "ResampleLimitError", "plan_resample", "check_resample"]

#: Most tiles one micrograph may be cut into; ``$SEMCATHODE_MAX_TILES`` (0 = no limit).
MAX_TILES = 1000
#: Largest upsampling from a file's pixel size to the model's; ``$SEMCATHODE_MAX_UPSAMPLE`` (0 = no limit).
MAX_UPSAMPLE = 8.0


class ResampleLimitError(ValueError):
    """Bringing a micrograph to the model's scale would exceed a limit; the message names the file."""


def plan_resample(shape: tuple[int, int], pixel_size_um: float | None, params: Any) -> tuple[float, float, tuple[int, int], int]:
    """What :func:`semcathode.data._preprocess.preprocess_image` would make of a frame, without doing it.

    Parameters
    ----------
    shape : (H, W)
        The bar-free frame.
    pixel_size_um : float or None
        Its pixel size.
    params : PreprocessParams
        The model's pre-processing (``mode``, ``size``, ``scale_um``, ``tile_stride``).

    Returns
    -------
    scale_factor : float
        Pixel size / model scale (1.0 when the scale is kept or unknown).
    factor : float
        The resampling factor, including the enlargement that brings both sides to ``size``.
    shape : (H', W')
        The resampled frame.
    tiles : int
        Tiles of its grid.

    Examples
    --------
    >>> from semcathode.data._preprocess import PreprocessParams
    >>> plan_resample((960, 1280), 14.0, PreprocessParams("scale", 64, 1.0))
    (14.0, 14.0, (13440, 17920), 58800)
    """
    h, w = int(shape[0]), int(shape[1])
    size = int(params.size)
    if params.mode != "scale":
        return 1.0, size / min(h, w), (size, size), 1
    f_scale = 1.0
    if params.scale_um and pixel_size_um is not None and math.isfinite(pixel_size_um) and pixel_size_um > 0:
        f_scale = float(pixel_size_um) / float(params.scale_um)
    f = max(f_scale, size / h, size / w)
    out = (max(size, round(h * f)), max(size, round(w * f))) if abs(f - 1.0) >= 1e-9 else (h, w)
    stride = float(getattr(params, "tile_stride", 1.0))
    return f_scale, f, out, grid_size(out, size, stride)


def check_resample(name: str, shape: tuple[int, int], pixel_size_um: float | None, params: Any) -> None:
    """Refuse a frame whose resampling to the model's scale would exceed a limit.

    Parameters
    ----------
    name : str
        Named in the error (the file).
    shape : (H, W)
        The bar-free frame.
    pixel_size_um : float or None
        Its pixel size.
    params : PreprocessParams
        The model's pre-processing.

    Raises
    ------
    ResampleLimitError
        Upsampling above :data:`MAX_UPSAMPLE`, a resampled frame above the image-pixel limit,
        or more than :data:`MAX_TILES` tiles (each raised with its environment variable).
    """
    from ..io._read import max_image_pixels

    f_scale, f, (h, w), tiles = plan_resample(shape, pixel_size_um, params)
    up = float(env_limit("SEMCATHODE_MAX_UPSAMPLE", MAX_UPSAMPLE, float))
    if up and f_scale > up:
        raise ResampleLimitError(
            f"{name}: its pixel size {pixel_size_um:g} µm/px would be upsampled ×{f_scale:.1f} to the model's "
            f"{params.scale_um:g} µm/px ({w}×{h} px), more than the limit of ×{up:g} (SEMCATHODE_MAX_UPSAMPLE); "
            "check the file's pixel size (its metadata, or --pixel-size)")
    pixels = max_image_pixels()
    if pixels and h * w > pixels:
        raise ResampleLimitError(
            f"{name}: would be resampled ×{f:.1f} to {w}×{h} px ({h * w:,} pixels), more than the limit of "
            f"{pixels:,} pixels (SEMCATHODE_MAX_IMAGE_PIXELS)")
    limit = int(env_limit("SEMCATHODE_MAX_TILES", MAX_TILES))
    if limit and tiles > limit:
        raise ResampleLimitError(
            f"{name}: would be resampled ×{f:.1f} to {w}×{h} px = {tiles:,} tiles of {params.size} px; limit "
            f"{limit:,} tiles per image (SEMCATHODE_MAX_TILES)")
