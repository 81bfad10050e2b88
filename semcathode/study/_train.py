"""Training one model of the study: the backbone actually used, the stage schedule in optimiser
steps, the cached fit (see :mod:`semcathode.study._store`) and stage 1 on the source domain.

One stage-1 model per seed is trained once, cached on disk (safetensors, keyed by the
configuration fields that shape it) and reused by every arm and every later run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from ..config._sections import ModelConfig, StageConfig
from ..config._settings import StudySettings
from ..data import Study
from ..data._loaders import class_weights, make_dataloaders
from ..models._learner import resolve_backbone
from ..models._learner import create_model, fit_stage, load_body_weights, make_learner, seed_everything
from ..models._export import ExportedModel
from ..models._head import FeatureScale, linear_head
from ..models._trunk import TrunkCache, TrunkSpec, resolve_trunk_dtype, split_network, trunk_digest
from ._store import ModelStore, model_store, stage1_key

__all__ = ["TrainedModel", "model_object", "input_norm", "trunk_cache", "trunk_spec", "warm_trunk_cache",
           "train_stage1"]


@dataclass
class TrainedModel:
    """The training record of one model: the learner, history, steps and time, and the model.

    The model itself is the model object, :attr:`model_object` (the trained network described by
    ``settings``, the :class:`~semcathode.config._settings.StudySettings` of the study that trained it:
    pre-processing, normalisation, aggregation, trunk boundary); evaluation, familiarity and the
    validity checks read it through that object, with :attr:`trunk` for the cached trunk maps, and
    :meth:`to_model` gives a copy for export, predict and Grad-CAM. ``steps`` counts the optimiser
    steps it was trained for (all stages of this model only).
    """

    learner: object
    arm: str
    seed: int
    history: pd.DataFrame
    weights_info: dict
    wall_s: float
    settings: StudySettings | None = None
    steps: int = 0
    network: torch.nn.Module | None = None  # the whole network when the learner trains only its top
    trunk: TrunkCache | None = None  # where the frozen trunk's maps of this model's inputs are cached
    classes: list[str] = field(default_factory=list)  # what its outputs mean (empty for a bare backbone)

    @property
    def model(self) -> torch.nn.Module:
        """The whole network (``learner.model`` unless the learner trains only its top)."""
        return self.network if self.network is not None else self.learner.model

    @property
    def input_norm(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(mean, std)`` of the inputs, as the network's own ``pretrained_cfg`` gives them
        (the same name as :attr:`semcathode.models.ExportedModel.input_norm`)."""
        from ..models._backbones import normalization

        return normalization(self.model)

    def to_model(self, metrics: dict | None = None, trust: dict | None = None) -> ExportedModel:
        """The model object of this trained model (:func:`model_object`):
        what predict, Grad-CAM and the CAM measures take, in memory, or written with ``.save(path)``.

        Parameters
        ----------
        metrics : dict, optional
        trust : dict, optional
            From :func:`semcathode.study._trust.calibrate`.

        Returns
        -------
        ExportedModel
        """
        return model_object(self, None, metrics, trust)

    @property
    def model_object(self) -> ExportedModel:
        """This model as the model object, on the trained network itself (not a copy, where it was trained):
        what the study's evaluation, familiarity and robustness read, with :attr:`trunk` for the cached maps."""
        return model_object(self, copy=False)


def model_object(tm: TrainedModel, classes: Sequence[str] | None = None, metrics: dict | None = None,
                 trust: dict | None = None, copy: bool = True) -> ExportedModel:
    """The model object of a trained model, in memory: its whole network (a copy in eval mode on the
    CPU, unless ``copy`` is False) with everything needed to feed it, as the model file describes it.

    Parameters
    ----------
    tm : TrainedModel
        Its ``settings`` give the pre-processing, normalisation and aggregation.
    classes : sequence of str, optional
        Default ``tm.classes``.
    metrics : dict, optional
        Recorded in the description (e.g. the test metrics).
    trust : dict, optional
        Calibration and familiarity from :func:`semcathode.study._trust.calibrate`.
    copy : bool
        False: the model object holds ``tm.model`` itself (evaluation in the study, on its device;
        its ``classes`` may then be empty).

    Returns
    -------
    ExportedModel
        Not yet saved (``path`` None); training goes on without it.
    """
    import copy as _copy

    from ..data._factory import preprocess_params
    from ..models._backbones import BACKBONES

    classes = list(classes if classes is not None else tm.classes)
    if not classes and copy:  # the evaluation view (copy False) reads outputs only; a model file needs them named
        raise ValueError(f"{tm.arm} seed {tm.seed}: the trained model carries no classes; pass classes=")

    settings = tm.settings
    winfo = dict(tm.weights_info)
    backbone = winfo.get("backbone", settings.model.backbone)
    timm_name = winfo.get("timm_name") or BACKBONES.get(backbone, backbone)
    mean, std = tm.input_norm
    return ExportedModel.describe(
        _copy.deepcopy(tm.model).cpu().eval() if copy else tm.model, classes, backbone, timm_name, preprocess_params(settings.preprocess), settings.preprocess.normalize, mean, std,
        weights_info=winfo, metrics=metrics, config_hash=settings.hash(), bar_method=settings.data.bar_method,
        bar_fraction=settings.data.bar_fraction,
        # where the frozen part ends (0: every layer trained); the file holds the whole network either way
        extra={"arm": tm.arm, "seed": tm.seed, "trunk": int(settings.model.trunk),
               **({"trunk_dtype": resolve_trunk_dtype(settings.model.trunk_dtype)} if settings.model.trunk else {})},
        aggregate=settings.evaluate.aggregate, trust=trust,
    )


