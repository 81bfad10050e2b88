"""The two-stage transfer protocol: stage 1 on the source, stage 2 arms on the target.

Arms (stage 2 always starts with a fresh optimiser):

==================  ===================  =============================
arm                 initial weights      imbalance strategy in stage 2
==================  ===================  =============================
pre_ft_oversample   stage-1 model        targeted oversampling
pre_ft_weighted     stage-1 model        class-weighted loss
pre_ft              stage-1 model        none
ft_only             ImageNet             targeted oversampling
scratch_ft          random               targeted oversampling
pretrain_only       stage-1 model        (no stage 2: evaluated as is)
==================  ===================  =============================

One stage-1 model per seed is trained once, cached on disk (safetensors, keyed by the hash
of the configuration that produced it) and reused by every arm and every later run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from .._files import atomic_write_json
from .._progress import progress as _progress
from ..config.run import RunConfig, StageConfig, config_hash
from ..data.loaders import class_weights, make_dataloaders
from ..metrics.classification import classification_metrics, results_row
from ..models.learner import fit_stage, make_learner, seed_everything

__all__ = [
    "ARMS",
    "Arm",
    "ModelStore",
    "resolve_backbone",
    "TrainedModel",
    "stage1_key",
    "train_stage1",
    "train_arm",
    "evaluate_model",
    "run_arms",
    "learning_curve",
    "split_rows",
    "evaluate_models",
    "evaluate_splits",
    "predict_micrographs",
    "micrograph_outputs",
    "fair_stage",
    "new_domain_curve",
    "stack_histories",
]


@dataclass(frozen=True)
class Arm:
    """An arm of the study: where stage 2 starts and how it handles class imbalance."""

    name: str
    init: str  # stage1 | imagenet | scratch
    strategy: str | None  # oversample | weighted_loss | none | None (no stage 2)
    label: str


ARMS: dict[str, Arm] = {
    a.name: a
    for a in [
        Arm("pre_ft_oversample", "stage1", "oversample", "Pre+FT (oversample)"),
        Arm("pre_ft_weighted", "stage1", "weighted_loss", "Pre+FT (weighted loss)"),
        Arm("pre_ft", "stage1", "none", "Pre+FT (no balancing)"),
        Arm("ft_only", "imagenet", "oversample", "FT-only (ImageNet -> target)"),
        Arm("scratch_ft", "scratch", "oversample", "Scratch+FT"),
        Arm("pretrain_only", "stage1", None, "Pretrain-only (stage-1 model on the target)"),
    ]
}


@dataclass
class TrainedModel:
    """A trained model with what is needed to evaluate, export and explain it.

    ``cfg`` (the run configuration) gives its pre-processing, normalisation and aggregation;
    ``steps`` counts the optimiser steps it was trained for (all stages of this model only).
    """

    learner: object
    arm: str
    seed: int
    history: pd.DataFrame
    weights_info: dict
    wall_s: float
    cfg: RunConfig | None = None
    steps: int = 0

    @property
    def model(self) -> torch.nn.Module:
        return self.learner.model


def _log(log: Callable[[str], None] | None, msg: str) -> None:
    if log:
        log(msg)


_RESOLVED: dict[tuple[str, str], str] = {}


def resolve_backbone(cfg: RunConfig) -> str:
    """The backbone a run actually gets: ``efficientnet_b0`` with ``weights=auto`` falls back to
    ``efficientnet_lite0`` when the hub cannot be reached (decided once per process)."""
    from ..models.backbones import create_backbone

    key = (cfg.model.backbone, cfg.model.weights)
    if key not in _RESOLVED:
        if cfg.model.weights in ("scratch", "packaged") or cfg.model.backbone == "efficientnet_lite0":
            _RESOLVED[key] = cfg.model.backbone
        else:
            _, info = create_backbone(cfg.model.backbone, weights=cfg.model.weights, num_classes=0)
            _RESOLVED[key] = info.backbone
    return _RESOLVED[key]


def _norm(cfg: RunConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Input normalisation of the backbone actually used (see :func:`resolve_backbone`)."""
    from ..models.backbones import normalization

    return normalization(resolve_backbone(cfg))


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
    frozen = stage.freeze_epochs if stage.schedule != "paper" else 0  # paper: no head-only epochs
    epochs = max(stage.epochs, need - frozen)
    if max_epochs:
        epochs = min(epochs, max(stage.epochs, max_epochs))
    return replace(stage, epochs=epochs)


