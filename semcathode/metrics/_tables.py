"""Tables across runs: mean, spread and bootstrap CI per arm, paired tests against a
reference arm, and the paper-style table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._classification import METRICS, _check_classes, short_class_name
from ._intervals import bootstrap_ci, paired_comparison

__all__ = ["summarize_runs", "paired_table", "paper_table"]


def _groups_in_order(results: pd.DataFrame, group: str) -> list:
    if group not in results.columns:
        raise ValueError(f"results has no column {group!r}")
    return list(pd.unique(results[group]))


def summarize_runs(
    results: pd.DataFrame,
    metrics: Sequence[str] = METRICS,
    group: str = "arm",
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean, spread and bootstrap CI of each metric across seeds, per arm.

    Parameters
    ----------
    results : DataFrame
        One row per (arm, seed) run with the metric columns (e.g. from
        :func:`~semcathode.metrics._classification.results_row`); per-class ``f1_<class>`` columns can be listed in
        ``metrics`` too.
    metrics : sequence of str
        Metric columns to summarise (each must exist).
    group : str
        Column naming the arm.
    n_boot, ci, seed
        Passed to :func:`~semcathode.metrics.bootstrap_ci`.

    Returns
    -------
    DataFrame
        One row per arm in order of first appearance: ``group``, ``n_seeds`` (rows), and
        for each metric ``m``: ``m_mean``, ``m_std`` (ddof=1, NaN with one run),
        ``m_lo``, ``m_hi``. NaN values (e.g. F1 of an absent class) are skipped.

    Examples
    --------
    >>> import pandas as pd
    >>> runs = pd.DataFrame({"arm": ["x", "x", "x", "y"], "seed": [0, 1, 2, 0],
    ...                      "macro_f1": [0.7, 0.8, 0.9, 0.5]})
    >>> s = summarize_runs(runs, metrics=("macro_f1",), n_boot=200)
    >>> s[["arm", "n_seeds", "macro_f1_mean"]].round(3).values.tolist()
    [['x', 3, 0.8], ['y', 1, 0.5]]
    """
    missing = [m for m in metrics if m not in results.columns]
    if missing:
        raise ValueError(f"results is missing metric columns {missing}")
    rows = []
    for arm in _groups_in_order(results, group):
        sub = results[results[group] == arm]
        row: dict[str, Any] = {group: arm, "n_seeds": int(len(sub))}
        for m in metrics:
            v = pd.to_numeric(sub[m], errors="coerce").to_numpy(dtype=float)
            finite = v[~np.isnan(v)]
            row[f"{m}_mean"] = float(finite.mean()) if finite.size else math.nan
            row[f"{m}_std"] = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
            row[f"{m}_lo"], row[f"{m}_hi"] = bootstrap_ci(finite, n_boot=n_boot, ci=ci, seed=seed)
        rows.append(row)
    return pd.DataFrame(rows)


def paired_table(
    results: pd.DataFrame,
    reference: str,
    metric: str = "macro_f1",
    group: str = "arm",
    pair_on: str = "seed",
) -> pd.DataFrame:
    """:func:`~semcathode.metrics._intervals.paired_comparison` of every other arm against a reference arm.

    Parameters
    ----------
    results : DataFrame
        One row per (arm, seed) run.
    reference : str
        Arm everything is compared with (it is ``b``; differences are ``arm - reference``).
    metric, group, pair_on : str
        As for :func:`~semcathode.metrics._intervals.paired_comparison`.

    Returns
    -------
    DataFrame
        One row per other arm (order of first appearance): ``group``, ``reference``,
        ``n``, ``mean_a``, ``mean_b``, ``mean_diff``, ``median_diff``, ``wins``, ``ties``,
        ``losses``, ``p_value``, ``min_p``, ``note``.
    """
    arms = _groups_in_order(results, group)
    if reference not in arms:
        raise ValueError(f"reference {group}={reference!r} not in results")
    cols = ["n", "mean_a", "mean_b", "mean_diff", "median_diff", "wins", "ties", "losses", "p_value", "min_p", "note"]
    rows = []
    for arm in arms:
        if arm == reference:
            continue
        r = paired_comparison(results, arm, reference, metric=metric, group=group, pair_on=pair_on)
        rows.append({group: arm, "reference": reference, **{k: r[k] for k in cols}})
    return pd.DataFrame(rows, columns=[group, "reference", *cols])


def _cell(mean: float, std: float, lo: float, hi: float, n: int) -> str:
    if math.isnan(mean):
        return "n/a"
    if n < 2 or math.isnan(std):
        return f"{mean:.3f} (n={n})"
    return f"{mean:.3f} ± {std:.3f} [{lo:.2f}, {hi:.2f}]"


def paper_table(
    results: pd.DataFrame,
    classes: Sequence[str],
    group: str = "arm",
    n_boot: int = 1000,
    as_text: bool = True,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """The paper-style table: arms x (accuracy, macro-F1, per-class F1).

    Parameters
    ----------
    results : DataFrame
        One row per (arm, seed) with ``accuracy``, ``macro_f1`` and ``f1_<class>``
        columns (as written by :func:`~semcathode.metrics._classification.results_row`).
    classes : sequence of str
        Class order of the per-class columns, headed by :func:`~semcathode.metrics._classification.short_class_name`
        (e.g. ``"333 pristine"``).
    group : str
        Column naming the arm; it becomes the index.
    n_boot, ci, seed
        Bootstrap settings of the CI over seeds.
    as_text : bool
        ``True``: cells like ``"0.912 ± 0.030 [0.88, 0.94]"`` (mean ± sample std
        [bootstrap CI]); ``"0.912 (n=1)"`` for a single seed; ``"n/a"`` when every
        value is NaN. ``False``: the numeric means.

    Returns
    -------
    DataFrame
        Index = arms (order of first appearance), columns ``accuracy``, ``macro_f1``,
        then one per class.
    """
    classes = _check_classes(classes)
    metric_cols = ["accuracy", "macro_f1", *[f"f1_{c}" for c in classes]]
    headers = ["accuracy", "macro_f1", *[short_class_name(c) for c in classes]]
    if len(set(headers)) != len(headers):
        raise ValueError(f"short class names collide: {headers}")
    summ = summarize_runs(results, metrics=metric_cols, group=group, n_boot=n_boot, ci=ci, seed=seed)
    table = pd.DataFrame(index=pd.Index(summ[group].tolist(), name=group))
    for col, head in zip(metric_cols, headers):
        if as_text:
            n_ok = [
                int(pd.to_numeric(results.loc[results[group] == arm, col], errors="coerce").notna().sum())
                for arm in summ[group]
            ]
            table[head] = [
                _cell(m, s, lo, hi, k)
                for m, s, lo, hi, k in zip(
                    summ[f"{col}_mean"], summ[f"{col}_std"], summ[f"{col}_lo"], summ[f"{col}_hi"], n_ok
                )
            ]
        else:
            table[head] = summ[f"{col}_mean"].to_numpy(dtype=float)
    return table
