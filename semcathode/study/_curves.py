"""Curves over training-set size: the learning curve on the target and a real new domain;
training histories stacked for plotting."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from .._progress import progress as _progress
from ..config._settings import StudySettings
from ..data import Study
from ..data._splits import subset_per_class
from ._arms import _needs_stage1, train_arm
from ._evaluation import evaluate_model
from ._train import TrainedModel, _log, train_stage1

__all__ = ["learning_curve", "new_domain_curve", "stack_histories"]


def _curve(
    pool: pd.DataFrame,
    test: pd.DataFrame,
    settings: StudySettings,
    classes: Sequence[str],
    sizes: Sequence[int],
    arms: Sequence[str],
    seed: int,
    stage1: TrainedModel | None,
    cache_dir: str | Path | None,
    log: Callable[[str], None] | None,
    what: str,
    domain: str,
) -> list[dict]:
    """One seed of a curve: per size, a nested group-aware subset of ``pool``'s train split,
    every arm trained on it and scored on ``test``."""
    rows = []
    for n in _progress(sizes, f"{what}, seed {seed}"):
        sub = subset_per_class(pool, n, seed=seed, split="train")
        for arm in arms:
            tm = train_arm(arm, sub, settings, seed, classes, stage1=stage1, cache_dir=cache_dir)
            _, _, row = evaluate_model(tm, test, classes, n_per_class=n, n_train=len(sub), domain=domain)
            rows.append(row)
            _log(log, f"{what} seed {seed} n={n:<4} {arm:<18} macro-F1 {row['macro_f1']:.3f}")
    return rows


def learning_curve(
    study: Study,
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
    (:func:`semcathode.data._splits.subset_per_class`, nested over sizes) and every model is scored
    on the domain's test split.

    Parameters
    ----------
    study : Study
        Its items, classes and settings.
    sizes : sequence of int
        Train images per class.
    arms : sequence of str
        Any of :data:`~semcathode.study.ARMS` with a stage 2 (``pre_ft`` is the plain Pre+FT arm).
    seeds : sequence of int
    domain : str
    stage1_models : dict, optional
        ``{seed: TrainedModel}`` already trained (else trained or loaded from the store).
    cache_dir : str or Path, optional
    log : callable, optional

    Returns
    -------
    DataFrame
        ``arm, seed, n_per_class, n_train, accuracy, macro_f1, ...`` one row per run.
    """
    settings, items, classes = study.settings, study.items, study.classes
    dom = items[items["domain"] == domain]
    test = dom[dom["split"] == "test"]
    rows = []
    for seed in seeds:
        s1 = None
        if _needs_stage1(arms):
            s1 = (stage1_models or {}).get(seed) or train_stage1(study, seed, cache_dir, log)
        rows += _curve(dom, test, settings, classes, sizes, arms, seed, s1, cache_dir, log, f"learning curve {domain}", domain)
    return pd.DataFrame(rows)


def new_domain_curve(study: Study, sizes: Sequence[int], seeds: Sequence[int],
                     log: Callable[[str], None] | None = print) -> pd.DataFrame:
    """A real new domain (e.g. NCM523, never seen in stage 1): fine-tune from the stage-1
    model (``pre_ft``) vs from ImageNet (``ft_only``) with few images per class.

    Parameters
    ----------
    study : Study
        Gives ``new_items``, ``items``, ``classes`` and the settings (``validity.new_domain`` off
        gives an empty frame).
    sizes : sequence of int
        Train images per class.
    seeds : sequence of int
    log : callable, optional

    Returns
    -------
    DataFrame
        As :func:`learning_curve` (``domain="NCM523"``), macro-F1 on the new domain's test split.
    """
    settings, new = study.settings, study.new_items
    if new.empty or not settings.validity.new_domain:
        return pd.DataFrame()
    classes_new = list(dict.fromkeys(new["label"]))
    new = new.assign(domain="new")
    test = new[new["split"] == "test"]
    rows = []
    for seed in seeds:
        s1 = train_stage1(study, seed, log=log)
        rows += _curve(new, test, settings, classes_new, sizes, ("pre_ft", "ft_only"), seed, s1, None, log,
                       "new domain", "NCM523")
    return pd.DataFrame(rows)


def stack_histories(models: dict) -> pd.DataFrame:
    """Training histories of several models in one table.

    Parameters
    ----------
    models : dict
        ``{seed or key: TrainedModel}``.

    Returns
    -------
    DataFrame
        The histories with ``seed``, ``arm`` and a per-seed running ``step`` column; empty
        when no model has a history.
    """
    parts = [tm.history.assign(seed=tm.seed, arm=tm.arm) for tm in models.values() if len(tm.history)]
    if not parts:
        return pd.DataFrame()
    h = pd.concat(parts, ignore_index=True)
    h["step"] = h.groupby("seed").cumcount()
    return h