def _stage_steps(stage: StageConfig, n_train: int) -> int:
    frozen = stage.freeze_epochs if stage.schedule != "paper" else 0
    return (stage.epochs + frozen) * _steps_per_epoch(stage, n_train)


def _fit(
    train_items: pd.DataFrame,
    valid_items: pd.DataFrame | None,
    classes: Sequence[str],
    cfg: RunConfig,
    stage: StageConfig,
    seed: int,
    init: str,
    strategy: str | None,
    init_state: dict | None = None,
    quiet: bool = True,
    label: str = "",
    max_epochs: int = 0,
) -> tuple[object, pd.DataFrame, dict, int]:
    seed_everything(seed)
    items = pd.concat([train_items.assign(split="train"),
                       (valid_items if valid_items is not None and stage.validate else train_items.head(0)).assign(split="valid")])
    mean, std = _norm(cfg)
    sampler = None
    if strategy == "oversample":
        sampler = "replicate" if cfg.protocol.sampler == "replicate" else "weighted"
    dls = make_dataloaders(items, classes, bs=stage.batch_size, normalize=cfg.preprocess.normalize, mean=mean, std=std,
                           sampler=sampler, oversample_target=cfg.protocol.oversample_target, seed=seed,
                           crops_per_image=_crops(cfg), tile_stride=cfg.preprocess.tile_stride)
    lw = class_weights(train_items, classes, cfg.protocol.class_weights) if strategy == "weighted_loss" else None
    weights = {"stage1": "scratch", "imagenet": cfg.model.weights, "scratch": "scratch"}[init]
    learn = make_learner(dls, len(classes), resolve_backbone(cfg), weights, loss_weights=lw,
                         channels_last=cfg.model.channels_last, drop_rate=cfg.model.drop_rate,
                         init_state=init_state, weight_decay=stage.weight_decay)
    n_train = len(dls.train_ds)
    run_stage = _stage_epochs(stage, n_train, max_epochs)
    hist = fit_stage(learn, run_stage, quiet=quiet, label=label)
    return learn, hist, learn.weights_info.to_dict(), _stage_steps(run_stage, n_train)


def _crops(cfg: RunConfig) -> int:
    return cfg.preprocess.crops_per_image if cfg.preprocess.mode == "scale" else 1


class ModelStore:
    """Trained weights on disk (safetensors + JSON), keyed by configuration hashes.

    Parameters
    ----------
    root : str or Path, optional
        Folder; default ``<cache>/models``.
    """

    def __init__(self, root: str | Path | None = None):
        from ..config.paths import cache_root

        self.root = Path(root) if root else cache_root() / "models"

    def paths(self, key: str) -> tuple[Path, Path]:
        w = self.root / f"{key}.safetensors"
        return w, w.with_suffix(".json")

    def get(self, key: str) -> tuple[dict, dict] | None:
        """``(state_dict, meta)`` or None when absent or unreadable."""
        from safetensors.torch import load_file

        w, j = self.paths(key)
        if not (w.exists() and j.exists()):
            return None
        try:
            return load_file(str(w)), json.loads(j.read_text())
        except Exception:  # corrupt entry: treat as absent, it will be rewritten
            return None

    def put(self, key: str, model: torch.nn.Module, meta: dict) -> None:
        from safetensors.torch import save_file

        from .._files import atomic_save

        w, j = self.paths(key)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        atomic_save(w, lambda tmp: save_file(state, tmp))
        atomic_write_json(j, meta)


def _items_key(items: pd.DataFrame) -> str:
    import hashlib

    blob = "|".join(sorted(f"{a}:{b}" for a, b in zip(items["sha256"], items.get("shift", [""] * len(items)))))
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _store(cfg: RunConfig, cache_dir: str | Path | None) -> ModelStore:
    """The model store under ``cache_dir``, else under the configuration's cache root."""
    from ..config.paths import cache_root

    return ModelStore(Path(cache_dir or cache_root(cfg)) / "models")


