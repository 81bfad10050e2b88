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

from ._files import atomic_write_json
from ._progress import progress as _progress
from .config import RunConfig, StageConfig, config_hash
from .data import class_weights, make_dataloaders
from .evaluate import aggregate_tiles, classification_metrics, results_row
from .learner import fit_stage, make_learner, predict_items, seed_everything

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
    "curve_note",
    "evaluate_models",
    "linear_probe_report",
    "probe_verdict",
    "new_domain_curve",
    "stack_histories",
    "linear_probe",
    "extract_features",
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
    """A trained model with what is needed to evaluate, export and explain it."""

    learner: object
    arm: str
    seed: int
    history: pd.DataFrame
    weights_info: dict
    wall_s: float

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
    from .backbones import create_backbone

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
    from .backbones import normalization

    return normalization(resolve_backbone(cfg))


def _stage_epochs(stage: StageConfig, n_train: int) -> StageConfig:
    """Raise the epochs so that tiny train sets still get ``min_steps`` optimiser steps."""
    if not stage.min_steps:
        return stage
    bs = max(2, min(stage.batch_size, n_train))
    steps_per_epoch = max(1, n_train // bs)
    need = math.ceil(stage.min_steps / steps_per_epoch)
    frozen = stage.freeze_epochs if stage.schedule != "paper" else 0  # paper: no head-only epochs
    return replace(stage, epochs=max(stage.epochs, need - frozen))


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
) -> tuple[object, pd.DataFrame, dict]:
    seed_everything(seed)
    items = pd.concat([train_items.assign(split="train"),
                       (valid_items if valid_items is not None and stage.validate else train_items.head(0)).assign(split="valid")])
    mean, std = _norm(cfg)
    sampler = None
    if strategy == "oversample":
        sampler = "replicate" if cfg.protocol.sampler == "replicate" else "weighted"
    dls = make_dataloaders(items, classes, bs=stage.batch_size, normalize=cfg.preprocess.normalize, mean=mean, std=std,
                           sampler=sampler, oversample_target=cfg.protocol.oversample_target, seed=seed)
    lw = class_weights(train_items, classes, cfg.protocol.class_weights) if strategy == "weighted_loss" else None
    weights = {"stage1": "scratch", "imagenet": cfg.model.weights, "scratch": "scratch"}[init]
    learn = make_learner(dls, len(classes), resolve_backbone(cfg), weights, loss_weights=lw,
                         channels_last=cfg.model.channels_last, drop_rate=cfg.model.drop_rate,
                         init_state=init_state, weight_decay=stage.weight_decay)
    n_train = len(dls.train_ds)
    hist = fit_stage(learn, _stage_epochs(stage, n_train), quiet=quiet)
    return learn, hist, learn.weights_info.to_dict()


class ModelStore:
    """Trained weights on disk (safetensors + JSON), keyed by configuration hashes.

    Parameters
    ----------
    root : str or Path, optional
        Folder; default ``<cache>/models``.
    """

    def __init__(self, root: str | Path | None = None):
        from .preprocess import default_cache_dir

        self.root = Path(root) if root else default_cache_dir() / "models"

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

        from ._files import atomic_save

        w, j = self.paths(key)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        atomic_save(w, lambda tmp: save_file(state, tmp))
        atomic_write_json(j, meta)


