"""Bar-free micrograph -> network input (resize or tiles), with an on-disk cache.

The cache is keyed by (file sha256, bar row, acquisition shift, pre-processing parameters),
so later epochs and later runs never decode the large source images again. Cached entries
are uint8 ``.npy`` arrays: ``(H, W)`` in resize mode, ``(n_tiles, T, T)`` in tile mode.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ._files import atomic_save
from .io import crop_data_bar, read_sem

__all__ = [
    "PreprocessParams",
    "default_cache_dir",
    "load_bar_free",
    "preprocess_image",
    "PreprocessCache",
    "build_items",
]


@dataclass(frozen=True)
class PreprocessParams:
    """Pre-processing parameters (part of the cache key).

    Attributes
    ----------
    mode : str
        ``resize``: the whole bar-free frame to ``size`` x ``size`` (the paper's input);
        ``tiles``: ``size``-px tiles cut at ``tile_scale_um`` µm/px (0 = native scale).
    size : int
        Output side in pixels.
    tile_scale_um : float
        Tile mode only: resample to this pixel size first (needs the image's pixel size).
    tile_stride : float
        Tile mode only: stride as a fraction of ``size`` (1 = no overlap).
    """

    mode: str = "resize"
    size: int = 224
    tile_scale_um: float = 0.0
    tile_stride: float = 1.0

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def default_cache_dir() -> Path:
    """``$SEMCATHODE_CACHE`` or ``~/.cache/semcathode``."""
    return Path(os.environ.get("SEMCATHODE_CACHE", Path.home() / ".cache" / "semcathode"))


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a float [0,1] image to (H, W) with an antialiased filter."""
    h, w = shape
    im = Image.fromarray(img.astype(np.float32), mode="F")
    return np.asarray(im.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0), dtype=np.float32)


def _image_seed(sha256: str) -> int:
    return int(sha256[:8], 16)


def load_bar_free(row: pd.Series | dict, apply_shift: bool = True) -> np.ndarray:
    """Read a manifest row's micrograph, drop the data bar, apply its acquisition shift.

    Parameters
    ----------
    row : Series or dict
        Manifest row with ``path`` and ``bar_row`` (and optionally ``shift``: JSON of one
        :class:`~semcathode.shift.AcquisitionShift` dict or of a list applied in order; ``sha256``).
    apply_shift : bool
        Apply the row's ``shift`` (simulated target domain) when present.

    Returns
    -------
    ndarray
        float32 (H, W) in [0, 1].
    """
    sem = read_sem(row["path"])
    bar_row = row.get("bar_row") if hasattr(row, "get") else None
    if bar_row is not None and not pd.isna(bar_row):
        img = sem.image[: int(bar_row)]
    else:
        img, _ = crop_data_bar(sem.image, sem.meta)
    shift = row.get("shift") if hasattr(row, "get") else None
    if apply_shift and isinstance(shift, str) and shift:
        from .shift import AcquisitionShift

        seed = _image_seed(str(row.get("sha256", "0" * 8)))
        spec = json.loads(shift)
        for k, d in enumerate(spec if isinstance(spec, list) else [spec]):  # a list = shifts in sequence
            img = AcquisitionShift.from_dict(d).apply(img, rng=seed + k)
    return img.astype(np.float32)


def preprocess_image(img: np.ndarray, params: PreprocessParams, pixel_size_um: float | None = None) -> np.ndarray:
    """Turn a bar-free float image into uint8 network input(s).

    Returns
    -------
    ndarray
        uint8 ``(size, size)`` in resize mode, ``(n_tiles, size, size)`` in tile mode.
    """
    s = params.size
    if params.mode == "resize":
        return _to_uint8(_resize(img, (s, s)))
    if params.mode != "tiles":
        raise ValueError(f"unknown pre-processing mode {params.mode!r}: use 'resize' or 'tiles'")
    if params.tile_scale_um:
        if not pixel_size_um or np.isnan(pixel_size_um):
            raise ValueError("tile_scale_um is set but the image has no known pixel size")
        f = pixel_size_um / params.tile_scale_um
        img = _resize(img, (max(s, round(img.shape[0] * f)), max(s, round(img.shape[1] * f))))
    h, w = img.shape
    if h < s or w < s:
        img = _resize(img, (max(h, s), max(w, s)))
        h, w = img.shape
    step = max(1, int(round(s * params.tile_stride)))
    ys = list(range(0, h - s + 1, step)) or [0]
    xs = list(range(0, w - s + 1, step)) or [0]
    tiles = [img[y : y + s, x : x + s] for y in ys for x in xs]
    return _to_uint8(np.stack(tiles))


class PreprocessCache:
    """On-disk cache of pre-processed micrographs.

    Parameters
    ----------
    root : str or Path, optional
        Cache folder (default :func:`default_cache_dir` / ``preprocessed``).
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else default_cache_dir() / "preprocessed"
        self.root.mkdir(parents=True, exist_ok=True)

    def key(self, row: pd.Series | dict, params: PreprocessParams) -> str:
        shift = row.get("shift", "") if hasattr(row, "get") else ""
        shift = shift if isinstance(shift, str) else ""
        parts = [str(row["sha256"]), str(row.get("bar_row", "")), shift, params.key()]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    def path(self, row: pd.Series | dict, params: PreprocessParams) -> Path:
        k = self.key(row, params)
        return self.root / k[:2] / f"{k}.npy"

    def get(self, row: pd.Series | dict, params: PreprocessParams) -> np.ndarray:
        """Cached array for ``row`` (computed and stored on a miss)."""
        p = self.path(row, params)
        if p.exists():
            try:
                return np.load(p)
            except (ValueError, OSError, EOFError):
                p.unlink(missing_ok=True)  # corrupt entry: rebuild
        arr = preprocess_image(load_bar_free(row), params, _float_or_none(row.get("pixel_size_um")))
        atomic_save(p, lambda tmp: _save_npy(tmp, arr))
        return arr

    def warm(self, df: pd.DataFrame, params: PreprocessParams, workers: int = 2) -> list[Path]:
        """Make sure every row of ``df`` is cached; returns the cache paths in row order."""
        rows = [r for _, r in df.iterrows()]
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(lambda r: self.get(r, params), rows))
        return [self.path(r, params) for r in rows]


def _save_npy(tmp: str, arr: np.ndarray) -> None:
    with open(tmp, "wb") as fh:
        np.save(fh, arr)


def _float_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(f) else f


def build_items(
    df: pd.DataFrame, params: PreprocessParams, cache: PreprocessCache | None = None, workers: int = 2
) -> pd.DataFrame:
    """Pre-process (through the cache) and list the network inputs of a manifest.

    Parameters
    ----------
    df : DataFrame
        Manifest rows (with ``split``/``domain`` when split).
    params : PreprocessParams
    cache : PreprocessCache, optional

    Returns
    -------
    DataFrame
        One row per input (per image in resize mode, per tile in tile mode): the manifest
        columns plus ``image_id`` (manifest index), ``tile`` and ``cache_path``.
    """
    cache = cache or PreprocessCache()
    paths = cache.warm(df, params, workers=workers)
    out = df.copy()
    out["image_id"] = df.index
    out["cache_path"] = [str(p) for p in paths]
    if params.mode == "resize":
        out["tile"] = -1
        return out.reset_index(drop=True)
    counts = [np.load(p, mmap_mode="r").shape[0] for p in paths]
    out = out.loc[out.index.repeat(counts)].copy()
    out["tile"] = np.concatenate([np.arange(c) for c in counts]) if counts else []
    return out.reset_index(drop=True)
