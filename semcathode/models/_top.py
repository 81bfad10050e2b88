"""Training the top of a network on cached trunk maps: the dataset, the splitter and the learner.

With the frozen trunk's output on disk (:class:`semcathode.models._trunk.TrunkCache`), an epoch
is a pass of the :class:`~semcathode.models._trunk.Top` only. Each epoch draws ``tiles_per_epoch``
tiles of every training micrograph (a random tile of a random cached view each time), augmented
on the maps themselves by flips and quarter turns (the maps of a flipped tile are the flipped
maps, up to the trunk's padding at the border). The learner is a fastai ``Learner`` like the
full-network one, with three parameter groups (first trainable stage, the rest with the head
convolution, the classifier), so :func:`semcathode.models._learner.fit_stage` runs the same
schedule (head first, then discriminative rates, one-cycle) on it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import F1Score, accuracy
from fastai.optimizer import Adam
from fastai.torch_core import TensorCategory
from torch import nn
from torch.utils.data import Dataset, Subset

from ._learner import ChannelsLastInputs, _cuda_precision
from ._taps import FINAL, LayerTap
from ._forward import MicrographOutputs, summarise_tiles
from ._trunk import Top, TrunkCache, TrunkSpec, _compute_device

__all__ = ["CachedTiles", "top_splitter", "make_top_learner", "cached_log_probs", "cached_outputs", "fits_on_device"]

#: Share of a GPU's free memory that the cached maps of a fit may take when they are held there.
DEVICE_SHARE = 0.5


def fits_on_device(nbytes: int, device: str | torch.device, share: float = DEVICE_SHARE) -> bool:
    """Whether ``nbytes`` of cached maps may be held on ``device``: a GPU with ``share`` of its free
    memory above it. On a CPU the maps already are in host memory: never (nothing to gain).

    Parameters
    ----------
    nbytes : int
    device : str or torch.device
    share : float

    Returns
    -------
    bool

    Examples
    --------
    >>> fits_on_device(10**6, "cpu")
    False
    """
    dev = torch.device(device)
    if dev.type != "cuda" or not torch.cuda.is_available():
        return False
    free, _ = torch.cuda.mem_get_info(dev)
    return nbytes <= share * free


class CachedTiles(Dataset):
    """Training or evaluation inputs from a :class:`TrunkCache`.

    Parameters
    ----------
    items : DataFrame
        Rows of :func:`semcathode.data.build_items` (``cache_path``, ``label``), one per micrograph
        (repeat rows to oversample a class).
    classes : sequence of str
        Class order of the labels (evaluation needs none: pass ``()``).
    cache : TrunkCache
    spec : TrunkSpec
    views : sequence of str
        Cached views to draw from (training) or the one view to read (evaluation).
    tiles_per_epoch : int
        Training: tiles drawn per micrograph per epoch. ``0``: every tile of the first view once,
        in order, no augmentation (evaluation).
    augment : bool
        Random flips and quarter turns of the maps (training).
    seed : int
    pooled : bool
        Hold each tile's maps averaged over space, ``(C, 1, 1)``, in memory: exact for a top whose
        every layer acts per channel (a :attr:`Top.pointwise` linear head, where pooling commutes
        with it), and far lighter; flips and quarter turns then change nothing and are skipped.
    device : str or torch.device, optional
        Hold every map in one tensor on this device (a GPU where the maps fit: :func:`fits_on_device`),
        so that a batch is drawn, augmented and stacked there with no copy from the host. Default: the
        maps stay memory-mapped on the host and each batch is copied.
    """

    def __init__(self, items: pd.DataFrame, classes: Sequence[str], cache: TrunkCache, spec: TrunkSpec,
                 views: Sequence[str] = ("full",), tiles_per_epoch: int = 4, augment: bool = True,
                 seed: int = 0, pooled: bool = False, device: str | torch.device | None = None) -> None:
        idx = {c: i for i, c in enumerate(classes)}
        rows = items.reset_index(drop=True)
        self.rows, self.cache, self.spec = rows, cache, spec
        load = ((lambda r, v: np.asarray(cache.load(r, spec, v), np.float32).mean(axis=(2, 3), keepdims=True))
                if pooled else (lambda r, v: cache.load(r, spec, v)))
        self.maps = {v: [load(r, v) for _, r in rows.iterrows()] for v in views}
        self.views = list(views)
        labels = rows["label"] if "label" in rows else [None] * len(rows)
        self.y = np.asarray([idx.get(str(label), -1) for label in labels], dtype=np.int64)  # -1: not a class
        self.k = int(tiles_per_epoch)
        self.augment = augment and self.k > 0 and not pooled
        self.rng = np.random.default_rng(seed)
        first = self.maps[self.views[0]]
        self.index = ([(i, t) for i, m in enumerate(first) for t in range(len(m))] if self.k == 0 else
                      [(i, -1) for i in range(len(first)) for _ in range(self.k)])
        self.device: torch.device | None = None
        self.bank: dict[str, tuple[torch.Tensor, np.ndarray]] = {}
        if device is not None:
            self.hold_on(device)

    def hold_on(self, device: str | torch.device) -> "CachedTiles":
        """Move every map into one tensor per view on ``device`` (see the ``device`` parameter); returns ``self``."""
        if self.bank:
            raise ValueError(f"the maps are already held on {self.device}")
        for v, maps in self.maps.items():  # each micrograph's first row in its view's tensor
            start = np.concatenate([[0], np.cumsum([len(m) for m in maps])]).astype(np.int64)
            stacked = np.concatenate([np.asarray(m) for m in maps]) if maps else np.zeros((0, 1, 1, 1), np.float16)
            self.bank[v] = (torch.from_numpy(np.ascontiguousarray(stacked)).to(device), start)
        self.maps = {v: [range(len(m)) for m in maps] for v, maps in self.maps.items()}
        self.device = torch.device(device)
        return self

    @property
    def nbytes(self) -> int:
        """Bytes of the maps this dataset reads (what holding them on a device takes)."""
        if self.bank:
            return int(sum(t.element_size() * t.nelement() for t, _ in self.bank.values()))
        return int(sum(np.asarray(m).nbytes for maps in self.maps.values() for m in maps))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, TensorCategory]:
        m, t = self.index[i]
        view = self.views[int(self.rng.integers(len(self.views)))] if self.k else self.views[0]
        maps = self.maps[view][m]
        if t < 0:
            t = int(self.rng.integers(len(maps)))
        if self.bank:
            bank, start = self.bank[view]
            x = bank[int(start[m]) + t].float()
        else:
            x = torch.from_numpy(np.asarray(maps[t], dtype=np.float32))
        if self.augment:
            if self.rng.random() < 0.5:
                x = torch.flip(x, dims=(2,))
            x = torch.rot90(x, int(self.rng.integers(4)), dims=(1, 2))
        return x.contiguous(), TensorCategory(self.y[m])

    def owners(self) -> np.ndarray:
        """The micrograph (row of ``items``) of every input, in order."""
        return np.asarray([m for m, _ in self.index])

    def stage_features(self, layer: str) -> np.ndarray:
        """Evaluation inputs (``tiles_per_epoch=0``): the pooled output ``(T, C)`` of trunk stage ``layer``
        for every input, in order, read from the cache's stage outputs."""
        view = self.views[0]
        parts = []
        for _, r in self.rows.iterrows():
            stages = self.cache.load_stages(r, self.spec, view)
            if layer not in stages:
                raise ValueError(f"familiarity layer {layer!r} is not a stage of the cached trunk "
                                 f"({', '.join(stages) or 'none'})")
            parts.append(stages[layer].astype(np.float32))
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def top_splitter(top: Top) -> list[list[nn.Parameter]]:
    """Three parameter groups of a :class:`Top`: its first stage, the rest with the head
    convolution, the classifier (``slice(lr / lr_div, lr)`` spreads the rates across them).

    Parameters
    ----------
    top : Top

    Returns
    -------
    list of list of Parameter
    """
    blocks = list(top.blocks)
    first = [p for b in blocks[:1] for p in b.parameters()]
    rest = [p for m in [*blocks[1:], top.conv_head, top.bn2] for p in m.parameters()]
    return [g for g in (first, rest, list(top.classifier.parameters())) if g]  # a top without blocks: two groups


