"""Per-micrograph classification metrics: scores, per-class results, confusion matrices,
results rows and chance levels. Intervals and paired tests are in :mod:`.intervals`, tables
across runs in :mod:`.tables`.

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
    "chance_level",
    "classification_metrics",
    "metrics_from_preds",
    "results_row",
    "short_class_name",
]

#: Scalar metrics understood by :func:`~semcathode.metrics.image_bootstrap_ci` and produced by
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
    """Short display name of a class.

    Parameters
    ----------
    label : str

    Returns
    -------
    str
        Without a leading ``NCM`` and with spaces for underscores.

    Examples
    --------
    >>> short_class_name("NCM333_pristine")
    '333 pristine'
    """
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

    Examples
    --------
    >>> m = classification_metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b", "c"])
    >>> round(m["accuracy"], 2), round(m["macro_f1"], 3), m["classes_present"]
    (0.75, 0.733, ['a', 'b'])
    >>> m["confusion"]
    [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
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
