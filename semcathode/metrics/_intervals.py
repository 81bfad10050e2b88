"""Uncertainty of the metrics: percentile bootstrap intervals (over seeds or over test
images) and the paired comparison of two arms over seeds (Wilcoxon signed-rank)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ._classification import METRICS, _check_classes, _check_labels, _encode, _scalar_metric

__all__ = ["bootstrap_ci", "image_bootstrap_ci", "paired_comparison"]


def _percentile_ci(data: np.ndarray, statistic, n_boot: int, ci: float, seed: int,
                   vectorized: bool = False) -> tuple[float, float]:
    res = stats.bootstrap(
        (data,),
        statistic,
        n_resamples=int(n_boot),
        confidence_level=float(ci),
        method="percentile",
        vectorized=vectorized,
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def bootstrap_ci(
    values: Sequence[float], n_boot: int = 1000, ci: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (e.g. over seeds).

    Parameters
    ----------
    values : sequence of float
        One value per seed; NaNs are dropped.
    n_boot : int
        Bootstrap resamples.
    ci : float
        Confidence level in (0, 1).
    seed : int
        Seed of the resampling; the same inputs and seed give the same interval.

    Returns
    -------
    (float, float)
        ``(low, high)``; ``(v, v)`` for a single value (or identical values) and
        ``(nan, nan)`` when no finite value is left. With very few seeds the interval is
        narrow by construction and understates the uncertainty.

    Examples
    --------
    >>> lo, hi = bootstrap_ci([0.70, 0.80, 0.90], n_boot=200)
    >>> round(lo, 3), round(hi, 3)
    (0.7, 0.9)
    >>> bootstrap_ci([0.5])
    (0.5, 0.5)
    """
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    x = np.asarray(list(values), dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return (math.nan, math.nan)
    if x.size == 1 or np.all(x == x[0]):
        return (float(x[0]), float(x[0]))
    return _percentile_ci(x, np.mean, n_boot, ci, seed, vectorized=True)


def image_bootstrap_ci(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    classes: Sequence[str],
    metric: str = "macro_f1",
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of a metric by resampling test images with replacement.

    For a single run (e.g. the stage-1 source-test macro-F1). It captures test-set
    sampling noise only, not seed-to-seed training variation.

    Parameters
    ----------
    y_true, y_pred : sequence of str
        True and predicted class per image.
    classes : sequence of str
        Class order.
    metric : {"accuracy", "balanced_accuracy", "macro_f1"}
        Averaged over the classes present in each resample's ``y_true``.
    n_boot, ci, seed
        As for :func:`bootstrap_ci`.

    Returns
    -------
    (float, float)
        ``(low, high)``; ``(v, v)`` with a single image, ``(nan, nan)`` with none.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    classes = _check_classes(classes)
    t = _encode(_check_labels(y_true, classes, "y_true"), classes)
    p = _encode(_check_labels(y_pred, classes, "y_pred"), classes)
    if len(t) != len(p):
        raise ValueError(f"y_true and y_pred differ in length ({len(t)} vs {len(p)})")
    if len(t) == 0:
        return (math.nan, math.nan)
    if len(t) == 1:
        v = _scalar_metric(t, p, metric)
        return (v, v)
    if np.array_equal(t, p):  # every resample scores 1.0
        return (1.0, 1.0)
    idx = np.arange(len(t))
    return _percentile_ci(idx, lambda i: _scalar_metric(t[i], p[i], metric), n_boot, ci, seed)


def _power_note(n: int, n_nonzero: int) -> str:
    if n < 2:
        return f"Only n={n} paired seed(s): no test is possible; report the runs individually."
    min_p = 2.0 / 2 ** n_nonzero if n_nonzero else 1.0
    msg = (
        f"Paired over n={n} seeds. With few seeds the Wilcoxon signed-rank test has little "
        f"power: its smallest attainable two-sided p-value with {n_nonzero} non-zero "
        f"difference(s) is {min_p:.4g}"
    )
    if min_p >= 0.05:
        msg += ", so it cannot reach p<0.05 at all; a non-significant p here does not show the arms are equal"
    msg += ". Read the mean difference and wins/ties/losses alongside p."
    return msg


def paired_comparison(
    results: pd.DataFrame,
    a: str,
    b: str,
    metric: str = "macro_f1",
    group: str = "arm",
    pair_on: str = "seed",
) -> dict:
    """Compare two arms paired over the seeds both have run.

    Parameters
    ----------
    results : DataFrame
        One row per (arm, seed) run.
    a, b : str
        Arms to compare; differences are ``a - b``.
    metric : str
        Metric column.
    group, pair_on : str
        Columns naming the arm and the pairing key (seed).

    Returns
    -------
    dict
        ``a, b, metric, n`` (pairs with finite values in both), ``seeds``, ``diffs``,
        ``mean_a``, ``mean_b``, ``mean_diff``, ``median_diff``, ``wins``/``ties``/
        ``losses`` (a above/equal/below b), ``p_value`` (two-sided
        ``scipy.stats.wilcoxon``, zero differences dropped, ``method='auto'`` i.e. the
        exact null distribution at these sizes; NaN when ``n < 2``, 1.0 when all
        differences are zero), ``min_p`` (smallest attainable exact p, ``2 / 2**n_nonzero``),
        ``test`` and ``note`` (power caveat; e.g. n=3 cannot go below p=0.25).

    Examples
    --------
    >>> import pandas as pd
    >>> runs = pd.DataFrame({"arm": ["x"] * 3 + ["y"] * 3, "seed": [0, 1, 2] * 2,
    ...                      "macro_f1": [0.9, 0.8, 0.85, 0.7, 0.7, 0.7]})
    >>> r = paired_comparison(runs, "x", "y")
    >>> r["n"], round(r["mean_diff"], 3), r["wins"], r["p_value"]
    (3, 0.15, 3, 0.25)

    Raises
    ------
    ValueError
        If a column is missing, an arm is unknown, or an arm has duplicate seeds.
    """
    for col in (group, pair_on, metric):
        if col not in results.columns:
            raise ValueError(f"results has no column {col!r}")
    sides = {}
    for arm in (a, b):
        sub = results[results[group] == arm]
        if sub.empty:
            raise ValueError(f"no runs for {group}={arm!r}")
        if sub[pair_on].duplicated().any():
            raise ValueError(f"{group}={arm!r} has duplicate {pair_on} values")
        sides[arm] = pd.to_numeric(sub.set_index(pair_on)[metric], errors="coerce")
    sa, sb = sides[a], sides[b]
    in_b = set(sb.index)
    common = [s for s in sa.index if s in in_b]
    va = sa.loc[common].to_numpy(dtype=float)
    vb = sb.loc[common].to_numpy(dtype=float)
    ok = ~(np.isnan(va) | np.isnan(vb))
    seeds = [s for s, k in zip(common, ok) if k]
    va, vb = va[ok], vb[ok]
    d = va - vb
    n = int(d.size)
    n_nonzero = int(np.count_nonzero(d))
    if n < 2:
        p = math.nan
    elif n_nonzero == 0:
        p = 1.0
    else:
        p = float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided", method="auto").pvalue)
    return {
        "a": a,
        "b": b,
        "metric": metric,
        "n": n,
        "seeds": [s.item() if hasattr(s, "item") else s for s in seeds],
        "diffs": d.tolist(),
        "mean_a": float(va.mean()) if n else math.nan,
        "mean_b": float(vb.mean()) if n else math.nan,
        "mean_diff": float(d.mean()) if n else math.nan,
        "median_diff": float(np.median(d)) if n else math.nan,
        "wins": int((d > 0).sum()),
        "ties": int((d == 0).sum()),
        "losses": int((d < 0).sum()),
        "p_value": p,
        "min_p": (2.0 / 2 ** n_nonzero if n_nonzero else 1.0) if n >= 2 else math.nan,
        "test": "Wilcoxon signed-rank, two-sided, paired over seeds (scipy.stats.wilcoxon)",
        "note": _power_note(n, n_nonzero),
    }
