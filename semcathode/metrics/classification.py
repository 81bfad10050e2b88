"""Honest evaluation metrics for the cathode classifier and the transfer-learning study.

Per-image metrics (tile probabilities averaged per image), per-class scores, confusion
matrices, bootstrap confidence intervals over seeds or over test images, paired arm
comparisons over seeds, and the paper-style summary table.

Conventions
-----------
* Class labels are strings; ``classes`` fixes their order everywhere (confusion rows and
  columns, per-class columns). Probability columns are named ``p_<class>``.
* Macro-F1 and balanced accuracy are averaged over the classes **present in y_true** only.
  A class with no test images has an undefined recall/F1; counting it as 0 would punish a
  model for the test split's composition. Predictions *into* an absent class still cost
  the model, because those images are misclassified and lower the true class's recall.
* Per-class recall and F1 are NaN for a class with no support; precision is NaN for a
  class that is neither present nor predicted. Other 0/0 cases count as 0.
* Standard deviations across seeds are sample standard deviations (``ddof=1``, NaN with
  one seed). Confidence intervals are percentile bootstraps (``scipy.stats.bootstrap``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    recall_score,
)

__all__ = [
    "METRICS",
    "aggregate_tiles",
    "bootstrap_ci",
    "chance_level",
    "classification_metrics",
    "image_bootstrap_ci",
    "metrics_from_preds",
    "paired_comparison",
    "paired_table",
    "paper_table",
    "results_row",
    "short_class_name",
    "summarize_runs",
]

#: Scalar metrics understood by :func:`image_bootstrap_ci` and produced by
#: :func:`classification_metrics`.
METRICS: tuple[str, ...] = ("accuracy", "balanced_accuracy", "macro_f1")


# ----------------------------------------------------------------------------- helpers


def _check_classes(classes: Sequence[str]) -> list[str]:
    classes = [str(c) for c in classes]
    if not classes:
        raise ValueError("classes must not be empty")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes contain duplicates: {classes}")
    return classes


def _check_labels(values: Sequence[str], classes: list[str], what: str) -> np.ndarray:
    arr = np.asarray([str(v) for v in values], dtype=object)
    unknown = sorted(set(arr.tolist()) - set(classes))
    if unknown:
        raise ValueError(f"{what} contains labels not in classes: {unknown}")
    return arr


def _encode(y: np.ndarray, classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    return np.fromiter((index[v] for v in y), dtype=np.int64, count=len(y))


def _scalar_metric(t: np.ndarray, p: np.ndarray, metric: str) -> float:
    """One scalar metric on integer-coded labels, averaged over classes present in ``t``."""
    if metric == "accuracy":
        return float(accuracy_score(t, p))
    present = np.unique(t)
    if metric == "balanced_accuracy":
        return float(recall_score(t, p, labels=present, average="macro", zero_division=0))
    if metric == "macro_f1":
        return float(f1_score(t, p, labels=present, average="macro", zero_division=0))
    raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")


def short_class_name(label: str) -> str:
    """Short display name of a class, e.g. ``"NCM333_pristine"`` -> ``"333 pristine"``."""
    s = str(label)
    if s[:3].lower() == "ncm":
        s = s[3:]
    return s.replace("_", " ").strip()


# ----------------------------------------------------------------------------- per run


def aggregate_tiles(preds: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Average per-input class probabilities into one prediction per image.

    Parameters
    ----------
    preds : DataFrame
        One row per network input with ``image_id``, ``label`` (true class) and one
        probability column ``p_<class>`` per class. Tiles of one image share its
        ``image_id``; whole-image inputs are simply one row per image.
    classes : sequence of str
        Class order; ties in the argmax go to the earlier class.

    Returns
    -------
    DataFrame
        One row per ``image_id`` (order of first appearance): ``image_id``, ``label``,
        mean ``p_<class>`` columns, ``pred`` (argmax class name), ``correct`` (bool),
        ``n_inputs`` (rows averaged), plus every other column that is constant within
        each image (first value kept). Columns that vary within an image are dropped.

    Raises
    ------
    ValueError
        On missing columns, unknown labels, or an image whose tiles disagree on ``label``.
    """
    classes = _check_classes(classes)
    pcols = [f"p_{c}" for c in classes]
    missing = [c for c in ("image_id", "label", *pcols) if c not in preds.columns]
    if missing:
        raise ValueError(f"preds is missing columns {missing}")
    if preds.empty:
        raise ValueError("preds is empty")
    _check_labels(preds["label"], classes, "preds['label']")

    g = preds.groupby("image_id", sort=False, dropna=False)
    if (g["label"].nunique(dropna=False) > 1).any():
        bad = g["label"].nunique(dropna=False)
        raise ValueError(f"images with inconsistent labels across tiles: {bad[bad > 1].index.tolist()[:5]}")
    out = g[pcols].mean()
    probs = out[pcols].to_numpy(dtype=float)
    if np.isnan(probs).any():
        raise ValueError("probability columns contain NaN")
    out.insert(0, "label", g["label"].first().astype(str))
    out["pred"] = np.asarray(classes, dtype=object)[probs.argmax(axis=1)]
    out["correct"] = (out["pred"] == out["label"]).astype(bool)
    out["n_inputs"] = g.size().astype(int)

    skip = {"image_id", "label", "pred", "correct", "n_inputs", *pcols}
    extra = [c for c in preds.columns if c not in skip]
    if extra:
        nun = g[extra].nunique(dropna=False)
        keep = [c for c in extra if int(nun[c].max()) <= 1]
        if keep:
            out = out.join(g[keep].first())
    return out.reset_index()


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> dict:
    """Accuracy, balanced accuracy, macro-F1, per-class scores and confusion matrices.

    Parameters
    ----------
    y_true, y_pred : sequence of str
        True and predicted class per image (same length, labels from ``classes``).
    classes : sequence of str
        Class order of the confusion matrix and ``per_class``.

    Returns
    -------
    dict
        ``accuracy``; ``balanced_accuracy`` and ``macro_f1``, both averaged over the
        classes present in ``y_true`` only (absent classes would otherwise add
        undefined/zero terms); ``per_class`` ``{cls: {precision, recall, f1, support}}``
        for every class (recall/F1 NaN when support is 0, precision NaN when the class is
        also never predicted); ``confusion`` (counts, rows = true, columns = predicted,
        ``classes`` order, list of lists); ``confusion_norm`` (rows divided by their
        support, all-zero rows for absent classes); ``n``; ``classes``; ``classes_present``.
    """
    classes = _check_classes(classes)
    t = _check_labels(y_true, classes, "y_true")
    p = _check_labels(y_pred, classes, "y_pred")
    if len(t) != len(p):
        raise ValueError(f"y_true and y_pred differ in length ({len(t)} vs {len(p)})")
    if len(t) == 0:
        raise ValueError("no samples to evaluate")
    ti, pi = _encode(t, classes), _encode(p, classes)
    labels = np.arange(len(classes))

    cm = confusion_matrix(ti, pi, labels=labels)
    support = cm.sum(axis=1)
    n_pred = cm.sum(axis=0)
    prec, rec, f1, _ = precision_recall_fscore_support(ti, pi, labels=labels, zero_division=0)
    per_class: dict[str, dict[str, float | int]] = {}
    for k, c in enumerate(classes):
        has = support[k] > 0
        per_class[c] = {
            "precision": float(prec[k]) if (has or n_pred[k] > 0) else math.nan,
            "recall": float(rec[k]) if has else math.nan,
            "f1": float(f1[k]) if has else math.nan,
            "support": int(support[k]),
        }
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(support[:, None] > 0, cm / np.maximum(support[:, None], 1), 0.0)
    return {
        "accuracy": _scalar_metric(ti, pi, "accuracy"),
        "balanced_accuracy": _scalar_metric(ti, pi, "balanced_accuracy"),
        "macro_f1": _scalar_metric(ti, pi, "macro_f1"),
        "per_class": per_class,
        "confusion": cm.astype(int).tolist(),
        "confusion_norm": norm.astype(float).tolist(),
        "n": int(len(t)),
        "classes": list(classes),
        "classes_present": [c for k, c in enumerate(classes) if support[k] > 0],
    }