def make_top_learner(top: Top, train: CachedTiles, valid: CachedTiles, bs: int = 64,
                     loss_weights: np.ndarray | None = None, weight_decay: float = 0.01,
                     label_smoothing: float = 0.1, seed: int = 0, hold: bool = True) -> Learner:
    """A fastai Learner that trains ``top`` on cached trunk maps.

    Parameters
    ----------
    top : Top
    train, valid : CachedTiles
        Training and validation inputs (``valid`` may hold no micrograph: a stage that does not validate).
    bs : int
    loss_weights : ndarray, optional
        Class weights of the cross-entropy (weighted-loss strategy).
    weight_decay : float
    label_smoothing : float
    seed : int
    hold : bool
        Hold ``train`` and ``valid`` on the compute device when it is a GPU and their maps fit
        (:func:`fits_on_device`; a CPU keeps them where they are).

    Returns
    -------
    Learner
    """
    bs = max(2, min(bs, len(train)))
    dev = _compute_device()
    if hold and train.device is None and valid.device is None and fits_on_device(train.nbytes + valid.nbytes, dev):
        train.hold_on(dev)  # the fit's maps on the GPU: batches drawn there, no copy from the host
        valid.hold_on(dev)
    if not len(valid):  # fastai validates every epoch: a stand-in batch of training inputs (not reported)
        valid = Subset(train, range(min(len(train), bs)))
    dls = DataLoaders.from_dsets(train, valid, bs=bs, num_workers=0,  # shuffled, last partial batch dropped: train only
                                 device=dev, pin_memory=dev.type == "cuda" and train.device is None)
    w = torch.as_tensor(loss_weights, dtype=torch.float32) if loss_weights is not None else None
    learn = Learner(dls, top.to(dev), loss_func=CrossEntropyLossFlat(weight=w, label_smoothing=label_smoothing),
                    opt_func=Adam, splitter=top_splitter, metrics=[accuracy, F1Score(average="macro")],
                    wd=weight_decay, train_bn=True, cbs=[ChannelsLastInputs()])
    return _cuda_precision(learn)





