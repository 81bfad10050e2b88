"""fastai DataLoaders for SEM micrographs, augmentation, and sampling for class imbalance.

Items are the rows of :func:`semcathode.data.build_items` (cached uint8 micrographs);
training draws random crops of the input size from them, validation uses tiles. Grey
is replicated to three channels; augmentation is SEM-appropriate (flips, 90-degree rotations,
small rotations and zoom, brightness/contrast; no colour); class order is the schema's.
"""

from __future__ import annotations

import random
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from fastai.data.block import CategoryBlock, DataBlock, TransformBlock
from fastai.data.core import DataLoaders
from fastai.data.transforms import ColReader, ColSplitter, IntToFloatTensor, Normalize
from fastai.torch_core import TensorImage
from fastai.vision.augment import aug_transforms
from fasttransform import Transform

from ._preprocess import standardise

__all__ = [
    "class_counts",
    "oversample",
    "class_weights",
    "sample_weights",
    "crop_array",
    "load_item",
    "PerImageStandardize",
    "make_dataloaders",
    "make_test_dl",
]


def class_counts(df: pd.DataFrame, classes: Sequence[str]) -> dict[str, int]:
    """Images per class in schema order (0 for absent classes).

    Parameters
    ----------
    df : DataFrame
        Rows with a ``label`` column.
    classes : sequence of str
        The classes, in schema order.

    Returns
    -------
    dict of str to int
        Class -> number of rows.
    """
    vc = df["label"].value_counts()
    return {c: int(vc.get(c, 0)) for c in classes}