def metrics_from_preds(preds: pd.DataFrame, classes: Sequence[str]) -> dict:
    """Per-image metrics from per-input predictions.

    Parameters
    ----------
    preds : DataFrame
        As for :func:`aggregate_tiles`.
    classes : sequence of str
        Class order.

    Returns
    -------
    dict
        :func:`classification_metrics` on the aggregated images, plus ``n_inputs``
        (rows of ``preds``). ``n`` counts images, not tiles.
    """
    agg = aggregate_tiles(preds, classes)
    out = classification_metrics(agg["label"].tolist(), agg["pred"].tolist(), classes)
    out["n_inputs"] = int(len(preds))
    return out


def results_row(arm: str, seed: int, metrics: dict, classes: Sequence[str], **extra: Any) -> dict:
    """Flatten one run's :func:`classification_metrics` output into a results-table row.

    Parameters
    ----------
    arm : str
        Study arm, e.g. ``"pre_ft_oversample"``.
    seed : int
        Run seed.
    metrics : dict
        Output of :func:`classification_metrics` / :func:`metrics_from_preds`.
    classes : sequence of str
        Classes to emit ``f1_<class>`` columns for.
    **extra
        Further columns (e.g. ``domain="target"``); must not clash with the standard ones.

    Returns
    -------
    dict
        ``arm, seed, accuracy, balanced_accuracy, macro_f1, f1_<class>..., n`` then the
        extra columns. ``f1_<class>`` is NaN where the class has no support (or is
        missing from ``metrics['per_class']``).
    """
    classes = _check_classes(classes)
    row: dict[str, Any] = {"arm": arm, "seed": int(seed)}
    for m in METRICS:
        row[m] = float(metrics[m])
    per = metrics.get("per_class", {})
    for c in classes:
        f = per.get(c, {}).get("f1", math.nan)
        row[f"f1_{c}"] = math.nan if f is None else float(f)
    row["n"] = int(metrics["n"])
    clash = sorted(set(extra) & set(row))
    if clash:
        raise ValueError(f"extra columns clash with standard columns: {clash}")
    row.update(extra)
    return row