def _items_key(items: pd.DataFrame) -> str:
    import hashlib

    blob = "|".join(sorted(f"{a}:{b}" for a, b in zip(items["sha256"], items.get("shift", [""] * len(items)))))
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _cached_fit(store: ModelStore, key: str, train_items, valid_items, classes, cfg, stage, seed, init, strategy,
                init_state=None) -> tuple[object, pd.DataFrame, dict, float, bool]:
    hit = store.get(key)
    if hit is not None:
        state, meta = hit
        learn, _, _ = _fit(train_items, None, classes, cfg, replace(stage, epochs=0, freeze_epochs=0, min_steps=0),
                           seed, "stage1", "none", init_state=state)
        return learn, pd.DataFrame(meta.get("history", [])), meta.get("weights", {}), float(meta.get("wall_s", 0)), True
    t0 = time.time()
    learn, hist, winfo = _fit(train_items, valid_items, classes, cfg, stage, seed, init, strategy, init_state)
    wall = time.time() - t0
    store.put(key, learn.model, {"key": key, "history": hist.to_dict(orient="records"), "weights": winfo, "wall_s": wall})
    return learn, hist, winfo, wall, False


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
    store = ModelStore(Path(cache_dir) / "models" if cache_dir else None)
    src = items[items["domain"] == "source"]
    train, valid = src[src["split"] == "train"], src[src["split"] == "valid"]
    key = f"stage1-{stage1_key(cfg, seed, items)}"
    learn, hist, winfo, wall, hit = _cached_fit(store, key, train, valid, classes, cfg, cfg.stage1, seed, "imagenet",
                                                cfg.protocol.stage1_imbalance)
    _log(log, f"stage 1 seed {seed}: " + (f"reused cached model {key}" if hit else
                                          f"trained on {len(train)} source images in {wall:.0f} s"))
    return TrainedModel(learn, "stage1", seed, hist, winfo, wall)


def train_arm(
    arm: str,
    train_items: pd.DataFrame,
    cfg: RunConfig,
    seed: int,
    classes: Sequence[str],
    stage1: TrainedModel | None = None,
    valid_items: pd.DataFrame | None = None,
    cache_dir: str | Path | None = None,
) -> TrainedModel:
    """Stage 2 of one arm on ``train_items`` (the target's train rows or a subset of them).

    Trained weights are cached in the :class:`ModelStore` keyed by the configuration, arm,
    seed and the exact train images, so resumed runs and later notebooks reuse them.
    """
    a = ARMS[arm]
    if a.init == "stage1" and stage1 is None:
        raise ValueError(f"arm {arm} needs the stage-1 model")
    init_state = None
    if a.init == "stage1":
        init_state = {k: v.detach().cpu() for k, v in stage1.model.state_dict().items()}
    if a.strategy is None:  # pretrain-only: the stage-1 model as it is
        return TrainedModel(stage1.learner, arm, seed, pd.DataFrame(), stage1.weights_info, 0.0)
    store = ModelStore(Path(cache_dir) / "models" if cache_dir else None)
    key = (f"stage2-{config_hash(cfg, 'data', 'preprocess', 'model', 'stage1', 'stage2', 'target', 'protocol')}"
           f"-{arm}-s{seed}-{_items_key(train_items)}")
    learn, hist, winfo, wall, _ = _cached_fit(store, key, train_items, valid_items, classes, cfg, cfg.stage2, seed,
                                              a.init, a.strategy, init_state)
    if a.init == "stage1":
        winfo = {**stage1.weights_info, "note": f"stage-1 model (seed {seed}) from {stage1.weights_info.get('origin')}"}
    return TrainedModel(learn, arm, seed, hist, winfo, wall)


def evaluate_model(tm: TrainedModel, items: pd.DataFrame, classes: Sequence[str], **extra) -> tuple[pd.DataFrame, dict, dict]:
    """Image-level predictions, metrics and a flat results row of a model on ``items``."""
    preds = predict_items(tm.learner, items, classes)
    img = aggregate_tiles(preds, classes)
    m = classification_metrics(img["label"], img["pred"], classes)
    img = img.assign(arm=tm.arm, seed=tm.seed, **{k: v for k, v in extra.items() if not isinstance(v, (list, dict))})
    return img, m, results_row(tm.arm, tm.seed, m, classes, **extra)


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
            img, _, row = evaluate_model(tm, te, classes, train_s=round(tm.wall_s, 1), n_train=len(tr))
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
    (:func:`semcathode.splits.subset_per_class`, nested over sizes) and every model is scored
    on the domain's test split. Arms: any of :data:`ARMS` with a stage 2 (``pre_ft`` is the
    plain Pre+FT arm).

    Returns
    -------
    DataFrame
        ``arm, seed, n_per_class, n_train, accuracy, macro_f1, ...`` one row per run.
    """
    from .splits import subset_per_class

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


def evaluate_models(models: dict, items: pd.DataFrame, classes: Sequence[str], **extra) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate ``{key: TrainedModel}`` on ``items``: (results rows, image-level predictions)."""
    rows, preds = [], []
    for tm in models.values():
        img, _, row = evaluate_model(tm, items, classes, **extra)
        rows.append(row)
        preds.append(img)
    return pd.DataFrame(rows), pd.concat(preds, ignore_index=True)