def oversample(df: pd.DataFrame, classes: Sequence[str], target: int = 0, seed: int = 0) -> pd.DataFrame:
    """Targeted oversampling: replicate each minority class's rows up to ``target``.

    Each class with ``n < target`` rows is repeated ``target // n`` times in full, and
    ``target % n`` further rows are drawn without replacement (seeded). Classes at or above
    the target are left as they are. Counts come from ``df`` alone (pass the train split).

    Parameters
    ----------
    df : DataFrame
        Train rows with a ``label`` column.
    classes : sequence of str
    target : int
        Count to reach; 0 = the largest class's count.
    seed : int

    Returns
    -------
    DataFrame
        The oversampled rows (a new index).
    """
    counts = class_counts(df, classes)
    target = target or max(counts.values())
    rng = np.random.default_rng(seed)
    parts = []
    for c in classes:
        sub = df[df["label"] == c]
        n = len(sub)
        if n == 0:
            continue
        if n >= target:
            parts.append(sub)
            continue
        reps = [sub] * (target // n)
        extra = target % n
        if extra:
            reps.append(sub.iloc[np.sort(rng.choice(n, size=extra, replace=False))])
        parts.append(pd.concat(reps))
    return pd.concat(parts).reset_index(drop=True)


def class_weights(df: pd.DataFrame, classes: Sequence[str], method: str = "median") -> np.ndarray:
    """Loss weights per class from train counts.

    ``median``: median-frequency balancing, ``w_c = median(f) / f_c`` with ``f_c = n_c / N``
    (median over classes present). ``inverse``: ``w_c = N / (K n_c)``. Absent classes get 0.

    Parameters
    ----------
    df : DataFrame
        Train rows with a ``label`` column.
    classes : sequence of str
        The classes, in schema order.
    method : {'median', 'inverse'}
        The weighting.

    Returns
    -------
    ndarray
        float32, one weight per class in schema order.
    """
    n = np.array([class_counts(df, classes)[c] for c in classes], dtype=np.float64)
    present = n > 0
    if not present.any():
        raise ValueError("no training images: cannot compute class weights")
    if not present.all():
        missing = [c for c, p in zip(classes, present) if not p]
        warnings.warn(f"classes absent from the train split get loss weight 0: {', '.join(missing)}")
    w = np.zeros_like(n)
    if method == "median":
        f = n[present] / n.sum()
        w[present] = np.median(f) / f
    elif method == "inverse":
        w[present] = n.sum() / (present.sum() * n[present])
    else:
        raise ValueError(f"unknown class-weight method {method!r}: use 'median' or 'inverse'")
    return w.astype(np.float32)


def sample_weights(df: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """Per-row sampling weights ``1 / n_class`` (for a weighted sampler).

    Parameters
    ----------
    df : DataFrame
        Train rows with a ``label`` column.
    classes : sequence of str
        The classes, in schema order.

    Returns
    -------
    ndarray
        float64, one weight per row.
    """
    counts = class_counts(df, classes)
    return np.array([1.0 / counts[c] for c in df["label"]], dtype=np.float64)


def crop_array(row: pd.Series | dict, arr: np.ndarray | None = None) -> np.ndarray:
    """The uint8 ``size`` x ``size`` network input of one item.

    ``crop_y``/``crop_x`` >= 0 give a fixed crop (evaluation tile); -1 (or absent columns)
    draws a uniform random crop inside the cached frame (training; Python's ``random``,
    seeded by :func:`semcathode.models._learner.seed_everything`). A cached array already of the
    input size is returned whole.

    Parameters
    ----------
    row : Series or dict
        An item: ``cache_path``, ``size`` and optionally ``crop_y``/``crop_x``.
    arr : ndarray, optional
        The cached frame, when already loaded.

    Returns
    -------
    ndarray
        uint8 ``(size, size)``.
    """
    if arr is None:
        arr = np.load(row["cache_path"], mmap_mode="r")
    h, w = arr.shape[:2]
    s = int(row.get("size", min(h, w)) if hasattr(row, "get") else min(h, w))
    if h == s and w == s:
        return np.asarray(arr)
    y, x = int(row.get("crop_y", -1)), int(row.get("crop_x", -1))
    if y < 0 or x < 0:
        y, x = random.randint(0, h - s), random.randint(0, w - s)
    if not (0 <= y <= h - s and 0 <= x <= w - s):
        raise ValueError(f"crop ({y}, {x}) of {s} px outside the {h}x{w} frame of {row.get('path', '?')}")
    return np.array(arr[y : y + s, x : x + s])


def load_item(row: pd.Series) -> TensorImage:
    """One item (a crop of a cached micrograph, see :func:`crop_array`) -> 3-channel uint8 ``TensorImage``.

    Parameters
    ----------
    row : Series
        An item (see :func:`crop_array`).

    Returns
    -------
    TensorImage
        uint8 ``(3, size, size)``.
    """
    arr = crop_array(row)
    # a broadcast view, not a copy: collation stacks the batch into new memory anyway
    return TensorImage(torch.from_numpy(np.ascontiguousarray(arr)).unsqueeze(0).expand(3, -1, -1))


class PerImageStandardize(Transform):
    """Per-image histogram standardisation: zero mean, unit std per image (after augmentation)."""

    order = 99

    def encodes(self, x: TensorImage) -> TensorImage:  # type: ignore[override]
        """Standardise a batch.

        Parameters
        ----------
        x : TensorImage
            A batch ``(N, 3, H, W)``.

        Returns
        -------
        TensorImage
            :func:`semcathode.data._preprocess.standardise` of ``x``.
        """
        return standardise(x)


def _batch_tfms(augment: bool, normalize: str, mean: Sequence[float], std: Sequence[float]) -> list:
    tfms: list = []
    if augment:
        tfms += aug_transforms(
            do_flip=True, flip_vert=True, max_rotate=10.0, min_zoom=1.0, max_zoom=1.1,
            max_lighting=0.2, max_warp=0.0, p_affine=0.75, p_lighting=0.75,
        )
    if normalize == "per_image":
        tfms.append(PerImageStandardize())
    elif normalize == "dataset":
        tfms.append(Normalize.from_stats(list(mean), list(std)))
    else:
        raise ValueError(f"unknown normalisation {normalize!r}: use 'dataset' or 'per_image'")
    return tfms


def make_dataloaders(
    items: pd.DataFrame,
    classes: Sequence[str],
    train_split: str = "train",
    valid_split: str = "valid",
    bs: int = 16,
    augment: bool = True,
    normalize: str = "dataset",
    mean: Sequence[float] = (0.485, 0.456, 0.406),
    std: Sequence[float] = (0.229, 0.224, 0.225),
    sampler: str | None = None,
    oversample_target: int = 0,
    seed: int = 0,
    device: torch.device | str | None = None,
    crops_per_image: int = 1,
    tile_stride: float = 1.0,
    valid_tiles: str = "center",
) -> DataLoaders:
    """Build fastai DataLoaders from pre-processed items and their split column.

    Parameters
    ----------
    items : DataFrame
        Micrographs from :func:`semcathode.data.build_items`, with ``split``.
    classes : sequence of str
        Vocabulary in schema order.
    train_split, valid_split : str
        Values of ``split`` used for training and validation.
    bs : int
        Batch size (reduced to the train size for tiny sets).
    augment : bool
        SEM augmentation on the training batches.
    normalize : str
        ``dataset`` (``mean``/``std``, the backbone's) or ``per_image``.
    sampler : str, optional
        ``None``; ``"replicate"`` (targeted oversampling of train rows, see
        :func:`oversample`); ``"weighted"`` (a weighted random sampler, 1/n_class).
    oversample_target : int
        Replication target (0 = largest class).
    seed : int
    device : torch device, optional
    crops_per_image : int
        Random crops drawn per training micrograph per epoch (:func:`~semcathode.data._inputs.crop_items`).
    tile_stride : float
        Stride of the validation tile grid.
    valid_tiles : str
        ``center`` (one central tile per valid micrograph: a cheap per-epoch signal) or
        ``grid`` (every tile).

    Returns
    -------
    fastai.data.core.DataLoaders
    """
    from ._inputs import crop_items, grid_items

    train = items[items["split"] == train_split]
    valid = items[items["split"] == valid_split]
    if train.empty:
        raise ValueError(f"no items in split {train_split!r}")
    if sampler == "replicate":
        train = oversample(train, classes, target=oversample_target, seed=seed)
    elif sampler not in (None, "weighted", "none"):
        raise ValueError(f"unknown sampler {sampler!r}")
    if valid.empty:
        valid = train.iloc[: min(len(train), bs)]
    train = crop_items(train, crops_per_image)
    valid = grid_items(valid, tile_stride, center_only=valid_tiles == "center")
    src = pd.concat([train.assign(is_valid=False), valid.assign(is_valid=True)], ignore_index=True)
    bs = max(2, min(bs, len(train)))
    block = DataBlock(
        blocks=(TransformBlock(type_tfms=[load_item], batch_tfms=[IntToFloatTensor()]), CategoryBlock(vocab=list(classes), sort=False)),
        get_y=ColReader("label"),
        splitter=ColSplitter("is_valid"),
        batch_tfms=_batch_tfms(augment, normalize, mean, std),
    )
    kw = dict(bs=bs, num_workers=0, device=device, drop_last=len(train) > bs)
    if sampler == "weighted":
        is_train = ~src["is_valid"].to_numpy()
        wgts = np.zeros(len(src))
        wgts[is_train] = sample_weights(src[is_train], classes)  # class sizes of the train rows only
        dls = block.weighted_dataloaders(src, wgts=wgts, **kw)
    else:
        dls = block.dataloaders(src, **kw)
    dls.train.rng.seed(seed) if hasattr(dls.train, "rng") else None
    return dls


def make_test_dl(dls: DataLoaders, items: pd.DataFrame, bs: int | None = None, tile_stride: float = 1.0):
    """A labelled, un-augmented DataLoader over the tile grid of ``items`` with ``dls``'s pipeline.

    Parameters
    ----------
    dls : DataLoaders
        From :func:`make_dataloaders`; its transforms are reused.
    items : DataFrame
        Micrographs (or tiles, when they have ``crop_y``).
    bs : int, optional
        Batch size; default ``dls.bs``.
    tile_stride : float
        Tile-grid stride as a fraction of the input size.

    Returns
    -------
    DataLoader
        Over one row per tile, in order.
    """
    from ._inputs import grid_items

    tiles = items if "crop_y" in items.columns else grid_items(items.reset_index(drop=True), tile_stride)
    return dls.test_dl(tiles.reset_index(drop=True), with_labels=True, bs=bs or dls.bs)