def _cached_fit(store: ModelStore, key: str, train_items, valid_items, classes, cfg, stage, seed, init, strategy,
                init_state=None, label: str = "", max_epochs: int = 0) -> tuple[object, pd.DataFrame, dict, float, bool, int]:
    hit = store.get(key)
    if hit is not None:
        state, meta = hit
        learn, _, _, _ = _fit(train_items, None, classes, cfg, replace(stage, epochs=0, freeze_epochs=0, min_steps=0),
                              seed, "stage1", "none", init_state=state)
        return (learn, pd.DataFrame(meta.get("history", [])), meta.get("weights", {}), float(meta.get("wall_s", 0)),
                True, int(meta.get("steps", 0)))
    t0 = time.time()
    learn, hist, winfo, steps = _fit(train_items, valid_items, classes, cfg, stage, seed, init, strategy, init_state,
                                     label=label, max_epochs=max_epochs)
    wall = time.time() - t0
    store.put(key, learn.model, {"key": key, "history": hist.to_dict(orient="records"), "weights": winfo, "wall_s": wall,
                                 "steps": steps})
    return learn, hist, winfo, wall, False, steps


def stage1_key(cfg: RunConfig, seed: int, items: pd.DataFrame | None = None) -> str:
    """Hash of everything that determines a stage-1 model: data, pre-processing, model and
    stage-1 configuration, the seed and (given ``items``) the exact source train images."""
    key = f"{config_hash(cfg, 'data', 'preprocess', 'model', 'stage1', 'target')}-{cfg.protocol.stage1_imbalance}-s{seed}"
    if items is not None:
        src = items[(items["domain"] == "source") & (items["split"] == "train")]
        key += f"-{_items_key(src)}"
    return key


def train_stage1(
    items: pd.DataFrame,
    cfg: RunConfig,
    seed: int,
    classes: Sequence[str],
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] | None = print,
) -> TrainedModel:
    """Stage 1: train on the source domain's train split (validated on its valid split).

    Class imbalance of the source is handled by ``protocol.stage1_imbalance`` (default
    targeted oversampling: the small formation/cycled classes otherwise cost macro-F1).

    The model is cached in the :class:`ModelStore` under ``stage1-<key>`` (see
    :func:`stage1_key`); a later call with the same configuration and seed loads it.
    """
    store = _store(cfg, cache_dir)
    src = items[items["domain"] == "source"]
    train, valid = src[src["split"] == "train"], src[src["split"] == "valid"]
    key = f"stage1-{stage1_key(cfg, seed, items)}"
    learn, hist, winfo, wall, hit, steps = _cached_fit(store, key, train, valid, classes, cfg, cfg.stage1, seed, "imagenet",
                                                       cfg.protocol.stage1_imbalance, label=f"stage 1 seed {seed}")
    _log(log, f"stage 1 seed {seed}: " + (f"reused cached model {key}" if hit else
                                          f"trained on {len(train)} source micrographs in {wall:.0f} s"))
    return TrainedModel(learn, "stage1", seed, hist, winfo, wall, cfg=cfg, steps=steps)