def _top_taps(top: Top, layers: Sequence[str]) -> tuple[str | None, dict[str, nn.Module], list[str]]:
    """The trunk's output layer (read from the cached maps), the top's modules for the requested layers
    after it, under their names in the whole network (``blocks.5`` = the top's first block), and the
    requested stages inside the trunk (read from the cache's pooled stage outputs)."""
    trunk_layer = f"blocks.{top.depth - 1}"
    modules, inside = {}, []
    for name in layers:
        if name in (FINAL, trunk_layer):
            continue
        stage = int(name.split(".")[1]) if name.startswith("blocks.") and name[7:].isdigit() else -1
        j = stage - top.depth
        if 0 <= stage < top.depth - 1:
            inside.append(name)
            continue
        if not 0 <= j < len(top.blocks):
            raise ValueError(f"familiarity layer {name!r} is not a stage of the network "
                             f"(blocks.0..blocks.{top.depth + len(top.blocks) - 1}) or {FINAL}")
        modules[name] = top.blocks[j]
    return (trunk_layer if trunk_layer in layers else None), modules, inside


@torch.no_grad()
def cached_log_probs(top: Top, data: CachedTiles, bs: int = 256,
                     features: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per-tile log-probabilities of ``top`` over an evaluation :class:`CachedTiles`.

    Parameters
    ----------
    top : Top
    data : CachedTiles
        Built with ``tiles_per_epoch=0``.
    bs : int
    features : bool
        Also the pooled pre-logit feature of every tile.

    Returns
    -------
    log_probs : ndarray
        ``(T, n_classes)``, tiles in order.
    owners : ndarray
        Row of ``items`` of each tile.
    features : ndarray or None
        ``(T, D)`` when ``features``.
    """
    return _cached_pass(top, data, bs, features)[:3]


@torch.no_grad()
def _cached_pass(top: Top, data: CachedTiles, bs: int = 256, features: bool = False, layers: Sequence[str] = ()):
    """:func:`cached_log_probs` plus ``tile_layers``: layer -> ``(T, C)`` pooled outputs of the requested
    layers (the trunk's output ``blocks.<depth - 1>`` is read from the cached maps themselves)."""
    trunk_layer, modules, inside = _top_taps(top, layers)
    modes = [(m, m.training) for m in top.modules()]
    top.eval()
    try:
        lps, feats, finals, trunk_out = [], [], [], []
        dev = next(top.parameters()).device
        with LayerTap(None, modules=modules) as tap:
            for s in range(0, len(data), bs):
                x = torch.stack([data[i][0] for i in range(s, min(s + bs, len(data)))])
                if trunk_layer:
                    trunk_out.append(x.float().mean(dim=(2, 3)).cpu().numpy())
                logits, pooled = top.forward_pooled(x.to(dev, non_blocking=True))
                lps.append(torch.log_softmax(logits.float(), 1).cpu().numpy())
                if features:
                    feats.append(pooled.float().cpu().numpy())
                if FINAL in layers:
                    finals.append(pooled.float().cpu().numpy())
        n_classes = getattr(top.classifier, "out_features", 0)  # a top without classifier: its features
        lp = np.concatenate(lps) if lps else np.zeros((0, n_classes), np.float32)
        tile_layers = {name: torch.cat(v).cpu().numpy() for name, v in tap.pooled.items() if v}
        if finals:
            tile_layers[FINAL] = np.concatenate(finals)
        if trunk_out:
            tile_layers[trunk_layer] = np.concatenate(trunk_out)
        for name in inside:
            tile_layers[name] = data.stage_features(name)
        return lp, data.owners(), (np.concatenate(feats) if feats else None), tile_layers
    finally:
        for m, mode in modes:
            m.training = mode


def cached_outputs(top: Top, data: CachedTiles, aggregate: str = "mean_log_prob",
                   features: bool = False, layers: Sequence[str] = ()) -> MicrographOutputs:
    """Whole-micrograph predictions from the trunk cache: what :func:`predict_arrays` gives from pixels.

    Parameters
    ----------
    top : Top
    data : CachedTiles
        Evaluation inputs (``tiles_per_epoch=0``), one entry per micrograph of its items.
    aggregate : str
        See :func:`semcathode.models._forward.aggregate_log_probs`.
    features : bool
        Also the L2-normalised mean pooled feature per micrograph.
    layers : sequence of str
        As for :func:`~semcathode.models._forward.predict_arrays` (``MicrographOutputs.layer_features``), named
        in the whole network: the trunk's output ``blocks.<depth - 1>`` (read from the cached maps), a
        block of the top, or ``final``.

    Returns
    -------
    MicrographOutputs
    """
    lp, owners, f, tile_layers = _cached_pass(top, data, features=features, layers=layers)
    return summarise_tiles(lp, owners, len(data.y), aggregate, f, tile_layers or None)
