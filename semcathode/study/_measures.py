"""The interpretable side of the study: per-class morphology with intervals, and a classifier on the
measures alone.

:func:`measure_summary`: per class, the mean of each measure over its micrographs with a
bootstrap interval. :func:`measures_baseline`: logistic regression on the standardised
per-micrograph measures (:mod:`semcathode.morphology`), trained on the source train split, its
regularisation chosen on the pre-tail (valid) split, scored per micrograph on the frame-block
test and the session tail: how much of each class an interpretable description explains, and
which measures carry it. Calling convention: ``(measures, classes, ...)``, where ``measures`` is
the table of :func:`semcathode.morphology.measure_manifest`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..metrics._classification import classification_metrics
from ..metrics import bootstrap_ci

__all__ = ["BASELINE_MEASURES", "SUMMARY_MEASURES", "baseline_comparison", "measure_summary", "measures_baseline"]

#: The measures summarised per class (and drawn in notebook 01).
SUMMARY_MEASURES: tuple[str, ...] = ("d50_um", "circularity", "fines_share", "boundary_um_per_um2", "d90_um",
                                     "solidity", "per_1000um2", "texture")

#: The measures the interpretable baseline sees.
BASELINE_MEASURES: tuple[str, ...] = ("d10_um", "d50_um", "d90_um", "d50_area_um", "per_1000um2", "area_fraction",
                                      "boundary_um_per_um2", "circularity", "solidity", "fines_share", "texture")

_SPLIT_NAMES = {"valid": "pre-tail (valid)", "test": "frame-block test", "tail": "session tail"}


def measure_summary(measures: pd.DataFrame, classes: Sequence[str], columns: Sequence[str] = SUMMARY_MEASURES,
                    n_boot: int = 1000, domain: str = "source") -> pd.DataFrame:
    """Per class and measure: micrographs, mean, median and a 95 % bootstrap interval of the mean.

    Parameters
    ----------
    measures : DataFrame
        :func:`semcathode.morphology.measure_manifest` (``label``, ``domain``, the measures, ``error``).
    classes : sequence of str
        Row order (classes without micrographs are left out).
    columns : sequence of str
    n_boot : int
    domain : str
        Rows of this domain (``""``: all).

    Returns
    -------
    DataFrame
        ``label, measure, n, mean, median, ci_low, ci_high``. The interval resamples micrographs;
        each KAIST class is one imaging session, so it says how well the session's mean is known,
        not how much another session of the same material would differ.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"label": ["a"] * 3 + ["b"] * 3, "domain": "source", "error": "",
    ...                   "d50_um": [5.0, 6.0, 7.0, 9.0, 9.0, 9.0]})
    >>> measure_summary(m, ["a", "b"], ["d50_um"])[["label", "mean", "ci_low"]].values.tolist()
    [['a', 6.0, 5.0], ['b', 9.0, 9.0]]
    """
    df = measures[measures["error"].fillna("").astype(str) == ""]
    if domain and "domain" in df:
        df = df[df["domain"] == domain]
    rows = []
    for label in classes:
        g = df[df["label"] == label]
        if g.empty:
            continue
        for c in columns:
            v = pd.to_numeric(g[c], errors="coerce").dropna().to_numpy(float)
            lo, hi = bootstrap_ci(v, n_boot=n_boot)
            rows.append({"label": label, "measure": c, "n": len(v), "mean": float(v.mean()) if len(v) else np.nan,
                         "median": float(np.median(v)) if len(v) else np.nan, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=["label", "measure", "n", "mean", "median", "ci_low", "ci_high"])


def _xy(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    return df[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(float)


def measures_baseline(measures: pd.DataFrame, classes: Sequence[str], columns: Sequence[str] = BASELINE_MEASURES,
                      cs: Sequence[float] = (0.01, 0.1, 1.0, 10.0), domain: str = "source",
                      splits: Sequence[str] = ("valid", "test", "tail"),
                      seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Logistic regression on the per-micrograph measures alone, per micrograph.

    Trained on the ``train`` split of ``domain`` (micrographs with a missing measure are left out);
    the inverse regularisation ``C`` is the one of ``cs`` with the best macro-F1 on the ``valid``
    split (the pre-tail), or the middle one without a valid split; then refit on train + valid and
    scored once on every split of ``splits`` (valid is scored by the model fitted on train only).

    Parameters
    ----------
    measures : DataFrame
        :func:`semcathode.morphology.measure_manifest` (``label``, ``domain``, ``split``, measures).
    classes : sequence of str
    columns : sequence of str
        The measures used.
    cs : sequence of float
        Candidate values of ``C``.
    domain : str
    splits : sequence of str
    seed : int
        Of the permutation importances.

    Returns
    -------
    scores : DataFrame
        ``model, split, n, accuracy, macro_f1, C`` and ``f1_<class>``: one row per split.
    weights : DataFrame
        Per measure: ``mean_abs_coef`` (standardised units, over classes), ``importance`` (the
        frame-block test's macro-F1 lost when the measure is shuffled, mean of 20 permutations) and the
        coefficient of each class (``coef_<class>``), sorted by importance.
    predictions : DataFrame
        ``path, label, pred, split``.

    Raises
    ------
    ValueError
        No training micrograph with every measure.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> m = pd.DataFrame({"label": np.repeat(["a", "b"], 20), "domain": "source", "error": "",
    ...                   "split": np.tile(["train"] * 12 + ["valid"] * 2 + ["test"] * 3 + ["tail"] * 3, 2),
    ...                   "path": [f"{i}.png" for i in range(40)],
    ...                   "d50_um": np.r_[rng.normal(5, 0.3, 20), rng.normal(8, 0.3, 20)]})
    >>> scores, weights, _ = measures_baseline(m, ["a", "b"], columns=["d50_um"])
    >>> scores["macro_f1"].round(2).tolist(), weights["measure"].tolist()
    ([1.0, 1.0, 1.0], ['d50_um'])
    """
    from sklearn.inspection import permutation_importance
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df = measures[(measures["error"].fillna("").astype(str) == "") & measures["label"].isin(list(classes))]
    if domain and "domain" in df:
        df = df[df["domain"] == domain]
    df = df[np.isfinite(_xy(df, columns)).all(1)]
    part = {s: df[df["split"] == s] for s in ("train", *splits)}
    if part["train"].empty:
        raise ValueError("no training micrograph with every measure: the measures baseline cannot be fitted")

    def fit(rows: pd.DataFrame, c: float):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        return model.fit(_xy(rows, columns), rows["label"].to_numpy())

    valid = part.get("valid", pd.DataFrame())
    if len(valid):
        f1 = {c: f1_score(valid["label"], fit(part["train"], c).predict(_xy(valid, columns)), average="macro")
              for c in cs}
        best = max(cs, key=lambda c: (f1[c], -abs(np.log10(c))))  # ties: the least extreme C
    else:
        best = sorted(cs)[len(cs) // 2]
    on_train = fit(part["train"], best)
    final = fit(pd.concat([part["train"], valid]), best) if len(valid) else on_train
    rows, preds = [], []
    for s in splits:
        g = part.get(s, pd.DataFrame())
        if g.empty:
            continue
        model = on_train if s == "valid" else final
        pred = model.predict(_xy(g, columns))
        m = classification_metrics(g["label"].to_numpy(), pred, classes)
        rows.append({"model": "measures only", "split": _SPLIT_NAMES.get(s, s), "n": len(g), "C": best,
                     "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                     **{f"f1_{c}": m["per_class"][c]["f1"] for c in classes}})
        preds.append(pd.DataFrame({"path": g["path"].to_numpy(), "label": g["label"].to_numpy(), "pred": pred,
                                   "split": _SPLIT_NAMES.get(s, s)}))
    lr = final[-1]
    coef = pd.DataFrame(lr.coef_.T if lr.coef_.shape[0] > 1 else np.hstack([-lr.coef_.T, lr.coef_.T]),
                        index=list(columns), columns=[f"coef_{c}" for c in lr.classes_])
    weights = coef.abs().mean(1).rename("mean_abs_coef").to_frame()
    test = part.get("test", pd.DataFrame())
    if len(test):
        imp = permutation_importance(final, _xy(test, columns), test["label"].to_numpy(), scoring="f1_macro",
                                     n_repeats=20, random_state=seed)
        weights["importance"] = imp.importances_mean
    else:
        weights["importance"] = np.nan
    weights = weights.join(coef).sort_values(["importance", "mean_abs_coef"], ascending=False)
    weights = weights.rename_axis("measure").reset_index()
    scores = pd.DataFrame(rows)
    predictions = pd.concat(preds, ignore_index=True) if preds else pd.DataFrame(columns=["path", "label", "pred", "split"])
    return scores, weights, predictions


def baseline_comparison(measures_scores: pd.DataFrame, cnn_summary: pd.DataFrame, probe: pd.DataFrame) -> pd.DataFrame:
    """The measures-only baseline, the frozen linear probe and the CNN side by side, macro-F1 per split.

    Parameters
    ----------
    measures_scores : DataFrame
        The ``scores`` of :func:`measures_baseline`.
    cnn_summary : DataFrame
        Stage-1 summary per split (``split``, ``macro_f1_mean``: notebook 02's ``source_test_summary``).
    probe : DataFrame
        :func:`~semcathode.study.linear_probe_report` (``domain``, ``split``, ``macro_f1``).

    Returns
    -------
    DataFrame
        Index: the models; columns: the splits (``frame-block test``, ``session tail``).

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"split": ["frame-block test", "session tail"], "macro_f1": [0.9, 0.8]})
    >>> c = pd.DataFrame({"split": ["frame-block test", "session tail"], "macro_f1_mean": [0.96, 0.99]})
    >>> p = pd.DataFrame({"domain": ["source"] * 2, "split": ["test", "tail"], "macro_f1": [0.94, 0.92]})
    >>> baseline_comparison(m, c, p).round(2).values.tolist()
    [[0.9, 0.8], [0.94, 0.92], [0.96, 0.99]]
    """
    splits = ["frame-block test", "session tail"]
    src = probe[probe["domain"] == "source"] if "domain" in probe else probe
    rows = {
        "measures only (logistic regression)": dict(zip(measures_scores["split"], measures_scores["macro_f1"])),
        "linear probe (frozen ImageNet, per tile)": {_SPLIT_NAMES.get(s, s): v for s, v in zip(src["split"], src["macro_f1"])},
        "CNN stage 1 (mean over seeds)": dict(zip(cnn_summary["split"], cnn_summary["macro_f1_mean"])),
    }
    return pd.DataFrame({k: {s: v.get(s, np.nan) for s in splits} for k, v in rows.items()}).T.rename_axis("model")
