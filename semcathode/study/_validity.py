"""Scientific validity checks: shortcut baseline, session confounding, acquisition-shift
robustness.

A CNN can learn *how an image was taken* instead of *what the cathode looks like*. In the
KAIST data each class is one imaging session and the pristine sessions are darker, so a
classifier that sees only the grey-level histogram and the instrument settings already
separates much of the data. The shortcut baseline measures this on the same splits as the
CNN, and the report warns when it is far above chance.
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import pandas as pd

from ..data import Study
from .._progress import progress as _progress
from ..metrics._classification import chance_level, classification_metrics

__all__ = [
    "shortcut_features",
    "shortcut_baseline",
    "shortcut_verdict",
    "session_check",
    "with_extra_shift",
    "robustness_items",
    "shortcut_study",
    "normalisation_ablation",
    "robustness_study",
    "session_probe",
]


def _date_ordinal(s: object) -> float:
    try:
        return float(pd.Timestamp(str(s)).toordinal())
    except (ValueError, TypeError):
        return np.nan


def shortcut_features(items: pd.DataFrame, bins: int = 32, normalize: str = "dataset",
                      metadata: bool = True) -> pd.DataFrame:
    """Features that carry no morphology: grey-level histogram, mean, std (+ instrument metadata).

    Computed on the same network inputs the CNN sees (cached uint8 arrays, one per item).
    With ``normalize="per_image"`` each image is standardised first, as the CNN would see it
    under per-image normalisation, so mean and std no longer carry information.

    Parameters
    ----------
    items : DataFrame
        Items with ``cache_path`` (and optionally ``tile``, ``brightness``, ``contrast``,
        ``acq_date``).
    bins : int
    normalize : str
        ``dataset`` or ``per_image``.
    metadata : bool
        Add brightness/contrast settings and acquisition date where known.

    Returns
    -------
    DataFrame
        One row per item, numeric columns only.
    """
    feats = []
    for _, r in items.iterrows():
        a = np.load(r["cache_path"], mmap_mode="r")
        t = int(r.get("tile", -1))
        a = np.asarray(a[t] if t >= 0 else a, dtype=np.float32) / 255.0
        if normalize == "per_image":
            a = (a - a.mean()) / max(a.std(), 1e-4)
            h, _ = np.histogram(a, bins=bins, range=(-3, 3))
        else:
            h, _ = np.histogram(a, bins=bins, range=(0, 1))
        row = {f"hist_{i}": v / a.size for i, v in enumerate(h)}
        row.update(mean=float(a.mean()), std=float(a.std()))
        feats.append(row)
    out = pd.DataFrame(feats, index=items.index)
    if metadata:
        for col in ("brightness", "contrast"):
            if col in items.columns:
                out[f"meta_{col}"] = pd.to_numeric(items[col], errors="coerce")
        if "acq_date" in items.columns:
            out["meta_date"] = items["acq_date"].map(_date_ordinal)
    return out


def shortcut_baseline(
    train_items: pd.DataFrame, test_items: pd.DataFrame, classes: Sequence[str], normalize: str = "dataset",
    metadata: bool = True, seed: int = 0,
) -> dict:
    """Logistic regression on :func:`shortcut_features`, trained and scored on the CNN's splits.

    Parameters
    ----------
    train_items, test_items : DataFrame
    classes : sequence of str
    normalize : {"dataset", "per_image"}
        Normalisation applied before the features are taken.
    metadata : bool
        Include the file metadata features.
    seed : int

    Returns
    -------
    dict
        ``classification_metrics`` of the shortcut classifier plus ``chance`` levels and the
        feature set used.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ftr = shortcut_features(train_items, normalize=normalize, metadata=metadata)
    fte = shortcut_features(test_items, normalize=normalize, metadata=metadata).reindex(columns=ftr.columns)
    ftr = ftr.loc[:, ftr.notna().any()]
    fte = fte[ftr.columns]
    clf = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(C=1.0, max_iter=3000, random_state=seed))
    clf.fit(ftr.to_numpy(), train_items["label"].to_numpy())
    pred = clf.predict(fte.to_numpy())
    m = classification_metrics(test_items["label"].to_numpy(), pred, classes)
    m["chance"] = chance_level(test_items["label"].to_numpy(), classes)
    m["features"] = list(ftr.columns)
    m["normalize"] = normalize
    return m


