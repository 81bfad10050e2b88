"""The EfficientNet learner: fastai + timm with discriminative fine-tuning.

A timm EfficientNet is split into three parameter groups (stem and early blocks, later
blocks and the head convolution, classifier), so ``slice(lo, hi)`` spreads learning rates
across depth. Schedules: ``discriminative`` (head first with the body frozen, then all layers
with discriminative rates, one-cycle) and ``paper`` (Adam 1e-3, no freezing).
"""

from __future__ import annotations

import functools
import time
from typing import Sequence

import numpy as np
import pandas as pd
import fastai.callback.progress  # noqa: F401  (Learner.no_bar)
import fastai.callback.schedule  # noqa: F401  (Learner.fit_one_cycle)
import torch
from fastai.callback.core import Callback
from fastai.callback.training import BnFreeze
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import F1Score, accuracy
from fastai.optimizer import Adam
from fastai.torch_core import set_seed
from torch import nn

from ._backbones import WeightsInfo, create_backbone
from ..config._sections import StageConfig

__all__ = [
    "efficientnet_splitter",
    "ChannelsLastInputs",
    "create_model",
    "resolve_backbone",
    "make_learner",
    "fit_stage",
    "seed_everything",
    "load_body_weights",
]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (fastai's ``set_seed``, reproducible mode).

    Parameters
    ----------
    seed : int

    Returns
    -------
    None
    """
    set_seed(int(seed), reproducible=True)


def _params(mods: Sequence[nn.Module]) -> list[nn.Parameter]:
    return [p for m in mods for p in m.parameters()]


def efficientnet_splitter(model: nn.Module) -> list[list[nn.Parameter]]:
    """Three parameter groups of a timm EfficientNet: early body, late body, classifier.

    Parameters
    ----------
    model : nn.Module
        A timm EfficientNet (``conv_stem, bn1, blocks, conv_head, bn2, classifier``).

    Returns
    -------
    list of list of Parameter
        ``[stem + first half of the blocks, second half + head conv, classifier]``.
    """
    for name in ("conv_stem", "bn1", "blocks", "conv_head", "bn2", "classifier"):
        if not hasattr(model, name):
            raise ValueError(f"efficientnet_splitter: model has no '{name}' (not a timm EfficientNet)")
    blocks = list(model.blocks)
    half = len(blocks) // 2
    groups = [
        _params([model.conv_stem, model.bn1, *blocks[:half]]),
        _params([*blocks[half:], model.conv_head, model.bn2]),
        _params([model.classifier]),
    ]
    return groups


class ChannelsLastInputs(Callback):
    """Put the model and each input batch in channels_last memory format (faster on CPU)."""

    order = -1

    def before_fit(self) -> None:
        self.learn.model.to(memory_format=torch.channels_last)

    def before_batch(self) -> None:
        self.learn.xb = tuple(
            x.contiguous(memory_format=torch.channels_last) if isinstance(x, torch.Tensor) and x.ndim == 4 else x
            for x in self.learn.xb
        )


def create_model(backbone: str, weights: str, n_classes: int, drop_rate: float = 0.2) -> tuple[nn.Module, WeightsInfo]:
    """A timm classifier with ``n_classes`` outputs and its weights' provenance.

    The new classifier is initialised small (normal, std 0.01; bias 0) so that the first
    logits are near zero: timm's default for a 9-way head gives logits of several units
    on ImageNet features and an initial loss far above log(9).

    Parameters
    ----------
    backbone, weights : str
        See :func:`semcathode.models.create_backbone`.
    n_classes : int
    drop_rate : float

    Returns
    -------
    (nn.Module, WeightsInfo)
    """
    model, info = create_backbone(backbone, weights=weights, num_classes=n_classes, drop_rate=drop_rate)
    head = model.get_classifier()
    if isinstance(head, nn.Linear):
        nn.init.normal_(head.weight, std=0.01)
        nn.init.zeros_(head.bias)
    return model, info


def load_body_weights(model: nn.Module, state: dict[str, torch.Tensor], keep_head: bool = True) -> None:
    """Load a state dict into ``model`` strictly; the classifier is taken only when shapes match.

    Parameters
    ----------
    model : nn.Module
    state : dict
        E.g. a stage-1 model's state dict.
    keep_head : bool
        Copy the classifier too when its shape matches (same classes).

    Returns
    -------
    None
        ``model`` is changed in place; a body that does not fit raises ``ValueError``.
    """
    own = model.state_dict()
    body = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    head = {k: v for k, v in state.items() if k.startswith("classifier.")}
    if keep_head and all(k in own and own[k].shape == v.shape for k, v in head.items()):
        body.update(head)
    missing, unexpected = model.load_state_dict(body, strict=False)
    missing = [k for k in missing if not k.startswith("classifier.")]
    if missing or unexpected:
        raise ValueError(f"stage weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")


def make_learner(
    dls,
    n_classes: int,
    backbone: str = "efficientnet_lite0",
    weights: str = "auto",
    loss_weights: np.ndarray | None = None,
    channels_last: bool = True,
    drop_rate: float = 0.2,
    init_state: dict[str, torch.Tensor] | None = None,
    weight_decay: float = 0.01,
) -> tuple[Learner, WeightsInfo]:
    """A fastai Learner around a timm EfficientNet with the three-group splitter, and where its weights came from.

    Parameters
    ----------
    dls : DataLoaders
        From :func:`semcathode.data.make_dataloaders`.
    n_classes : int
    backbone, weights : str
        See :func:`semcathode.models.create_backbone`.
    loss_weights : ndarray, optional
        Class weights for the cross-entropy (weighted-loss strategy).
    channels_last : bool
        Use channels_last memory format (faster convolutions on CPU).
    drop_rate : float
    init_state : dict, optional
        Start from these weights (e.g. the stage-1 model) instead of ``weights``.
    weight_decay : float

    Returns
    -------
    learner : Learner
        Its ``model`` is a timm network, which carries its input normalisation in its
        ``pretrained_cfg`` (:func:`~semcathode.models.normalization`).
    info : WeightsInfo
        The weights' provenance.
    """
    model, info = create_model(backbone, "scratch" if init_state is not None else weights, n_classes, drop_rate)
    if init_state is not None:
        load_body_weights(model, init_state)
    w = torch.as_tensor(loss_weights, dtype=torch.float32) if loss_weights is not None else None
    cbs = [BnFreeze()] + ([ChannelsLastInputs()] if channels_last else [])
    learn = Learner(
        dls, model, loss_func=CrossEntropyLossFlat(weight=w), opt_func=Adam, splitter=efficientnet_splitter,
        metrics=[accuracy, F1Score(average="macro")], wd=weight_decay, train_bn=False, cbs=cbs,
    )
    _cuda_precision(learn)
    return learn, info


def _cuda_precision(learn: Learner) -> Learner:
    """Mixed precision on CUDA: bfloat16 autocast where the GPU has it (no loss scaling needed),
    else float16 with loss scaling; a CPU learner stays in float32."""
    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            learn.to_bf16()
        else:
            learn.to_fp16()
    return learn


def _in_jupyter_kernel() -> bool:
    """Whether this code runs in a Jupyter kernel (not merely a process that imported ipykernel)."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def fit_stage(learn: Learner, stage: StageConfig, quiet: bool = False, label: str = "",
              record: "RankRecord | None" = None, bar: bool = True) -> pd.DataFrame:
    """Train one stage; returns the per-epoch history (losses, accuracy, macro-F1, wall time).

    ``discriminative``: ``freeze_epochs`` with only the classifier trained (BatchNorm weights
    and running statistics of the frozen body held fixed, fastai's ``BnFreeze``), then
    ``freeze_early_epochs`` with the high-resolution early group (stem and first half of the
    blocks) still frozen, then the remaining epochs of all groups with learning rates
    ``slice(lr / lr_div, lr)``, one-cycle. Freezing the early group skips its backward pass,
    the most expensive part of an epoch at high resolution. ``paper``: ``epochs`` of Adam at
    ``lr``, nothing frozen.

    Parameters
    ----------
    learn : Learner
    stage : StageConfig
    quiet : bool
        No fastai table (the progress bar stays inside a Jupyter kernel).
    label : str
        Names the stage in the per-epoch progress lines.
    record : RankRecord, optional
        Inside a launched DDP group (:func:`semcathode.models._distributed.rank_ctx`): collects
        this rank's shards and losses. Every fit runs as one rank of the group when this process
        is in one, and as today otherwise.
    bar : bool
        With ``quiet``: keep fastai's progress bar when this runs in a Jupyter kernel (off in a
        batch run, whose streamed log would carry the bar's HTML). Outside a kernel there is none.

    Returns
    -------
    DataFrame
        One row per epoch: ``phase``, ``epoch``, losses, ``accuracy``, ``macro_f1``, ``wall_s``.
    """
    hist = []

    from ._distributed import rank_ctx
    from ._epochlog import EpochLog

    # quiet: no fastai table; the progress bar stays only in a Jupyter kernel (JupyterLab shows it)
    # and when asked for (not in a batch run of the pipeline, whose streamed log would carry its HTML)
    interactive = bar and _in_jupyter_kernel()
    ctx = ([learn.no_logging()] + ([] if interactive else [learn.no_bar()])) if quiet else []
    ctx.append(rank_ctx(learn, record))
    name = label or "training"
    for c in ctx:
        c.__enter__()
    try:
        if stage.schedule == "paper":
            learn.unfreeze()
            t0 = time.time()
            learn.fit(stage.epochs, lr=stage.lr, cbs=[EpochLog(name, stage.validate)])
            hist.append(_history(learn, "all", time.time() - t0))
        else:
            if stage.freeze_epochs:
                learn.freeze()
                t0 = time.time()
                learn.fit_one_cycle(stage.freeze_epochs, stage.lr, cbs=[EpochLog(f"{name}, head only", stage.validate)])
                hist.append(_history(learn, "head", time.time() - t0))
            early = min(stage.freeze_early_epochs, stage.epochs)
            if early:
                learn.freeze_to(1)
                t0 = time.time()
                learn.fit_one_cycle(early, slice(stage.lr / stage.lr_div, stage.lr),
                                    cbs=[EpochLog(f"{name}, early blocks frozen", stage.validate)])
                hist.append(_history(learn, "late", time.time() - t0))
            if stage.epochs - early:
                learn.unfreeze()
                t0 = time.time()
                learn.fit_one_cycle(stage.epochs - early, slice(stage.lr / stage.lr_div, stage.lr),
                                    cbs=[EpochLog(f"{name}, all layers", stage.validate)])
                hist.append(_history(learn, "all", time.time() - t0))
    finally:
        for c in reversed(ctx):
            c.__exit__(None, None, None)
    return pd.concat(hist, ignore_index=True) if hist else pd.DataFrame()


