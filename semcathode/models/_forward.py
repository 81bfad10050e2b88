"""Whole-micrograph prediction: tile grid -> per-tile log-probabilities -> one answer per micrograph.

One path serves the study's evaluation, the exported model and ``semcathode predict``:

1. the cached (or freshly resampled) micrograph is cut into the :func:`~semcathode.data._tiles.tile_grid`;
2. every tile goes through the network (no augmentation); the pooled features are kept;
3. tiles are aggregated per micrograph: by default the **mean log-probability**
   (``z_c = mean_t log p_t(c)``, renormalised with a softmax), which is the product of the
   tiles' likelihoods and lets a few confident tiles outvote many unsure ones;
4. optional temperature scaling (:func:`~semcathode.models._scores.fit_temperature`, fitted on the valid split);
5. a familiarity score in feature space (:func:`~semcathode.models._scores.knn_ood_score`): mean cosine distance of the
   micrograph's mean tile embedding to its ``k`` nearest training micrographs.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..config._sections import CHOICES
from ..data._preprocess import standardise
from ..data._tiles import cut_tiles
from ._taps import FINAL, LayerTap

__all__ = [
    "summarise_tiles",
    "MicrographOutputs",
    "normalise_batch",
    "aggregate_log_probs",
    "predict_arrays",
    "predict_probs",
    "predict_tiles",
    "forward_batch",
]

AGGREGATIONS: tuple[str, ...] = CHOICES["aggregate"]
#: Input pixels per forward pass at most (64 tiles of 224 px): large tiles go in smaller batches.
BATCH_PIXELS = 64 * 224 * 224
#: Inputs per forward pass on a CPU when the caller names none. Small batches keep the early, large
#: feature maps in the cores' caches: on a 2-core AVX2 EPYC, 4 tiles of 224 px ran the folded trunk at
#: 1.3-1.5x and the folded network at 1.3x the throughput of 16 (``benchmarks/bench_batch.py``).
CPU_BATCH = 4
#: Inputs per forward pass on a GPU when the caller names none.
GPU_BATCH = 64


@dataclass
class MicrographOutputs:
    """Per-micrograph outputs of :func:`predict_arrays`.

    Attributes
    ----------
    log_probs : ndarray
        ``(N, C)`` aggregated, normalised log-probabilities (before temperature scaling).
    tile_agreement : ndarray
        ``(N,)`` share of a micrograph's tiles whose own argmax equals the micrograph's.
    n_tiles : ndarray
        ``(N,)`` tiles per micrograph.
    features : ndarray or None
        ``(N, D)`` mean pooled feature of the tiles, L2-normalised (None when not asked).
    tile_preds : list of ndarray
        Per micrograph, the argmax class index of every tile.
    tile_features : list of ndarray or None
        Per micrograph, the pooled feature of every tile ``(T_i, D)`` (None when not asked).
    layer_features : dict of str to ndarray or None
        Layer (``blocks.4``, ..., ``final``) -> ``(N, C_layer)``: the mean over a micrograph's tiles of
        that layer's spatially pooled output, not normalised (the familiarity features; None when
        no layer was asked).
    """

    log_probs: np.ndarray
    tile_agreement: np.ndarray
    n_tiles: np.ndarray
    features: np.ndarray | None
    tile_preds: list
    tile_features: list | None = None
    layer_features: dict | None = None

    def probs(self, temperature: float = 1.0) -> np.ndarray:
        """Softmax of ``log_probs / temperature``."""
        z = self.log_probs / float(temperature)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def normalise_batch(arr: np.ndarray, normalize: str, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 grey inputs -> the network's normalised three-channel input.

    Parameters
    ----------
    arr : ndarray
        uint8 ``(H, W)`` or ``(N, H, W)``.
    normalize : {"dataset", "per_image"}
        ``dataset`` uses ``mean``/``std`` (the backbone's); ``per_image`` gives every input
        zero mean and unit standard deviation.
    mean, std : sequence of float
        Per-channel statistics (three values).

    Returns
    -------
    Tensor
        float32 ``(N, 3, H, W)``.

    Examples
    --------
    >>> import numpy as np
    >>> x = normalise_batch(np.full((4, 4), 255, np.uint8), "dataset", (0.5,) * 3, (0.5,) * 3)
    >>> tuple(x.shape), float(x.max())
    ((1, 3, 4, 4), 1.0)
    """
    x = torch.from_numpy(np.asarray(arr, dtype=np.float32) / 255.0)
    if x.ndim == 2:
        x = x[None]
    x = x[:, None].expand(-1, 3, -1, -1)
    if normalize == "per_image":
        return standardise(x).contiguous()
    m = torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - m) / s).contiguous()


