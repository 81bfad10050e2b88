"""Bar-free micrograph -> cached array at the model's physical scale (or resized), and its tile grid.

The cache is keyed by (file sha256, bar row, acquisition shift, pre-processing parameters),
so later epochs and later runs never decode the large source images again. Cached entries
are uint8 ``.npy`` arrays: in scale mode the whole bar-free frame at ``scale_um`` µm/px, in
resize mode the ``size`` x ``size`` thumbnail. Network inputs are crops of it
(:mod:`semcathode.data._inputs`): random ones for training, a tile grid over the whole frame
for evaluation.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from .._files import atomic_save
from ..config import cache_root
from ..io._databar import crop_data_bar
from ..io._read import read_sem

from ._resample import check_resample

__all__ = [
    "resize",
    "PreprocessParams",
    "load_bar_free",
    "preprocess_image",
    "resample_to_scale",
    "PreprocessCache",
    "build_items",
    "to_uint8",
    "standardise",
]


@dataclass(frozen=True)
class PreprocessParams:
    """Pre-processing parameters.

    Attributes
    ----------
    mode : str
        ``scale``: the bar-free micrograph is resampled once to ``scale_um`` µm/px and
        cached whole; training draws random ``size``-px crops (a fixed physical field of
        view) and evaluation covers the frame with a grid of ``size``-px tiles.
        ``resize``: the whole bar-free frame squeezed to ``size`` x ``size`` (the paper's
        input; physical scale is lost).
    size : int
        Network input side in pixels (the crop / tile in ``scale`` mode).
    scale_um : float
        ``scale`` mode: µm per pixel to resample to (0 = keep the native pixel size).
    tile_stride : float
        ``scale`` mode: evaluation grid stride as a fraction of ``size`` (the grid always
        reaches both edges of the frame, so neighbouring tiles may overlap a little more).
    """

    mode: str = "scale"
    size: int = 224
    scale_um: float = 0.5
    tile_stride: float = 1.0

    def key(self) -> str:
        """The part of the parameters that determines the cached array.

        Returns
        -------
        str
            Sorted JSON of the mode and its scale or size.
        """
        if self.mode == "scale":
            return json.dumps({"mode": "scale", "scale_um": float(self.scale_um)}, sort_keys=True)
        return json.dumps({"mode": self.mode, "size": int(self.size)}, sort_keys=True)

    @property
    def field_of_view_um(self) -> float | None:
        """Side of one network input in µm (None when the scale is not fixed)."""
        return self.size * self.scale_um if self.mode == "scale" and self.scale_um else None


def to_uint8(img: np.ndarray) -> np.ndarray:
    """A float grey image in ``[0, 1]`` as ``uint8`` (rounded to the nearest level, clipped).

    Parameters
    ----------
    img : numpy.ndarray
        Float grey values; values outside ``[0, 1]`` are clipped.

    Returns
    -------
    numpy.ndarray
        ``uint8``, same shape.

    Examples
    --------
    >>> import numpy as np
    >>> to_uint8(np.array([-0.1, 0.2, 0.5, 1.3])).tolist()
    [0, 51, 128, 255]
    """
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def standardise(x: Any) -> Any:
    """Per-image standardisation of a batch: zero mean and unit standard deviation per image.

    The one definition of ``normalize='per_image'``, used in training
    (:class:`semcathode.data._loaders.PerImageStandardize`) and at prediction time.

    Parameters
    ----------
    x : torch.Tensor
        Batch ``(N, C, H, W)``; each image's statistics are taken over its ``C, H, W`` values
        (sample standard deviation, floored at ``1e-4`` so flat images stay finite).

    Returns
    -------
    torch.Tensor
        Same shape and type as ``x``.
    """
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-4)
    return (x - mean) / std


def resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a float image to ``shape`` with an antialiased bilinear filter (the one resize).

    Parameters
    ----------
    img : ndarray
        2-D float image (grey values, typically in [0, 1]).
    shape : tuple of int
        Target ``(height, width)``.

    Returns
    -------
    ndarray
        float32 array of ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> resize(np.ones((4, 6)), (2, 3)).shape
    (2, 3)
    """
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
        :class:`~semcathode.data._shift.AcquisitionShift` dict or of a list applied in order; ``sha256``).
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
        from ._shift import AcquisitionShift

        seed = _image_seed(str(row.get("sha256", "0" * 8)))
        spec = json.loads(shift)
        for k, d in enumerate(spec if isinstance(spec, list) else [spec]):  # a list = shifts in sequence
            img = AcquisitionShift.from_dict(d).apply(img, rng=seed + k)
    return img.astype(np.float32)


def resample_to_scale(img: np.ndarray, pixel_size_um: float | None, scale_um: float, min_side: int = 1,
                      name: str = "image") -> np.ndarray:
    """Resample a float image from its pixel size to ``scale_um`` µm/px.

    Parameters
    ----------
    img : ndarray
        float (H, W).
    pixel_size_um : float or None
        The image's pixel size in µm (required unless ``scale_um`` is 0).
    scale_um : float
        Target pixel size; 0 keeps the image as it is.
    min_side : int
        The result is enlarged (aspect kept) so that both sides reach at least this.
    name : str
        Named in the error (usually the file).

    Returns
    -------
    ndarray
        float32 resampled image.

    Raises
    ------
    ValueError
        ``scale_um`` is set but the pixel size is unknown or not a positive finite number.
    """
    h, w = img.shape
    f = 1.0
    if scale_um:
        if pixel_size_um is None or not np.isfinite(pixel_size_um) or pixel_size_um <= 0:
            raise ValueError(
                f"{name}: no pixel size known (needed to resample to {scale_um} µm/px); give one with "
                "--pixel-size, the config key preprocess.pixel_size_um or a pixel_size_um column"
            )
        f = float(pixel_size_um) / float(scale_um)
    f = max(f, min_side / h, min_side / w)
    if abs(f - 1.0) < 1e-9:
        return img.astype(np.float32)
    return resize(img, (max(min_side, round(h * f)), max(min_side, round(w * f))))


