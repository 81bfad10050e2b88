"""Baselines that every fine-tuned model has to beat: a linear probe on frozen ImageNet features.

Every tile of a micrograph's grid (the same tiles the fine-tuned models see) is classified by
scikit-learn's logistic regression on the frozen backbone's pooled features, and the mean of
the tiles' log-probabilities is the micrograph's prediction, as for the fine-tuned models.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..config._settings import StudySettings
from ..data import Study
from ..metrics._classification import aggregate_tiles, classification_metrics
from ..metrics import bootstrap_ci

__all__ = ["extract_features", "linear_probe", "linear_probe_report", "probe_floor"]


@torch.no_grad()
def extract_features(items: pd.DataFrame, settings: StudySettings, bs: int = 64) -> list[np.ndarray]:
    """Frozen ImageNet backbone features (no training) of every tile of every micrograph: the pooled
    features of the tile grid the fine-tuned models see. With ``model.trunk`` > 0 the frozen trunk's
    maps come from the trunk cache (the ImageNet trunk is every arm's trunk, so it is built once).

    Parameters
    ----------
    items : DataFrame
        With ``cache_path`` and ``size``.
    settings : StudySettings
        Backbone, weights, pre-processing and trunk.
    bs : int
        Tiles per forward pass.

    Returns
    -------
    list of ndarray
        Per micrograph, float32 ``(T_i, D)``.
    """
    from ..models._backbones import create_backbone
    from ..models._forward import predict_arrays
    from ._evaluation import cached_network_outputs
    from ._train import input_norm, trunk_cache, trunk_spec

    model, _ = create_backbone(settings.model.backbone, weights=settings.model.weights, num_classes=0)
    model.eval()
    if items.empty:
        return []
    if settings.model.trunk:
        mo = cached_network_outputs(model, items, trunk_cache(settings), trunk_spec(settings, model),
                                    settings.evaluate.aggregate, features=True)
    else:
        mean, std = input_norm(settings.model)
        arrays = [np.load(p) for p in items["cache_path"]]
        mo = predict_arrays(model, arrays, int(items["size"].iloc[0]), settings.preprocess.normalize, mean, std,
                            stride=settings.preprocess.tile_stride, features=True, bs=bs)
    return [f.astype(np.float32) for f in mo.tile_features]


def linear_probe(
    train_items: pd.DataFrame, test_items: pd.DataFrame, settings: StudySettings, classes: Sequence[str],
    features: tuple[list[np.ndarray], list[np.ndarray]] | None = None, C: float = 1.0,
) -> tuple[pd.DataFrame, dict]:
    """Logistic regression (scikit-learn) on the frozen ImageNet features of every tile, the mean
    log-probability of a micrograph's tiles as its prediction: the floor fine-tuning has to beat.

    Parameters
    ----------
    train_items, test_items : DataFrame
    settings : StudySettings
    classes : sequence of str
    features : (list, list), optional
        Precomputed :func:`extract_features` of train and test.
    C : float
        Inverse regularisation strength.

    Returns
    -------
    predictions : DataFrame
        Image-level predictions on ``test_items``.
    metrics : dict
        :func:`semcathode.metrics.classification_metrics`.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..models._forward import aggregate_log_probs

    ftr, fte = features if features is not None else (extract_features(train_items, settings), extract_features(test_items, settings))
    y = np.concatenate([[lbl] * len(f) for lbl, f in zip(train_items["label"], ftr)])
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    clf.fit(np.concatenate(ftr), y)
    col = {c: j for j, c in enumerate(clf.classes_)}
    order = [col.get(c) for c in classes]
    rows = []
    for f in fte:
        lp = np.log(np.clip(clf.predict_proba(f), 1e-12, 1.0))
        lp = np.stack([lp[:, j] if j is not None else np.full(len(f), -np.inf) for j in order], axis=1)
        rows.append(np.exp(aggregate_log_probs(lp, settings.evaluate.aggregate)))
    out = test_items.reset_index(drop=True).copy()
    p = np.stack(rows) if rows else np.zeros((0, len(classes)))
    for j, c in enumerate(classes):
        out[f"p_{c}"] = p[:, j]
    img = aggregate_tiles(out, classes)
    return img, classification_metrics(img["label"], img["pred"], classes)


def linear_probe_report(study: Study, n_splits: int = 0) -> pd.DataFrame:
    """The linear-probe baseline (frozen ImageNet features, one mean embedding per micrograph).

    Rows: source train -> frame-block test and -> session tail (the CNN's own splits, directly
    comparable with stage 1); target train -> target test (the floor of the stage-2 arms);
    with ``n_splits`` > 0 also frame-block cross-validation over every micrograph of the
    schema's classes without any simulated shift.

    Parameters
    ----------
    study : Study
        Gives ``items``/``rows``, ``manifest``, ``classes`` and the settings.
    n_splits : int
        Cross-validation folds (0 = none).

    Returns
    -------
    DataFrame
        One row per protocol with macro-F1, accuracy and a bootstrap interval.
    """
    from ..data._preprocess import build_items
    from ..data._splits import group_folds

    settings, classes = study.settings, study.classes
    rows = []
    train_features: dict[str, list[np.ndarray]] = {}  # each domain's train tiles are extracted once
    for dom, split, name in (("source", "valid", "source train -> valid (the pre-tail, where settings are chosen)"),
                             ("source", "test", "source train -> frame-block test (the CNN's split)"),
                             ("source", "tail", "source train -> session tail"),
                             ("target", "test", "target train -> target test (floor of the stage-2 arms)")):
        tr, te = study.rows(dom, "train"), study.rows(dom, split)
        if tr.empty or te.empty:
            continue
        if dom not in train_features:
            train_features[dom] = extract_features(tr, settings)
        _, m = linear_probe(tr, te, settings, classes, features=(train_features[dom], extract_features(te, settings)))
        rows.append({"protocol": name, "domain": dom, "split": split, "n_test": m["n"], "accuracy": m["accuracy"],
                     "macro_f1": m["macro_f1"]})
    if not n_splits:
        return pd.DataFrame(rows)
    raw = study.manifest[study.manifest["label"].isin(classes)].assign(shift="")
    raw_items = build_items(raw, study.params, study.cache)
    feats = extract_features(raw_items, settings)
    y_true, y_pred = [], []
    for tr, te in group_folds(raw_items, n_splits=n_splits, seed=settings.data.split_seed):
        img, _ = linear_probe(raw_items.iloc[tr], raw_items.iloc[te], settings, classes, features=([feats[i] for i in tr], [feats[i] for i in te]))
        y_true += list(img["label"])
        y_pred += list(img["pred"])
    m2 = classification_metrics(y_true, y_pred, classes)
    rows.append({"protocol": f"{n_splits}-fold frame-block CV, all {len(raw)} images of the {len(classes)} classes, "
                             "no shift", "domain": "all", "split": "cv", "n_test": m2["n"], "accuracy": m2["accuracy"],
                 "macro_f1": m2["macro_f1"]})
    return pd.DataFrame(rows)


def probe_floor(results: pd.DataFrame, probe: pd.DataFrame, n_boot: int = 1000) -> pd.DataFrame:
    """Which arms beat the linear probe on the target test split (the floor every arm must beat).

    Parameters
    ----------
    results : DataFrame
        One row per (arm, seed) on the target test split (``arm``, ``macro_f1``).
    probe : DataFrame
        From :func:`linear_probe_report` (its ``target``/``test`` row).

    Returns
    -------
    DataFrame
        Per arm: mean macro-F1, 95% bootstrap CI over seeds, the probe's macro-F1 and
        ``vs_probe`` in {``beats``, ``below``, ``not distinguishable``} (CI above, below,
        or around the probe).
    """
    row = probe[(probe["domain"] == "target") & (probe["split"] == "test")]
    lp = float(row["macro_f1"].iloc[0]) if len(row) else float("nan")
    out = []
    for arm, sub in results.groupby("arm", sort=False):
        v = sub["macro_f1"].to_numpy(dtype=float)
        lo, hi = bootstrap_ci(v, n_boot=n_boot)
        verdict = "beats" if lo > lp else ("below" if hi < lp else "not distinguishable")
        out.append({"arm": arm, "macro_f1_mean": float(v.mean()), "macro_f1_lo": lo, "macro_f1_hi": hi,
                    "probe_macro_f1": lp, "vs_probe": verdict})
    return pd.DataFrame(out)