def _history(learn: Learner, phase: str, wall: float) -> pd.DataFrame:
    names = [n for n in learn.recorder.metric_names if n not in ("epoch", "time")]
    rows = [dict(zip(names, map(float, v))) for v in learn.recorder.values]
    df = pd.DataFrame(rows)
    df.columns = [c.replace("f1_score", "macro_f1") for c in df.columns]
    df.insert(0, "phase", phase)
    df.insert(1, "epoch", range(len(df)))
    df["wall_s"] = wall / max(1, len(df))
    return df


@functools.cache
def resolve_backbone(name: str = "efficientnet_lite0", weights: str = "auto") -> str:
    """The backbone that :func:`~semcathode.models.create_backbone` returns for ``name`` and ``weights``.

    Only ``efficientnet_b0`` with ``weights='auto'`` can differ from ``name``: it falls back to
    ``efficientnet_lite0`` when the hub cannot give its weights. Finding that out means trying
    the hub once, so the answer is remembered for the process (``functools.cache``; call
    ``resolve_backbone.cache_clear()`` to ask again, e.g. after the network came back).

    Parameters
    ----------
    name : str
        Registry name, one of :func:`~semcathode.models._backbones.list_backbones` (``cfg.model.backbone``).
    weights : str
        One of :data:`~semcathode.models._backbones.WEIGHT_CHOICES` (``cfg.model.weights``).

    Returns
    -------
    str
        The registry name of the architecture a run gets.

    Examples
    --------
    >>> resolve_backbone("efficientnet_lite0", "auto"), resolve_backbone("efficientnet_b0", "scratch")
    ('efficientnet_lite0', 'efficientnet_b0')
    """
    if weights in ("scratch", "packaged", "hub") or name == "efficientnet_lite0":
        return name
    from ._backbones import create_backbone

    _, info = create_backbone(name, weights=weights, num_classes=0)
    return info.backbone
