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

Stage-1 training and the cached fit are in :mod:`semcathode.study._train`; the model keys in
:mod:`semcathode.study._store`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from .._progress import progress as _progress
from ..config._sections import StageConfig
from ..config._settings import StudySettings
from ..data import Study
from ._evaluation import evaluate_model
from ._store import arm_key, model_store
from ._train import TrainedModel, _cached_fit, _crops, _log, _stage_epochs, _stage_steps, train_stage1, trunk_cache

__all__ = ["ARMS", "Arm", "fair_stage", "train_arm", "run_arms"]


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


def _needs_stage1(arms: Sequence[str]) -> bool:
    return any(ARMS[a].init == "stage1" for a in arms)


def fair_stage(settings: StudySettings, train_items: pd.DataFrame, stage1_steps: int) -> StageConfig:
    """Stage-2 schedule of an arm that does not start from the stage-1 model (FT-only, Scratch+FT).

    The fair-budget rule: such an arm makes at least as many optimiser steps as Pre+FT spends
    in both stages together (stage-1 steps + stage-2 steps on the same train images), raised
    through ``min_steps``; the epochs are capped at ``protocol.fair_max_epochs``.

    Parameters
    ----------
    settings : StudySettings
    train_items : DataFrame
        The stage-2 train rows (their ``label`` column sets the oversampled size).
    stage1_steps : int
        Optimiser steps of the stage-1 model.

    Returns
    -------
    StageConfig
        ``settings.stage2`` with ``min_steps`` raised.

    Examples
    --------
    >>> import pandas as pd
    >>> from semcathode.config import load_config, study_settings
    >>> cfg = load_config("smoke", overrides={"stage2.epochs": 2, "stage2.freeze_epochs": 0,
    ...                   "stage2.min_steps": 0, "stage2.batch_size": 4, "preprocess.crops_per_image": 1})
    >>> train = pd.DataFrame({"label": ["a"] * 8 + ["b"] * 4})
    >>> fair_stage(study_settings(cfg), train, stage1_steps=30).min_steps  # 30 + 16 oversampled inputs / 4 x 2 epochs
    38
    """
    counts = train_items["label"].value_counts()
    n = int(counts.max() * len(counts)) * _crops(settings)  # Pre+FT (oversample): every class replicated to the largest
    pre_ft_steps = _stage_steps(_stage_epochs(settings.stage2, n), n)
    return replace(settings.stage2, min_steps=max(settings.stage2.min_steps, int(stage1_steps) + pre_ft_steps))


def train_arm(
    arm: str,
    train_items: pd.DataFrame,
    settings: StudySettings,
    seed: int,
    classes: Sequence[str],
    stage1: TrainedModel | None = None,
    valid_items: pd.DataFrame | None = None,
    cache_dir: str | Path | None = None,
    stage1_steps: int | None = None,
) -> TrainedModel:
    """Stage 2 of one arm on ``train_items`` (the target's train rows or a subset of them).

    Arms that start from ImageNet or from scratch get the fair budget of :func:`fair_stage`
    (``protocol.fair_budget``). Trained weights are cached in the
    :class:`~semcathode.study.ModelStore` under ``stage2-<key>`` (see
    :func:`~semcathode.study._store.arm_key`: the model-changing configuration, the schedule
    actually trained, arm, seed and the exact train images), so resumed runs and later
    notebooks reuse them.

    Parameters
    ----------
    arm : str
        A key of :data:`ARMS`.
    train_items : DataFrame
    settings : StudySettings
    seed : int
    classes : sequence of str
    stage1 : TrainedModel, optional
        Required by arms that start from the stage-1 model.
    valid_items : DataFrame, optional
        Scored after every epoch (``stage2.validate``).
    cache_dir : str or Path, optional
        Root of the model store.
    stage1_steps : int, optional
        Stage-1 steps for the fair budget; default the stage-1 model's own count.

    Returns
    -------
    TrainedModel
    """
    a = ARMS[arm]
    if a.init == "stage1" and stage1 is None:
        raise ValueError(f"arm {arm} needs the stage-1 model")
    if a.strategy is None:  # pretrain-only: the stage-1 model as it is
        return TrainedModel(stage1.learner, arm, seed, pd.DataFrame(), stage1.weights_info, 0.0, settings=settings, steps=0,
                            network=stage1.network, trunk=stage1.trunk, classes=list(classes))
    if stage1_steps is None:
        stage1_steps = stage1.steps if stage1 is not None else 0
    init_state = None
    if a.init == "stage1":
        init_state = {k: v.detach().cpu() for k, v in stage1.model.state_dict().items()}
    stage, max_epochs = settings.stage2, 0
    if a.init != "stage1" and settings.protocol.fair_budget:
        stage, max_epochs = fair_stage(settings, train_items, stage1_steps), settings.protocol.fair_max_epochs
    key = f"stage2-{arm_key(settings, arm, seed, train_items, stage)}"
    fit = _cached_fit(model_store(settings, cache_dir), key, train_items, valid_items, classes, settings, stage, seed,
                      a.init, a.strategy, init_state, label=f"{arm} seed {seed}", max_epochs=max_epochs)
    winfo = fit.weights_info
    if a.init == "stage1":
        winfo = {**stage1.weights_info, "note": f"stage-1 model (seed {seed}) from {stage1.weights_info.get('origin')}"}
    return TrainedModel(fit.learner, arm, seed, fit.history, winfo, fit.wall_s, settings=settings, steps=fit.steps,
                        network=fit.network, trunk=trunk_cache(settings) if settings.model.trunk else None,
                        classes=list(classes))