def aggregate_log_probs(tile_log_probs: np.ndarray, method: str = "mean_log_prob") -> np.ndarray:
    """Aggregate one micrograph's tile log-probabilities into one set of log-probabilities.

    Parameters
    ----------
    tile_log_probs : ndarray
        ``(T, C)``.
    method : {"mean_log_prob", "mean_prob"}
        ``mean_log_prob``: ``log softmax(mean_t log p_t)``; ``mean_prob``: ``log mean_t p_t``.

    Returns
    -------
    ndarray
        ``(C,)`` normalised log-probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> tiles = np.log([[0.9, 0.1], [0.4, 0.6]])
    >>> np.exp(aggregate_log_probs(tiles)).round(3)
    array([0.71, 0.29])
    >>> np.exp(aggregate_log_probs(tiles, "mean_prob")).round(3)
    array([0.65, 0.35])
    """
    lp = np.asarray(tile_log_probs, dtype=np.float64)
    if lp.ndim != 2 or not len(lp):
        raise ValueError(f"need (tiles, classes) log-probabilities, got shape {lp.shape}")
    if method == "mean_log_prob":
        z = lp.mean(axis=0)
    elif method == "mean_prob":
        z = np.log(np.exp(lp).mean(axis=0) + 1e-300)
    else:
        raise ValueError(f"unknown aggregation {method!r}; choose one of {', '.join(AGGREGATIONS)}")
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