def shortcut_verdict(metrics: dict, margin: float = 0.2) -> dict:
    """Does the shortcut baseline score far above chance?

    The warning fires when its balanced accuracy exceeds chance (1/K over the classes present)
    by more than ``margin``.

    Parameters
    ----------
    metrics : dict
        From :func:`shortcut_baseline`.
    margin : float

    Returns
    -------
    dict
        ``warn`` (bool), ``balanced_accuracy``, ``chance``, ``message`` (markdown).
    """
    k = max(1, len([c for c, v in metrics["per_class"].items() if v["support"] > 0]))
    chance = 1.0 / k
    bacc = float(metrics["balanced_accuracy"])
    warn = bacc > chance + margin
    if warn:
        msg = (f"**Shortcut warning:** a classifier that sees only grey-level statistics and instrument "
               f"settings (no morphology) reaches balanced accuracy {bacc:.2f} against chance {chance:.2f}. "
               f"Brightness/contrast or session differences predict the class; part of what the CNN scores "
               f"may be the imaging session rather than the cathode's morphology. Compare with per-image "
               f"normalisation and read the CNN's score as an upper bound for morphology alone.")
    else:
        msg = (f"Shortcut baseline: balanced accuracy {bacc:.2f} against chance {chance:.2f}; grey-level "
               f"statistics and instrument settings alone do not predict the class here.")
    return {"warn": bool(warn), "balanced_accuracy": bacc, "chance": chance, "message": msg}


def session_check(manifest: pd.DataFrame) -> dict:
    """How many imaging sessions each class has, and what that allows.

    Parameters
    ----------
    manifest : DataFrame
        With ``label`` and ``session``.

    Returns
    -------
    dict
        ``sessions_per_class``, ``single_session`` (every class one session), ``message``.
    """
    spc = manifest.groupby("label")["session"].nunique()
    single = bool((spc <= 1).all())
    if single:
        msg = ("Every class was imaged in a single session, so class and session are confounded: no split "
               "of these images can test whether the model generalises to a new session of the same class. "
               "Session-aware evaluation needs several sessions per class (give a `session` column).")
    else:
        multi = ", ".join(spc[spc > 1].index)
        msg = (f"Classes with several sessions: {multi}. Evaluate with sessions as groups "
               f"(leave-session-out) to measure generalisation to a new session.")
    return {"sessions_per_class": {k: int(v) for k, v in spc.items()}, "single_session": single, "message": msg}


def with_extra_shift(shift_json: str, extra: dict) -> str:
    """Append an acquisition shift to a row's ``shift`` JSON (applied after the existing one).

    Parameters
    ----------
    shift_json : str
        The row's ``shift`` (``""`` = none).
    extra : dict
        The shift to append.

    Returns
    -------
    str
        JSON of the combined shift.
    """
    base = json.loads(shift_json) if isinstance(shift_json, str) and shift_json else []
    base = base if isinstance(base, list) else [base]
    return json.dumps(base + [extra], sort_keys=True)


def robustness_items(test_rows: pd.DataFrame, kind: str, severity: float, params, cache) -> pd.DataFrame:
    """The test manifest rows with an extra shift of ``kind`` at ``severity``, pre-processed.

    Severity 0 returns the rows' items unchanged (the plain test set).

    Parameters
    ----------
    test_rows : DataFrame
        Manifest rows of the test split.
    kind : str
        A shift kind.
    severity : float
    params : PreprocessParams
    cache : PreprocessCache

    Returns
    -------
    DataFrame
        Pre-processed items.
    """
    from ..data._preprocess import build_items
    from ..data._shift import shift_at_severity

    rows = test_rows.copy()
    if severity:
        extra = shift_at_severity(kind, severity).to_dict()
        rows["shift"] = [with_extra_shift(s, extra) for s in rows.get("shift", pd.Series("", index=rows.index))]
    return build_items(rows, params, cache)


def shortcut_study(study: Study) -> tuple[pd.DataFrame, dict]:
    """The shortcut baseline on the CNN's splits, with dataset and per-image normalisation.

    Parameters
    ----------
    study : Study
        Gives ``items``/``rows``, ``manifest``, ``classes`` and the settings.

    Returns
    -------
    table : DataFrame
        One row per (domain, normalisation): balanced accuracy, macro-F1, chance.
    verdict : dict
        :func:`shortcut_verdict` of the source split with dataset normalisation.
    """
    rows, verdict = [], None
    for domain in ("source", "target"):
        tr, te = study.rows(domain, "train"), study.rows(domain, "test")
        if tr.empty or te.empty:
            continue
        for norm in ("dataset", "per_image"):
            m = shortcut_baseline(tr, te, study.classes, normalize=norm)
            v = shortcut_verdict(m)
            rows.append({"domain": domain, "normalisation": norm, "train": len(tr), "test": len(te),
                         "balanced_accuracy": m["balanced_accuracy"], "macro_f1": m["macro_f1"],
                         "accuracy": m["accuracy"], "chance": v["chance"], "warning": v["warn"]})
            if domain == "source" and norm == "dataset":
                verdict = v
    return pd.DataFrame(rows), verdict or {"warn": False, "message": "no data"}