def linear_probe_report(study, cfg: RunConfig, n_splits: int = 5) -> pd.DataFrame:
    """The linear-probe baseline on two protocols.

    1. the CNN's own split: source train -> source test (directly comparable with stage 1);
    2. ``n_splits``-fold frame-block cross-validation over every image of the schema's
       classes without any simulated shift (the protocol quoted in the issue tracker).
    """
    from .evaluate import classification_metrics
    from .preprocess import build_items
    from .splits import group_folds

    classes = study.classes
    src_tr, src_te = study.rows("source", "train"), study.rows("source", "test")
    _, m1 = linear_probe(src_tr, src_te, cfg, classes)
    raw = study.manifest[study.manifest["label"].isin(classes)].assign(shift="")
    raw_items = build_items(raw, study.params, study.cache)
    feats = extract_features(raw_items, cfg)
    y_true, y_pred = [], []
    for tr, te in group_folds(raw_items, n_splits=n_splits, seed=cfg.data.split_seed):
        img, _ = linear_probe(raw_items.iloc[tr], raw_items.iloc[te], cfg, classes, features=(feats[tr], feats[te]))
        y_true += list(img["label"])
        y_pred += list(img["pred"])
    m2 = classification_metrics(y_true, y_pred, classes)
    return pd.DataFrame([
        {"protocol": "source train -> source test (the CNN's split)", "n_test": m1["n"],
         "accuracy": m1["accuracy"], "macro_f1": m1["macro_f1"]},
        {"protocol": f"{n_splits}-fold frame-block CV, all {len(raw)} images of the {len(classes)} classes, no shift",
         "n_test": m2["n"], "accuracy": m2["accuracy"], "macro_f1": m2["macro_f1"]},
    ])


def probe_verdict(stage1_summary: pd.DataFrame, probe: pd.DataFrame) -> str:
    """Does fine-tuning beat the linear probe on the same split? A sentence for the report."""
    cnn = float(stage1_summary["macro_f1_mean"].iloc[0])
    lo, hi = float(stage1_summary["macro_f1_lo"].iloc[0]), float(stage1_summary["macro_f1_hi"].iloc[0])
    lp = float(probe["macro_f1"].iloc[0])
    if lo > lp:
        verdict = "beats"
    elif hi < lp:
        verdict = "does **not** beat"
    else:
        verdict = "is not distinguishable from"
    return (f"Stage-1 fine-tuned CNN: source-test macro-F1 {cnn:.3f} (95% CI over seeds [{lo:.3f}, {hi:.3f}]); "
            f"linear probe on frozen ImageNet features, same split: {lp:.3f}. The fine-tuned model {verdict} "
            f"the linear probe on this split.")