def _log(log: Callable[[str], None] | None, msg: str) -> None:
    if log:
        log(msg)


def input_norm(model: ModelConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Input normalisation of the backbone a run actually gets.

    Parameters
    ----------
    model : ModelConfig
        ``settings.model`` (its ``backbone`` and ``weights``; see
        :func:`semcathode.models._learner.resolve_backbone`).

    Returns
    -------
    (mean, std)
        Per-channel tuples.
    """
    from ..models._backbones import normalization

    return normalization(resolve_backbone(model.backbone, model.weights))


def _crops(settings: StudySettings) -> int:
    """Network inputs per micrograph and epoch (cached tiles with a trunk, random crops in scale mode, else one)."""
    if settings.model.trunk:
        return settings.model.tiles_per_epoch
    return settings.preprocess.crops_per_image if settings.preprocess.mode == "scale" else 1


def trunk_cache(settings: StudySettings) -> TrunkCache:
    """The trunk-activation cache of a run: ``settings.cache_root / "trunk"``, keeping ``model.train_tiles``
    tiles of each training micrograph.

    Parameters
    ----------
    settings : StudySettings

    Returns
    -------
    TrunkCache
    """
    return TrunkCache(settings.cache_root / "trunk", train_tiles=settings.model.train_tiles)


def trunk_spec(settings: StudySettings, network: torch.nn.Module) -> TrunkSpec:
    """What the cached maps of ``network``'s frozen trunk depend on (``model.trunk`` > 0).

    Parameters
    ----------
    settings : StudySettings
    network : nn.Module
        The whole network (its first ``settings.model.trunk`` block stages are the trunk).

    Returns
    -------
    TrunkSpec
    """
    trunk, _ = split_network(network, settings.model.trunk)
    mean, std = input_norm(settings.model)
    backbone = resolve_backbone(settings.model.backbone, settings.model.weights)
    return TrunkSpec(backbone=backbone, depth=settings.model.trunk, digest=trunk_digest(trunk),
                     size=settings.preprocess.size, tile_stride=settings.preprocess.tile_stride,
                     normalize=settings.preprocess.normalize, mean=tuple(mean), std=tuple(std),
                     dtype=resolve_trunk_dtype(settings.model.trunk_dtype))


def _head_epochs(stage: StageConfig) -> int:
    """Head-only epochs run before ``stage.epochs`` (none in the paper schedule)."""
    return stage.freeze_epochs if stage.schedule != "paper" else 0


def _rank_batch(batch_size: int) -> int:
    """This process's share of the global batch: all of it, or ``1 / world size`` of it as one rank of a
    launched group (so the optimiser steps and the schedule are those of one process)."""
    import torch.distributed as dist

    size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    return max(2, batch_size // size)


def _steps_per_epoch(stage: StageConfig, n_train: int) -> int:
    """Optimiser steps of one epoch over ``n_train`` inputs (the last partial batch is dropped)."""
    bs = max(2, min(stage.batch_size, n_train))
    return max(1, n_train // bs)


def _stage_epochs(stage: StageConfig, n_train: int, max_epochs: int = 0) -> StageConfig:
    """Raise the epochs so that the stage makes at least ``min_steps`` optimiser steps
    (capped at ``max_epochs`` when given)."""
    if not stage.min_steps:
        return stage
    need = math.ceil(stage.min_steps / _steps_per_epoch(stage, n_train))
    epochs = max(stage.epochs, need - _head_epochs(stage))
    if max_epochs:
        epochs = min(epochs, max(stage.epochs, max_epochs))
    return replace(stage, epochs=epochs)


def _stage_steps(stage: StageConfig, n_train: int) -> int:
    """Optimiser steps of the whole stage (head-only epochs included)."""
    return (stage.epochs + _head_epochs(stage)) * _steps_per_epoch(stage, n_train)


@dataclass
class _Fit:
    """What :func:`_cached_fit` gives back."""

    learner: object
    history: pd.DataFrame
    weights_info: dict
    wall_s: float
    steps: int
    cached: bool = False
    network: torch.nn.Module | None = None


def _fit(
    train_items: pd.DataFrame,
    valid_items: pd.DataFrame | None,
    classes: Sequence[str],
    settings: StudySettings,
    stage: StageConfig,
    seed: int,
    init: str,
    strategy: str | None,
    init_state: dict | None = None,
    quiet: bool = True,
    label: str = "",
    max_epochs: int = 0,
    record: object | None = None,
) -> tuple[object, pd.DataFrame, dict, int]:
    """Build the dataloaders and learner and train one stage: ``(learner, history, weights info, steps, network)``
    (``network`` is None when the learner trains the whole network)."""
    if settings.model.trunk:
        return _fit_top(train_items, valid_items, classes, settings, stage, seed, init, strategy, init_state, quiet,
                        label, max_epochs, record)
    seed_everything(seed)
    valid = valid_items if valid_items is not None and stage.validate else train_items.head(0)
    items = pd.concat([train_items.assign(split="train"), valid.assign(split="valid")])
    mean, std = input_norm(settings.model)
    sampler = None
    if strategy == "oversample":
        sampler = "replicate" if settings.protocol.sampler == "replicate" else "weighted"
    dls = make_dataloaders(items, classes, bs=_rank_batch(stage.batch_size), normalize=settings.preprocess.normalize, mean=mean, std=std,
                           sampler=sampler, oversample_target=settings.protocol.oversample_target, seed=seed,
                           crops_per_image=_crops(settings), tile_stride=settings.preprocess.tile_stride)
    lw = class_weights(train_items, classes, settings.protocol.class_weights) if strategy == "weighted_loss" else None
    weights = {"stage1": "scratch", "imagenet": settings.model.weights, "scratch": "scratch"}[init]
    backbone = resolve_backbone(settings.model.backbone, settings.model.weights)
    learn, winfo = make_learner(dls, len(classes), backbone, weights, loss_weights=lw,
                         channels_last=settings.model.channels_last, drop_rate=settings.model.drop_rate,
                         init_state=init_state, weight_decay=stage.weight_decay)
    n_train = len(dls.train_ds)
    run_stage = _stage_epochs(stage, n_train, max_epochs)
    hist = fit_stage(learn, run_stage, quiet=quiet, label=label, record=record,
                     bar=settings.distributed.progress_bar)
    return learn, hist, winfo.to_dict(), _stage_steps(run_stage, n_train), None


def _fit_top(train_items: pd.DataFrame, valid_items: pd.DataFrame | None, classes: Sequence[str], settings: StudySettings,
             stage: StageConfig, seed: int, init: str, strategy: str | None, init_state: dict | None = None,
             quiet: bool = True, label: str = "", max_epochs: int = 0, record: object | None = None):
    """:func:`_fit` with ``model.trunk`` > 0: the top trained on the cached maps of the frozen trunk."""
    from ..data._loaders import oversample
    from ..models._top import CachedTiles, make_top_learner

    seed_everything(seed)
    weights = {"stage1": "scratch", "imagenet": settings.model.weights, "scratch": "scratch"}[init]
    backbone = resolve_backbone(settings.model.backbone, settings.model.weights)
    network, info = create_model(backbone, "scratch" if init_state is not None else weights,
                                 len(classes), settings.model.drop_rate)
    if settings.model.head == "linear":
        linear_head(network, settings.model.head_layer)
    if init_state is not None:
        load_body_weights(network, init_state)
    network.eval()  # the trunk's BatchNorm keeps its statistics; the learner puts the top in train mode
    trunk, top = split_network(network, settings.model.trunk)
    spec, cache = trunk_spec(settings, network), trunk_cache(settings)
    valid = valid_items if valid_items is not None and stage.validate else train_items.head(0)
    train = train_items
    if strategy == "oversample":
        train = oversample(train_items, classes, target=settings.protocol.oversample_target, seed=seed)
    run_epochs = stage.epochs + _head_epochs(stage) + stage.min_steps
    views = list(settings.model.trunk_views) if run_epochs else ["full"]
    cache.build(train_items.drop_duplicates("cache_path"), trunk, spec, views=views, log=None if quiet else print)
    if len(valid):
        cache.build(valid, trunk, spec, views=["full"], log=None)
    train_ds = CachedTiles(train, classes, cache, spec, views=views, tiles_per_epoch=settings.model.tiles_per_epoch,
                           seed=seed, pooled=top.pointwise)
    valid_ds = CachedTiles(valid, classes, cache, spec, views=["full"], tiles_per_epoch=0, pooled=top.pointwise)
    if isinstance(top.bn2, FeatureScale) and run_epochs:
        # a linear head standardises with the statistics of the images it is trained on, as BatchNorm in a
        # network fine-tuned in train mode does (the paper's fine-tuning); a stored model keeps its own
        top.bn2.fit(_pooled_inputs(train_ds))
    lw = class_weights(train_items, classes, settings.protocol.class_weights) if strategy == "weighted_loss" else None
    learn = make_top_learner(top, train_ds, valid_ds, bs=_rank_batch(stage.batch_size), loss_weights=lw,
                             weight_decay=stage.weight_decay, label_smoothing=settings.model.label_smoothing, seed=seed)
    n_train = len(train_ds)
    run_stage = _stage_epochs(stage, n_train, max_epochs)
    hist = fit_stage(learn, run_stage, quiet=quiet, label=label, record=record,
                     bar=settings.distributed.progress_bar)
    network.cpu()  # a top trained on a GPU comes back to its trunk: one device for the whole network
    return learn, hist, info.to_dict(), _stage_steps(run_stage, n_train), network


def warm_trunk_cache(items: pd.DataFrame, settings: StudySettings, log: Callable[[str], None] | None = print) -> int:
    """Run the frozen trunk once over every micrograph of ``items`` that the trunk cache lacks
    (``model.trunk`` > 0), with progress lines and an ETA: rows of a ``train`` split in every one of
    ``model.trunk_views``, the others in the ``full`` view. Later stages, arms and evaluations then
    only read the cache.

    Parameters
    ----------
    items : DataFrame
        Rows of :func:`semcathode.data.build_items` (every domain and split of a study).
    settings : StudySettings
    log : callable, optional

    Returns
    -------
    int
        Micrograph views computed now (0: everything was cached).

    Examples
    --------
    >>> import tempfile
    >>> import semcathode as sc
    >>> _, study = sc.data.example_study(tempfile.mkdtemp())
    >>> settings = study.settings.replace(model={"trunk": 5})
    >>> warm_trunk_cache(study.items, settings, log=None) > 0, warm_trunk_cache(study.items, settings, log=None)
    (True, 0)
    """
    if not settings.model.trunk or items.empty:
        return 0
    backbone = resolve_backbone(settings.model.backbone, settings.model.weights)
    network, _ = create_model(backbone, settings.model.weights, 2, settings.model.drop_rate)
    network.eval()
    trunk, _ = split_network(network, settings.model.trunk)
    spec, cache = trunk_spec(settings, network), trunk_cache(settings)
    rows = items.drop_duplicates("cache_path")
    is_train = rows["split"].astype(str).eq("train") if "split" in rows else pd.Series(False, index=rows.index)
    done = 0
    for part, views, what in ((rows[is_train], list(settings.model.trunk_views), "training micrographs"),
                              (rows[~is_train], ["full"], "evaluated micrographs")):
        todo = sum(not (p.exists() and cache.stages_path(p).exists())
                   for v in views for p in (cache.path(r, spec, v) for _, r in part.iterrows()))
        if todo:
            _log(log, f"trunk cache: {todo} views of {what} to compute (stem + blocks 0-{settings.model.trunk - 1}, "
                      f"{resolve_trunk_dtype(settings.model.trunk_dtype)}, {', '.join(views)})")
            cache.build(part, trunk, spec, views=views, log=log)
            done += todo
    return done


def _pooled_inputs(data) -> torch.Tensor:
    """Every cached tile of every view of a training :class:`~semcathode.models._top.CachedTiles`,
    pooled over space: ``(T, C)`` (the statistics a new linear head is standardised with)."""
    first = ~data.rows["cache_path"].duplicated().to_numpy()  # each micrograph once, however often oversampled
    parts = [np.asarray(m, np.float32).reshape(len(m), m.shape[1], -1).mean(-1)
             for v in data.views for i, m in enumerate(data.maps[v]) if first[i]]
    return torch.from_numpy(np.concatenate(parts))


def _cached_fit(store: ModelStore, key: str, train_items: pd.DataFrame, valid_items: pd.DataFrame | None,
                classes: Sequence[str], settings: StudySettings, stage: StageConfig, seed: int, init: str,
                strategy: str | None, init_state: dict | None = None, label: str = "", max_epochs: int = 0,
                log: Callable[[str], None] | None = print) -> _Fit:
    """:func:`_fit`, or the stored model under ``key`` (loaded into a freshly built learner).

    With ``distributed.processes`` above 1 a missing model is trained by a launched group of that
    many processes (:func:`semcathode.study._launch.launch_fit`), which writes it into the
    store; it is then loaded from there like any stored model."""
    hit = store.get(key)
    if hit is None and settings.distributed.processes > 1:
        from ._launch import launch_fit

        launch_fit(store.root, key, train_items, valid_items, classes, settings, stage, seed, init, strategy,
                   init_state, label=label, max_epochs=max_epochs, log=log)
        hit = store.get(key)
        launched = True
    else:
        launched = False
    if hit is not None:
        state, meta = hit
        learn, _, _, _, network = _fit(train_items, None, classes, settings,
                                       replace(stage, epochs=0, freeze_epochs=0, min_steps=0),
                                       seed, "stage1", "none", init_state=state)
        return _Fit(learn, pd.DataFrame(meta.get("history", [])), meta.get("weights", {}),
                    float(meta.get("wall_s", 0)), int(meta.get("steps", 0)), cached=not launched, network=network)
    t0 = time.time()
    learn, hist, winfo, steps, network = _fit(train_items, valid_items, classes, settings, stage, seed, init, strategy,
                                              init_state, label=label, max_epochs=max_epochs)
    wall = time.time() - t0
    store.put(key, network if network is not None else learn.model,
              {"key": key, "history": hist.to_dict(orient="records"), "weights": winfo, "wall_s": wall, "steps": steps})
    return _Fit(learn, hist, winfo, wall, steps, network=network)


def train_stage1(
    study: Study,
    seed: int,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] | None = print,
) -> TrainedModel:
    """Stage 1: train on the source domain's train split (validated on its valid split).

    Class imbalance of the source is handled by ``protocol.stage1_imbalance`` (default
    targeted oversampling: the small formation/cycled classes otherwise cost macro-F1).
    The model is cached in the :class:`~semcathode.study.ModelStore` under
    ``stage1-<key>`` (see :func:`~semcathode.study._store.stage1_key`); a later call with the same
    model-changing configuration and seed loads it.

    Parameters
    ----------
    study : Study
        Its source train and valid rows, classes and settings.
    seed : int
    cache_dir : str or Path, optional
        Root of the model store (default: the settings' cache root).
    log : callable, optional
        Receives one progress line.

    Returns
    -------
    TrainedModel
        ``arm="stage1"``.

    Examples
    --------
    >>> import tempfile
    >>> import semcathode as sc
    >>> _, study = sc.data.example_study(tempfile.mkdtemp())
    >>> s1 = sc.train_stage1(study, 0, log=None)  # doctest: +ELLIPSIS
    [stage 1 seed 0, all layers] epoch 1/1 · train_loss ...
    >>> s1.arm, s1.seed, s1.steps > 0
    ('stage1', 0, True)
    """
    settings, items, classes = study.settings, study.items, study.classes
    store = model_store(settings, cache_dir)
    src = items[items["domain"] == "source"]
    train, valid = src[src["split"] == "train"], src[src["split"] == "valid"]
    key = f"stage1-{stage1_key(settings, seed, items)}"
    if settings.model.trunk and (settings.distributed.processes <= 1 or store.paths(key)[0].exists()):
        warm_trunk_cache(items, settings, log=log)  # (a launched group builds its training micrographs rank-sharded)
    fit = _cached_fit(store, key, train, valid, classes, settings, settings.stage1, seed, "imagenet",
                      settings.protocol.stage1_imbalance, label=f"stage 1 seed {seed}", log=log)
    _log(log, f"stage 1 seed {seed}: " + (f"reused cached model {key}" if fit.cached else
                                          f"trained on {len(train)} source micrographs in {fit.wall_s:.0f} s"))
    return TrainedModel(fit.learner, "stage1", seed, fit.history, fit.weights_info, fit.wall_s, settings=settings, steps=fit.steps,
                        network=fit.network, trunk=trunk_cache(settings) if settings.model.trunk else None,
                        classes=list(classes))