def run_arms(
    study: Study,
    arms: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] | None = print,
    keep: Sequence[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """All arms x seeds on the target domain (each stage-1 model trained once per seed).

    Parameters
    ----------
    study : Study
        Its items (``domain`` source/target and ``split``), classes and settings.
    arms, seeds : sequence, optional
        Default ``protocol.arms`` and ``protocol.seeds``.
    cache_dir : str or Path, optional
        Root of the model store.
    log : callable, optional
        Receives one line per trained model.
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

    Examples
    --------
    >>> import tempfile
    >>> import semcathode as sc
    >>> _, study = sc.data.example_study(tempfile.mkdtemp())
    >>> results, preds, models = sc.run_arms(study, arms=["pre_ft_oversample"], log=None)  # doctest: +ELLIPSIS
    [stage 1 seed 0, all layers] epoch 1/1 ...
    [pre_ft_oversample seed 0, all layers] epoch 1/1 ...
    >>> results[["arm", "seed"]].values.tolist(), "macro_f1" in results
    ([['pre_ft_oversample', 0]], True)
    """
    settings, items, classes = study.settings, study.items, study.classes
    arms = list(arms or settings.protocol.arms)
    seeds = list(seeds if seeds is not None else settings.protocol.seeds)
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown arm(s) {unknown}; known: {', '.join(ARMS)}")
    tgt = items[items["domain"] == "target"]
    tr, te = tgt[tgt["split"] == "train"], tgt[tgt["split"] == "test"]
    rows, preds, models = [], [], {}
    for seed in seeds:
        s1 = None
        if _needs_stage1(arms):
            s1 = train_stage1(study, seed, cache_dir=cache_dir, log=log)
            models[("stage1", seed)] = s1
        for arm in _progress(arms, f"stage 2 arms, seed {seed}"):
            tm = train_arm(arm, tr, settings, seed, classes, stage1=s1, cache_dir=cache_dir)
            img, _, row = evaluate_model(tm, te, classes, train_s=round(tm.wall_s, 1), n_train=len(tr),
                                         steps=tm.steps + (s1.steps if ARMS[arm].init == "stage1" and s1 else 0))
            rows.append(row)
            preds.append(img)
            _log(log, f"seed {seed} {arm:<18} target macro-F1 {row['macro_f1']:.3f} acc {row['accuracy']:.3f} "
                      f"({tm.wall_s:.0f} s)")
            if arm in keep:
                models[(arm, seed)] = tm
    return pd.DataFrame(rows), pd.concat(preds, ignore_index=True), models