def new_domain_curve(study, cfg: RunConfig, sizes: Sequence[int], seeds: Sequence[int],
                     log: Callable[[str], None] | None = print) -> pd.DataFrame:
    """A real new domain (e.g. NCM523, never seen in stage 1): fine-tune from the stage-1
    model vs from ImageNet with few images per class; macro-F1 on its test split."""
    from .study import schema_from_config

    new = study.new_items
    if new.empty or not cfg.validity.new_domain:
        return pd.DataFrame()
    classes_new = list(dict.fromkeys(new["label"]))
    new = new.assign(domain="new")
    rows = []
    for seed in seeds:
        s1 = train_stage1(study.items, cfg, seed, study.classes, log=log)
        for n in sizes:
            from .splits import subset_per_class

            sub = subset_per_class(new, n, seed=seed, split="train")
            test = new[new["split"] == "test"]
            for arm in ("pre_ft", "ft_only"):
                tm = train_arm(arm, sub, cfg, seed, classes_new, stage1=s1)
                _, _, row = evaluate_model(tm, test, classes_new, n_per_class=n, n_train=len(sub), domain="NCM523")
                rows.append(row)
                _log(log, f"new domain seed {seed} n={n} {arm:<8} macro-F1 {row['macro_f1']:.3f}")
    return pd.DataFrame(rows)


def curve_note(curve: pd.DataFrame) -> str:
    """Read a learning curve in words: where Pre+FT helps and where the arms meet."""
    if curve.empty:
        return "No learning curve was run."
    m = curve.groupby(["n_per_class", "arm"])["macro_f1"].mean().unstack()
    parts = []
    for n, r in m.iterrows():
        parts.append(f"n={n}: " + ", ".join(f"{a} {v:.2f}" for a, v in r.items()))
    text = "Mean target macro-F1 over seeds — " + "; ".join(parts) + "."
    pre = next((a for a in ("pre_ft_oversample", "pre_ft") if a in m.columns), None)
    if pre and "ft_only" in m.columns:
        gap = (m[pre] - m["ft_only"])
        helps = [int(n) for n, g in gap.items() if g > 0.05]
        text += (f" Pre+FT is ahead of FT-only by more than 0.05 at n = {helps} images per class." if helps else
                 " Pre+FT is nowhere ahead of FT-only by more than 0.05.")
    return text


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


@torch.no_grad()
def extract_features(items: pd.DataFrame, cfg: RunConfig, bs: int = 32) -> np.ndarray:
    """Pooled features of the frozen ImageNet backbone (no training), one row per item."""
    from .backbones import create_backbone
    from .data import load_item

    model, _ = create_backbone(cfg.model.backbone, weights=cfg.model.weights, num_classes=0)
    model.eval()
    mean, std = _norm(cfg)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    feats = []
    rows = [r for _, r in items.iterrows()]
    for i in range(0, len(rows), bs):
        x = torch.stack([load_item(r) for r in rows[i : i + bs]]).float() / 255.0
        if cfg.preprocess.normalize == "per_image":
            x = (x - x.mean(dim=(1, 2, 3), keepdim=True)) / x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-4)
        else:
            x = (x - m) / s
        feats.append(model(x.contiguous(memory_format=torch.channels_last)).numpy())
    return np.concatenate(feats) if feats else np.zeros((0, model.num_features), np.float32)


def linear_probe(
    train_items: pd.DataFrame, test_items: pd.DataFrame, cfg: RunConfig, classes: Sequence[str],
    features: tuple[np.ndarray, np.ndarray] | None = None, C: float = 1.0,
) -> tuple[pd.DataFrame, dict]:
    """Logistic regression (scikit-learn) on frozen ImageNet features: the baseline that
    fine-tuning has to beat. Returns image-level predictions and metrics on ``test_items``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ftr, fte = features if features is not None else (extract_features(train_items, cfg), extract_features(test_items, cfg))
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    clf.fit(ftr, train_items["label"].to_numpy())
    proba = clf.predict_proba(fte)
    out = test_items.reset_index(drop=True).copy()
    col = {c: j for j, c in enumerate(clf.classes_)}
    for c in classes:
        out[f"p_{c}"] = proba[:, col[c]] if c in col else 0.0
    img = aggregate_tiles(out, classes)
    return img, classification_metrics(img["label"], img["pred"], classes)