def train_arm(
    arm: str,
    train_items: pd.DataFrame,
    cfg: RunConfig,
    seed: int,
    classes: Sequence[str],
    stage1: TrainedModel | None = None,
    valid_items: pd.DataFrame | None = None,
    cache_dir: str | Path | None = None,
    stage1_steps: int | None = None,
) -> TrainedModel:
    """Stage 2 of one arm on ``train_items`` (the target's train rows or a subset of them).

    Arms that start from ImageNet or from scratch get the fair budget of :func:`fair_stage`
    (``protocol.fair_budget``): ``stage1_steps`` defaults to the stage-1 model's own count.
    Trained weights are cached in the :class:`ModelStore` keyed by the configuration, arm,
    seed and the exact train images, so resumed runs and later notebooks reuse them.
    """
    a = ARMS[arm]
    if a.init == "stage1" and stage1 is None:
        raise ValueError(f"arm {arm} needs the stage-1 model")
    if stage1_steps is None:
        stage1_steps = stage1.steps if stage1 is not None else 0
    init_state = None
    if a.init == "stage1":
        init_state = {k: v.detach().cpu() for k, v in stage1.model.state_dict().items()}
    if a.strategy is None:  # pretrain-only: the stage-1 model as it is
        return TrainedModel(stage1.learner, arm, seed, pd.DataFrame(), stage1.weights_info, 0.0, cfg=cfg, steps=0)
    store = _store(cfg, cache_dir)
    stage, max_epochs = cfg.stage2, 0
    if a.init != "stage1" and cfg.protocol.fair_budget:
        stage, max_epochs = fair_stage(cfg, train_items, stage1_steps), cfg.protocol.fair_max_epochs
    key = (f"stage2-{config_hash(cfg, 'data', 'preprocess', 'model', 'stage1', 'stage2', 'target', 'protocol')}"
           f"-{arm}-s{seed}-{_items_key(train_items)}")
    learn, hist, winfo, wall, _, steps = _cached_fit(store, key, train_items, valid_items, classes, cfg, stage, seed,
                                                     a.init, a.strategy, init_state, label=f"{arm} seed {seed}",
                                                     max_epochs=max_epochs)
    if a.init == "stage1":
        winfo = {**stage1.weights_info, "note": f"stage-1 model (seed {seed}) from {stage1.weights_info.get('origin')}"}
    return TrainedModel(learn, arm, seed, hist, winfo, wall, cfg=cfg, steps=steps)


def fair_stage(cfg: RunConfig, train_items: pd.DataFrame, stage1_steps: int) -> StageConfig:
    """Stage-2 schedule of an arm that does not start from the stage-1 model (FT-only, Scratch+FT).

    The fair-budget rule: such an arm makes at least as many optimiser steps as Pre+FT spends
    in both stages together (stage-1 steps + stage-2 steps on the same train images), raised
    through ``min_steps``; the epochs are capped at ``protocol.fair_max_epochs``.
    """
    counts = train_items["label"].value_counts()
    n = int(counts.max() * len(counts)) * _crops(cfg)  # Pre+FT (oversample): every class replicated to the largest
    pre_ft_steps = _stage_steps(_stage_epochs(cfg.stage2, n), n)
    return replace(cfg.stage2, min_steps=max(cfg.stage2.min_steps, int(stage1_steps) + pre_ft_steps))


def micrograph_outputs(tm: TrainedModel, items: pd.DataFrame, features: bool = False):
    """:func:`semcathode.models.predict_arrays` on cached micrographs with the model's own settings."""
    from ..models.predict import predict_arrays

    cfg = tm.cfg
    if cfg is None:
        raise ValueError("the TrainedModel has no configuration (cfg): cannot know its pre-processing")
    mean, std = tm.learner.norm_stats
    arrays = [np.load(p) for p in items["cache_path"]]
    return predict_arrays(tm.model, arrays, int(items["size"].iloc[0]), cfg.preprocess.normalize, mean, std,
                          stride=cfg.preprocess.tile_stride, aggregate=cfg.evaluate.aggregate, features=features)