def normalisation_ablation(study: Study, seeds: Sequence[int], log=print) -> pd.DataFrame:
    """Stage-1 CNN on the source test split with dataset vs per-image normalisation, per seed.

    Parameters
    ----------
    study : Study
        Gives ``items``/``rows``, ``manifest``, ``classes`` and the settings.
    seeds : sequence of int
    log : callable, optional

    Returns
    -------
    DataFrame
        One row per (normalisation, seed) with the source-test metrics.
    """
    from ._evaluation import evaluate_model
    from ._train import train_stage1

    rows = []
    test = study.rows("source", "test")
    for norm in ("dataset", "per_image"):
        variant = study.using(preprocess={"normalize": norm})
        for seed in seeds:
            tm = train_stage1(variant, seed, log=log)
            _, _, row = evaluate_model(tm, test, study.classes, normalisation=norm)
            rows.append(row)
    return pd.DataFrame(rows)


def robustness_study(study: Study, arms: Sequence[str], seeds: Sequence[int], kinds: Sequence[str],
                     severities: Sequence[float], log=print) -> pd.DataFrame:
    """Target-test macro-F1 of the main arms against the severity of each acquisition shift.

    Models come from the protocol's model store (trained once in notebook 03 and reused);
    each shift is applied on top of the target domain's own shift.

    Parameters
    ----------
    study : Study
        Gives ``items``/``rows``, ``manifest``, ``classes`` and the settings.
    arms : sequence of str
    seeds : sequence of int
    kinds : sequence of str
        Shift kinds.
    severities : sequence of float
    log : callable, optional

    Returns
    -------
    DataFrame
        ``arm, seed, kind, severity, accuracy, macro_f1, ...``.
    """
    from ._arms import train_arm
    from ._evaluation import evaluate_model
    from ._train import train_stage1

    tgt = study.manifest[study.manifest["label"].isin(study.classes)]
    test_rows = tgt[(tgt["domain"] == "target") & (tgt["split"] == "test")]
    train = study.rows("target", "train")
    base = robustness_items(test_rows, kinds[0], 0.0, study.params, study.cache)
    shifted = {(k, s): robustness_items(test_rows, k, s, study.params, study.cache)
               for k in kinds for s in severities if s}
    rows = []
    for seed in seeds:
        s1 = train_stage1(study, seed, log=log)
        for arm in arms:
            tm = train_arm(arm, train, study.settings, seed, study.classes, stage1=s1)
            _, _, row0 = evaluate_model(tm, base, study.classes)
            if 0.0 in severities:  # severity 0 is the plain test set: scored once, shared by every kind
                rows += [{**row0, "kind": k, "severity": 0.0} for k in kinds]
            for (k, s), items in _progress(shifted.items(), f"robustness {arm} seed {seed}"):
                _, _, row = evaluate_model(tm, items, study.classes, kind=k, severity=s)
                rows.append(row)
        if log:
            log(f"robustness seed {seed}: {len(arms)} arms x {len(shifted)} shifted test sets done")
    return pd.DataFrame(rows)


def session_probe(study: Study, n_splits: int = 5) -> pd.DataFrame:
    """Session-aware evaluation: the linear probe with whole imaging sessions held out.

    Only classes with at least two sessions can be scored this way (a class's only session
    cannot be both trained on and held out), and at least two such classes are needed. For them, folds hold out whole sessions
    (scikit-learn ``GroupKFold`` over ``session``) and, for comparison, frame blocks; a large
    drop from frame-block to session folds means the model keys on the session.

    Parameters
    ----------
    study : Study
        Gives ``items``/``rows``, ``manifest``, ``classes`` and the settings.
    n_splits : int
        Folds per protocol.

    Returns
    -------
    DataFrame
        One row per protocol (``frame-block folds``, ``session folds``) with macro-F1 and the
        classes used; empty when no class has two sessions (see :func:`session_check`).
    """
    from sklearn.model_selection import GroupKFold

    from ..data._preprocess import build_items
    from ._baselines import extract_features, linear_probe

    m = study.manifest[study.manifest["label"].isin(study.classes)]
    spc = m.groupby("label")["session"].nunique()
    keep = list(spc[spc >= 2].index)
    if len(keep) < 2:  # a classifier needs two classes that each have a held-out session
        return pd.DataFrame(columns=["protocol", "classes", "n", "macro_f1", "accuracy"])
    raw = build_items(m[m["label"].isin(keep)].assign(shift=""), study.params, study.cache)
    feats = extract_features(raw, study.settings)
    rows = []
    for name, groups in (("frame-block folds", raw["group"]), ("session folds", raw["session"])):
        k = min(n_splits, groups.nunique())
        y_true, y_pred = [], []
        for tr, te in GroupKFold(n_splits=k).split(raw, raw["label"], groups):
            img, _ = linear_probe(raw.iloc[tr], raw.iloc[te], study.settings, study.classes, features=([feats[i] for i in tr], [feats[i] for i in te]))
            y_true += list(img["label"])
            y_pred += list(img["pred"])
        met = classification_metrics(y_true, y_pred, study.classes)
        rows.append({"protocol": name, "classes": ", ".join(keep), "n": met["n"], "macro_f1": met["macro_f1"],
                     "accuracy": met["accuracy"]})
    return pd.DataFrame(rows)