def preprocess_image(img: np.ndarray, params: PreprocessParams, pixel_size_um: float | None = None,
                     name: str = "image") -> np.ndarray:
    """Turn a bar-free float image into the uint8 array that is cached.

    Parameters
    ----------
    img : ndarray
        Bar-free float grey image in ``[0, 1]``.
    params : PreprocessParams
        Mode, size and scale.
    pixel_size_um : float, optional
        The image's µm/px; needed in scale mode with a fixed ``scale_um``.
    name : str
        Named in errors.

    Returns
    -------
    ndarray
        uint8 ``(size, size)`` in resize mode; in scale mode the whole frame resampled to
        ``scale_um`` µm/px, ``(H', W')`` with both sides at least ``size``.
    """
    s = params.size
    if params.mode == "resize":
        return to_uint8(resize(img, (s, s)))
    if params.mode != "scale":
        raise ValueError(f"unknown pre-processing mode {params.mode!r}: use 'scale' or 'resize'")
    check_resample(name, img.shape, pixel_size_um, params)  # before anything is allocated
    return to_uint8(resample_to_scale(img, pixel_size_um, params.scale_um, min_side=s, name=name))


class PreprocessCache:
    """On-disk cache of pre-processed micrographs.

    Parameters
    ----------
    root : str or Path, optional
        Cache folder (default :func:`semcathode.config.cache_root` / ``preprocessed``).
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else cache_root() / "preprocessed"
        self.root.mkdir(parents=True, exist_ok=True)

    def key(self, row: pd.Series | dict, params: PreprocessParams) -> str:
        """Cache key of one micrograph: file hash, bar row, shift, pre-processing (and pixel size).

        Parameters
        ----------
        row : Series or dict
            A manifest row: ``sha256``, ``bar_row``, ``shift``, ``pixel_size_um``.
        params : PreprocessParams
            The pre-processing.

        Returns
        -------
        str
            32 hex digits.
        """
        shift = row.get("shift", "") if hasattr(row, "get") else ""
        shift = shift if isinstance(shift, str) else ""
        parts = [str(row["sha256"]), str(row.get("bar_row", "")), shift, params.key()]
        if params.mode == "scale" and params.scale_um:
            parts.append(repr(_float_or_none(row.get("pixel_size_um"))))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    def path(self, row: pd.Series | dict, params: PreprocessParams) -> Path:
        """Where the cached array of one micrograph lives.

        Parameters
        ----------
        row : Series or dict
            A manifest row (see :meth:`key`).
        params : PreprocessParams
            The pre-processing.

        Returns
        -------
        Path
            The ``.npy`` file of the entry (it may not exist yet).
        """
        k = self.key(row, params)
        return self.root / k[:2] / f"{k}.npy"

    def get(self, row: pd.Series | dict, params: PreprocessParams) -> np.ndarray:
        """Cached array for ``row`` (computed and stored on a miss).

        Parameters
        ----------
        row : Series or dict
            A manifest row (see :meth:`key`).
        params : PreprocessParams
            The pre-processing.

        Returns
        -------
        ndarray
            uint8, see :func:`preprocess_image`.
        """
        p = self.path(row, params)
        if p.exists():
            try:
                return np.load(p)
            except (ValueError, OSError, EOFError):
                p.unlink(missing_ok=True)  # corrupt entry: rebuild
        arr = preprocess_image(load_bar_free(row), params, _float_or_none(row.get("pixel_size_um")),
                               name=str(row.get("path", "image")))
        atomic_save(p, lambda tmp: _save_npy(tmp, arr))
        return arr

    def warm(self, df: pd.DataFrame, params: PreprocessParams, workers: int = 2) -> list[Path]:
        """Make sure every row of ``df`` is cached; returns the cache paths in row order.

        Parameters
        ----------
        df : DataFrame
            Manifest rows.
        params : PreprocessParams
            The pre-processing.
        workers : int
            Threads.

        Returns
        -------
        list of Path
            One cache file per row.
        """
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
    """Pre-process (through the cache) and list the cached network inputs of a manifest.

    Parameters
    ----------
    df : DataFrame
        Manifest rows (with ``split``/``domain`` when split).
    params : PreprocessParams
    cache : PreprocessCache, optional

    Returns
    -------
    DataFrame
        One row per micrograph: the manifest columns plus ``image_id`` (manifest index),
        ``cache_path``, ``height``/``width`` of the cached array and ``size`` (the network
        input side). :mod:`semcathode.data._inputs` turns these into network inputs.
    """
    cache = cache or PreprocessCache()
    paths = cache.warm(df, params, workers=workers)
    out = df.copy()
    out["image_id"] = df.index
    out["cache_path"] = [str(p) for p in paths]
    shapes = [np.load(p, mmap_mode="r").shape for p in paths]
    out["height"] = [int(sh[0]) for sh in shapes]
    out["width"] = [int(sh[1]) for sh in shapes]
    out["size"] = int(params.size)
    return out.reset_index(drop=True)