def predict_micrographs(tm: TrainedModel, items: pd.DataFrame, classes: Sequence[str],
                        features: bool = False) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Whole-micrograph predictions of a trained model (tile grid, aggregated; see :mod:`semcathode.models.predict`).

    Returns
    -------
    preds : DataFrame
        ``items``' columns plus ``p_<class>``, ``pred``, ``confidence``, ``correct``,
        ``n_tiles``, ``tile_agreement`` and ``tile_accuracy`` (share of tiles right on their own).
    features : ndarray or None
        ``(N, D)`` mean tile embeddings when ``features``.
    """
    out = items.reset_index(drop=True).copy()
    if out.empty:
        return out.assign(**{f"p_{c}": [] for c in classes}, pred=[], confidence=[], correct=[]), None
    mo = micrograph_outputs(tm, out, features)
    p = mo.probs()
    for j, c in enumerate(classes):
        out[f"p_{c}"] = p[:, j]
    out["pred"] = np.asarray(classes, dtype=object)[p.argmax(axis=1)]
    out["confidence"] = p.max(axis=1)
    out["correct"] = out["pred"] == out["label"]
    out["n_tiles"] = mo.n_tiles
    out["tile_agreement"] = mo.tile_agreement
    idx = {c: j for j, c in enumerate(classes)}
    out["tile_accuracy"] = [float((v == idx.get(lbl, -1)).mean()) for v, lbl in zip(mo.tile_preds, out["label"])]
    return out, mo.features


def evaluate_model(tm: TrainedModel, items: pd.DataFrame, classes: Sequence[str], **extra) -> tuple[pd.DataFrame, dict, dict]:
    """Per-micrograph predictions, metrics and a flat results row of a model on ``items``.

    Metrics are per micrograph; the per-tile accuracy (secondary) is in the row as ``tile_accuracy``.
    """
    img, _ = predict_micrographs(tm, items, classes)
    m = classification_metrics(img["label"], img["pred"], classes)
    img = img.assign(arm=tm.arm, seed=tm.seed, **{k: v for k, v in extra.items() if not isinstance(v, (list, dict))})
    row = results_row(tm.arm, tm.seed, m, classes, **extra)
    row["tile_accuracy"] = float(img["tile_accuracy"].mean()) if len(img) else float("nan")
    return img, m, row


def run_arms(
    items: pd.DataFrame,
    cfg: RunConfig,
    classes: Sequence[str],
    arms: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] | None = print,
    keep: Sequence[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """All arms x seeds on the target domain (each stage-1 model trained once per seed).

    Parameters
    ----------
    items : DataFrame
        Pre-processed items with ``domain`` (source/target) and ``split``.
    keep : sequence of str
        Arms whose trained models are returned (for export, robustness and CAMs).

    Returns
    -------
    results : DataFrame
        One row per (arm, seed): metrics on the target test split.
    predictions : DataFrame
        Image-level predictions on the target test split for every arm and seed.
    models : dict
        ``{(arm, seed): TrainedModel}`` for the arms in ``keep``, plus ``("stage1", seed)``.
    """
    arms = list(arms or cfg.protocol.arms)
    seeds = list(seeds if seeds is not None else cfg.protocol.seeds)
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown arm(s) {unknown}; known: {', '.join(ARMS)}")
    tgt = items[items["domain"] == "target"]
    tr, te = tgt[tgt["split"] == "train"], tgt[tgt["split"] == "test"]
    rows, preds, models = [], [], {}
    for seed in seeds:
        s1 = None
        if any(ARMS[a].init == "stage1" for a in arms):
            s1 = train_stage1(items, cfg, seed, classes, cache_dir=cache_dir, log=log)
            models[("stage1", seed)] = s1
        for arm in _progress(arms, f"stage 2 arms, seed {seed}"):
            tm = train_arm(arm, tr, cfg, seed, classes, stage1=s1, cache_dir=cache_dir)
            img, _, row = evaluate_model(tm, te, classes, train_s=round(tm.wall_s, 1), n_train=len(tr),
                                         steps=tm.steps + (s1.steps if ARMS[arm].init == "stage1" and s1 else 0))
            rows.append(row)
            preds.append(img)
            _log(log, f"seed {seed} {arm:<18} target macro-F1 {row['macro_f1']:.3f} acc {row['accuracy']:.3f} "
                      f"({tm.wall_s:.0f} s)")
            if arm in keep:
                models[(arm, seed)] = tm
    return pd.DataFrame(rows), pd.concat(preds, ignore_index=True), models


def learning_curve(
    items: pd.DataFrame,
    cfg: RunConfig,
    classes: Sequence[str],
    sizes: Sequence[int],
    arms: Sequence[str],
    seeds: Sequence[int],
    domain: str = "target",
    stage1_models: dict[int, TrainedModel] | None = None,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] | None = print,
) -> pd.DataFrame:
    """Target macro-F1 against train images per class, per arm and seed.

    Subsets are drawn group-aware from the domain's **train split only**
    (:func:`semcathode.data.subset_per_class`, nested over sizes) and every model is scored
    on the domain's test split. Arms: any of :data:`ARMS` with a stage 2 (``pre_ft`` is the
    plain Pre+FT arm).

    Returns
    -------
    DataFrame
        ``arm, seed, n_per_class, n_train, accuracy, macro_f1, ...`` one row per run.
    """
    from ..data.splits import subset_per_class

    dom = items[items["domain"] == domain]
    test = dom[dom["split"] == "test"]
    rows = []
    for seed in seeds:
        s1 = None
        if any(ARMS[a].init == "stage1" for a in arms):
            s1 = (stage1_models or {}).get(seed) or train_stage1(items, cfg, seed, classes, cache_dir, log)
        for n in _progress(sizes, f"learning curve {domain}, seed {seed}"):
            sub = subset_per_class(dom, n, seed=seed, split="train")
            for arm in arms:
                tm = train_arm(arm, sub, cfg, seed, classes, stage1=s1, cache_dir=cache_dir)
                _, _, row = evaluate_model(tm, test, classes, n_per_class=n, n_train=len(sub), domain=domain)
                rows.append(row)
                _log(log, f"learning curve {domain} seed {seed} n={n:<4} {arm:<18} macro-F1 {row['macro_f1']:.3f}")
    return pd.DataFrame(rows)


def evaluate_splits(models: dict, study, splits: Sequence[str] = ("test", "tail"), domain: str = "source",
                    names: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate ``{key: TrainedModel}`` on several splits of one domain, side by side.

    Parameters
    ----------
    models : dict
    study : Study
    splits : sequence of str
        E.g. ``("test", "tail")``: the frame-block test split and the session tail.
    domain : str
    names : dict, optional
        Display name per split (default: ``frame-block test`` and ``session tail``).

    Returns
    -------
    results, predictions : DataFrame
        As :func:`evaluate_models`, with a ``split`` column.
    """
    names = {"test": "frame-block test", "tail": "session tail", "valid": "valid", **(names or {})}
    res, preds = [], []
    for sp in splits:
        items = study.rows(domain, sp)
        if items.empty:
            continue
        r, p = evaluate_models(models, items, study.classes, split=names.get(sp, sp))
        res.append(r)
        preds.append(p)
    return pd.concat(res, ignore_index=True), pd.concat(preds, ignore_index=True)