def chance_level(y_true: Sequence[str], classes: Sequence[str]) -> dict:
    """Trivial baselines for a test set, to put the model's scores in context.

    Parameters
    ----------
    y_true : sequence of str
        True class per test image.
    classes : sequence of str
        All classes the model can predict (``K = len(classes)``).

    Returns
    -------
    dict
        ``majority_class``, ``majority_accuracy`` (always predicting the most frequent
        true class; ties -> earlier in ``classes``), ``majority_macro_f1``,
        ``uniform_accuracy`` (``1/K``) and ``uniform_macro_f1``: the expected macro-F1 of
        guessing uniformly among the K classes, in the large-sample limit
        (per present class with prevalence ``pi``: precision ``pi``, recall ``1/K``,
        F1 ``2 pi/K / (pi + 1/K)``), averaged over present classes like
        :func:`classification_metrics`; plus ``n`` and ``n_classes``.
    """
    classes = _check_classes(classes)
    t = _check_labels(y_true, classes, "y_true")
    if len(t) == 0:
        raise ValueError("y_true is empty")
    ti = _encode(t, classes)
    k = len(classes)
    counts = np.bincount(ti, minlength=k)
    maj = int(np.argmax(counts))
    const = np.full_like(ti, maj)
    prev = counts[counts > 0] / counts.sum()
    uniform_f1 = float(np.mean(2 * prev * (1 / k) / (prev + 1 / k)))
    return {
        "majority_class": classes[maj],
        "majority_accuracy": _scalar_metric(ti, const, "accuracy"),
        "majority_macro_f1": _scalar_metric(ti, const, "macro_f1"),
        "uniform_accuracy": 1.0 / k,
        "uniform_macro_f1": uniform_f1,
        "n": int(len(t)),
        "n_classes": k,
    }


# ----------------------------------------------------------------------------- intervals


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


# ----------------------------------------------------------------------------- across runs


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
        :func:`results_row`); per-class ``f1_<class>`` columns can be listed in
        ``metrics`` too.
    metrics : sequence of str
        Metric columns to summarise (each must exist).
    group : str
        Column naming the arm.
    n_boot, ci, seed
        Passed to :func:`bootstrap_ci`.

    Returns
    -------
    DataFrame
        One row per arm in order of first appearance: ``group``, ``n_seeds`` (rows), and
        for each metric ``m``: ``m_mean``, ``m_std`` (ddof=1, NaN with one run),
        ``m_lo``, ``m_hi``. NaN values (e.g. F1 of an absent class) are skipped.
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


def paired_table(
    results: pd.DataFrame,
    reference: str,
    metric: str = "macro_f1",
    group: str = "arm",
    pair_on: str = "seed",
) -> pd.DataFrame:
    """:func:`paired_comparison` of every other arm against a reference arm.

    Parameters
    ----------
    results : DataFrame
        One row per (arm, seed) run.
    reference : str
        Arm everything is compared with (it is ``b``; differences are ``arm - reference``).
    metric, group, pair_on : str
        As for :func:`paired_comparison`.

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
        columns (as written by :func:`results_row`).
    classes : sequence of str
        Class order of the per-class columns, headed by :func:`short_class_name`
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