def _forward(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits and pooled pre-logit features (timm models; other modules give logits only)."""
    if hasattr(model, "forward_features") and hasattr(model, "forward_head"):
        feats = model.forward_head(model.forward_features(x), pre_logits=True)
        return model.get_classifier()(feats), feats
    return model(x), None


def _input_format(model: nn.Module) -> torch.memory_format:
    """The memory format to give ``model`` its inputs in: the layout of its first 4-D weight.

    ``channels_last`` after ``model.to(memory_format=torch.channels_last)`` (what
    :meth:`ExportedModel.optimize` and channels-last training do), else contiguous; read from
    the weights themselves, so nothing is set on the module.

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    torch.memory_format

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3))
    >>> _input_format(net)
    torch.contiguous_format
    >>> _input_format(net.to(memory_format=torch.channels_last))
    torch.channels_last
    """
    for p in model.parameters():
        if p.dim() == 4:
            layout_cl = p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
            return torch.channels_last if layout_cl else torch.contiguous_format
    return torch.contiguous_format


def forward_batch(device: torch.device | str, bs: int | None = None, size: int = 224) -> int:
    """Inputs of ``size`` px per forward pass: ``bs`` when given, else :data:`CPU_BATCH` on a CPU and
    :data:`GPU_BATCH` elsewhere, and never more than :data:`BATCH_PIXELS` allows.

    Parameters
    ----------
    device : torch.device or str
        Where the forward pass runs.
    bs : int, optional
        The caller's batch size (None: the device's default).
    size : int
        Input side in pixels.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> forward_batch("cpu"), forward_batch("cuda"), forward_batch("cpu", 32), forward_batch("cuda", size=448)
    (4, 64, 32, 16)
    """
    dev = torch.device(device)
    n = int(bs) if bs is not None else (CPU_BATCH if dev.type == "cpu" else GPU_BATCH)
    return max(1, min(n, BATCH_PIXELS // max(1, int(size)) ** 2))


@torch.no_grad()
def predict_probs(model: nn.Module, x: torch.Tensor, bs: int | None = None) -> torch.Tensor:
    """Softmax probabilities ``(N, C)`` of normalised network inputs, in batches: the forward pass of
    every caller that already holds input tensors (``ExportedModel.predict_tensor``, the CAM
    measures); :func:`predict_tiles` is its sibling for uint8 tiles.

    Parameters
    ----------
    model : nn.Module
        Put in eval mode for the call (every submodule's mode is restored after it).
    x : Tensor
        ``(N, 3, S, S)`` normalised inputs (:func:`normalise_batch`), on any device.
    bs : int, optional
        Inputs per forward pass (None: :func:`forward_batch`'s default for the model's device).

    Returns
    -------
    Tensor
        float32 on the CPU; ``(0, 0)`` for no input.

    Examples
    --------
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    >>> p = predict_probs(net, torch.zeros(5, 3, 2, 2), bs=2)
    >>> p.shape, bool(torch.allclose(p.sum(1), torch.ones(5)))
    (torch.Size([5, 3]), True)
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        dev = next(model.parameters()).device
        fmt = _input_format(model)
        bs = forward_batch(dev, bs, int(x.shape[-1]) if x.dim() == 4 else 224)
        out = [torch.softmax(model(x[i : i + bs].to(dev).contiguous(memory_format=fmt)).float(), 1).cpu()
               for i in range(0, len(x), bs)]
        return torch.cat(out) if out else torch.zeros((0, 0))
    finally:
        for m, mode in modes:
            m.training = mode


@torch.no_grad()
def predict_arrays(
    model: nn.Module,
    arrays: Sequence[np.ndarray],
    size: int,
    normalize: str,
    mean: Sequence[float],
    std: Sequence[float],
    stride: float = 1.0,
    aggregate: str = "mean_log_prob",
    features: bool = False,
    bs: int | None = None,
    layers: Sequence[str] = (),
) -> MicrographOutputs:
    """Predict whole micrographs from their (scale-resampled) uint8 arrays.

    Parameters
    ----------
    model : nn.Module
        The classifier (put in eval mode for the call; its previous mode is restored).
    arrays : sequence of ndarray
        uint8 ``(H, W)`` frames, each at least ``size`` on both sides.
    size, stride : int, float
        Tile side and grid stride (see :func:`~semcathode.data._tiles.tile_grid`).
    normalize, mean, std
        See :func:`normalise_batch`.
    aggregate : str
        ``mean_log_prob`` (default) or ``mean_prob``.
    features : bool
        Also return the mean pooled feature per micrograph (for :func:`knn_ood_score`).
    bs : int, optional
        Tiles per forward pass (None: :func:`forward_batch`'s default for the model's device; fewer for
        tiles above 224 px: :data:`BATCH_PIXELS`).
    layers : sequence of str
        Layers whose pooled output to average per micrograph (``MicrographOutputs.layer_features``):
        submodule names such as ``blocks.4`` and ``final`` (the pooled pre-logits).

    Returns
    -------
    MicrographOutputs
    """
    tiles, owner = [], []
    for i, arr in enumerate(arrays):
        t, _ = cut_tiles(np.asarray(arr), int(size), stride)
        tiles.append(t)
        owner += [i] * len(t)
    if not len(arrays):
        return MicrographOutputs(np.zeros((0, 0)), np.zeros(0), np.zeros(0, int), None, [])
    return predict_tiles(model, np.concatenate(tiles), np.asarray(owner), len(arrays), normalize, mean, std,
                         aggregate=aggregate, features=features, bs=bs, layers=layers)


@torch.no_grad()
def predict_tiles(
    model: nn.Module,
    tiles: np.ndarray,
    owner: np.ndarray,
    n: int,
    normalize: str,
    mean: Sequence[float],
    std: Sequence[float],
    aggregate: str = "mean_log_prob",
    features: bool = False,
    bs: int | None = None,
    layers: Sequence[str] = (),
    compiled: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> MicrographOutputs:
    """Predict micrographs from their tiles, batched across micrographs (the forward pass of every predict path).

    Parameters
    ----------
    model : nn.Module
    tiles : ndarray
        uint8 ``(T, S, S)`` tiles of all the micrographs, in any order.
    owner : ndarray
        ``(T,)`` index of each tile's micrograph in ``0 .. n - 1``.
    n : int
        Micrographs.
    normalize, mean, std, aggregate, features, bs, layers
        As for :func:`predict_arrays`.
    compiled : callable, optional
        ``model`` compiled (``torch.compile``; :meth:`ExportedModel.optimize` with ``compile=True``),
        used for the logits when neither ``features`` nor ``layers`` are asked for (a compiled graph
        does not run the layer taps' hooks); the last batch of another size runs eagerly (no recompile).

    Returns
    -------
    MicrographOutputs
    """
    was_training = model.training
    model.eval()
    try:
        dev = next(model.parameters()).device
        fmt = _input_format(model)
        size = int(tiles.shape[-1]) if len(tiles) else 1
        bs = forward_batch(dev, bs, size)
        logps, feats, finals = [], [], []
        with LayerTap(model, layers) as tap:
            for i in range(0, len(tiles), bs):
                x = normalise_batch(tiles[i : i + bs], normalize, mean, std)
                if dev.type == "cuda":  # pinned host memory, copied while the previous batch computes
                    x = x.pin_memory().to(dev, non_blocking=True)
                x = x.contiguous(memory_format=fmt)
                with torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else nullcontext():
                    if compiled is not None and not features and not layers and len(x) == bs:
                        logits, f = compiled(x), None
                    else:
                        logits, f = _forward(model, x)
                logps.append(torch.log_softmax(logits.float(), 1).cpu().numpy())
                if features and f is not None:
                    feats.append(f.float().cpu().numpy())
                if FINAL in layers and f is not None:
                    finals.append(f.float().cpu().numpy())
        tile_layers = {name: torch.cat(v).cpu().numpy() for name, v in tap.pooled.items()}
        if finals:
            tile_layers[FINAL] = np.concatenate(finals)
        return summarise_tiles(np.concatenate(logps), np.asarray(owner), n, aggregate,
                               np.concatenate(feats) if feats else None, tile_layers or None)
    finally:
        model.train(was_training)


def summarise_tiles(tile_log_probs: np.ndarray, owner: np.ndarray, n: int, aggregate: str = "mean_log_prob",
                    tile_features: np.ndarray | None = None,
                    tile_layers: dict[str, np.ndarray] | None = None) -> MicrographOutputs:
    """Per-tile outputs -> one prediction per micrograph (the aggregation of every predict path).

    Parameters
    ----------
    tile_log_probs : ndarray
        ``(T, C)`` log-probabilities of every tile.
    owner : ndarray
        ``(T,)`` index of each tile's micrograph in ``0 .. n - 1``.
    n : int
        Micrographs.
    aggregate : str
        See :func:`aggregate_log_probs`.
    tile_features : ndarray, optional
        ``(T, D)`` pooled features of the tiles (their mean per micrograph is L2-normalised).
    tile_layers : dict of str to ndarray, optional
        Layer -> ``(T, C_layer)`` pooled outputs of the tiles (averaged per micrograph).

    Returns
    -------
    MicrographOutputs

    Examples
    --------
    >>> import numpy as np
    >>> lp = np.log(np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]]))
    >>> mo = summarise_tiles(lp, np.array([0, 0, 1]), 2)
    >>> mo.n_tiles.tolist(), mo.log_probs.argmax(1).tolist(), mo.tile_agreement.tolist()
    ([2, 1], [0, 1], [1.0, 1.0])
    """
    out_lp, agree, counts, tile_preds, out_f, tile_f = [], [], [], [], [], []
    for i in range(n):
        sel = owner == i
        lp = aggregate_log_probs(tile_log_probs[sel], aggregate)
        votes = tile_log_probs[sel].argmax(axis=1)
        out_lp.append(lp)
        agree.append(float((votes == lp.argmax()).mean()))
        counts.append(int(sel.sum()))
        tile_preds.append(votes)
        if tile_features is not None:
            tile_f.append(tile_features[sel])
            v = tile_f[-1].mean(axis=0)
            out_f.append(v / max(np.linalg.norm(v), 1e-12))
    layer_f = None
    if tile_layers:
        layer_f = {name: np.stack([v[owner == i].mean(axis=0) for i in range(n)]).astype(np.float32)
                   for name, v in tile_layers.items()}
    return MicrographOutputs(np.stack(out_lp), np.asarray(agree), np.asarray(counts),
                             np.stack(out_f) if out_f else None, tile_preds,
                             tile_f if tile_features is not None else None, layer_f)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution into it (inference only).

    A timm ``BatchNormAct2d`` is replaced by its dropout and activation; a plain
    ``BatchNorm2d`` by an identity.

    Parameters
    ----------
    model : nn.Module
        In eval mode; changed in place.

    Returns
    -------
    nn.Module
        ``model``.
    """
    from timm.layers import BatchNormAct2d

    if model.training:
        raise ValueError("fold_batchnorm needs an eval-mode model")
    for parent in list(model.modules()):
        kids = list(parent.named_children())
        for (_, conv), (n2, bn) in zip(kids, kids[1:]):
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)) or bn.running_var is None:
                continue
            with torch.no_grad():
                scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
                shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
                conv.weight.mul_(scale.view(-1, 1, 1, 1))
                b = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                new_bias = (b - bn.running_mean) * scale + shift
            conv.bias = nn.Parameter(new_bias)
            setattr(parent, n2, nn.Sequential(bn.drop, bn.act) if isinstance(bn, BatchNormAct2d) else nn.Identity())
    return model