def evaluate_models(models: dict, items: pd.DataFrame, classes: Sequence[str], **extra) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate ``{key: TrainedModel}`` on ``items``: (results rows, image-level predictions)."""
    rows, preds = [], []
    for tm in models.values():
        img, _, row = evaluate_model(tm, items, classes, **extra)
        rows.append(row)
        preds.append(img)
    return pd.DataFrame(rows), pd.concat(preds, ignore_index=True)


def new_domain_curve(study, cfg: RunConfig, sizes: Sequence[int], seeds: Sequence[int],
                     log: Callable[[str], None] | None = print) -> pd.DataFrame:
    """A real new domain (e.g. NCM523, never seen in stage 1): fine-tune from the stage-1
    model vs from ImageNet with few images per class; macro-F1 on its test split."""

    new = study.new_items
    if new.empty or not cfg.validity.new_domain:
        return pd.DataFrame()
    classes_new = list(dict.fromkeys(new["label"]))
    new = new.assign(domain="new")
    rows = []
    for seed in seeds:
        s1 = train_stage1(study.items, cfg, seed, study.classes, log=log)
        for n in sizes:
            from ..data.splits import subset_per_class

            sub = subset_per_class(new, n, seed=seed, split="train")
            test = new[new["split"] == "test"]
            for arm in ("pre_ft", "ft_only"):
                tm = train_arm(arm, sub, cfg, seed, classes_new, stage1=s1)
                _, _, row = evaluate_model(tm, test, classes_new, n_per_class=n, n_train=len(sub), domain="NCM523")
                rows.append(row)
                _log(log, f"new domain seed {seed} n={n} {arm:<8} macro-F1 {row['macro_f1']:.3f}")
    return pd.DataFrame(rows)


def split_rows(items: pd.DataFrame, domain: str, split: str) -> pd.DataFrame:
    """Rows of one domain and split."""
    return items[(items["domain"] == domain) & (items["split"] == split)]


def stack_histories(models: dict) -> pd.DataFrame:
    """Training histories of ``{seed or key: TrainedModel}`` in one table with a ``seed`` column."""
    parts = [tm.history.assign(seed=tm.seed, arm=tm.arm) for tm in models.values() if len(tm.history)]
    if not parts:
        return pd.DataFrame()
    h = pd.concat(parts, ignore_index=True)
    h["step"] = h.groupby("seed").cumcount()
    return h


