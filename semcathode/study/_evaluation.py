"""Evaluating trained models: whole-micrograph predictions (tile grid, aggregated, through
:func:`semcathode.models.forward.predict_arrays`), per-micrograph metrics and results rows."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..metrics.classification import classification_metrics, results_row
from ._train import TrainedModel

__all__ = ["micrograph_outputs", "predict_micrographs", "evaluate_model", "evaluate_models", "evaluate_splits",
           "split_rows"]


def split_rows(items: pd.DataFrame, domain: str, split: str) -> pd.DataFrame:
    """Rows of one domain and split.

    Parameters
    ----------
    items : DataFrame
        With ``domain`` and ``split`` columns.
    domain, split : str

    Returns
    -------
    DataFrame
        The matching rows (original index).
    """
    return items[(items["domain"] == domain) & (items["split"] == split)]


def micrograph_outputs(tm: TrainedModel, items: pd.DataFrame, features: bool = False, layers: Sequence[str] = ()):
    """:func:`semcathode.models.forward.predict_arrays` on cached micrographs with the model's own settings.

    Parameters
    ----------
    tm : TrainedModel
        Must carry its ``settings`` (pre-processing, normalisation, aggregation).
    items : DataFrame
        With ``cache_path`` (uint8 arrays) and ``size``.
    features : bool
        Also return the mean tile embeddings.
    layers : sequence of str
        Layers whose pooled output to average per micrograph (``layer_features``; see
        :func:`semcathode.models.forward.predict_arrays`).

    Returns
    -------
    MicrographOutputs
    """
    from ..models.forward import predict_arrays

    settings = tm.settings
    if settings is None:
        raise ValueError("the TrainedModel has no settings: cannot know its pre-processing")
    if tm.trunk is not None and settings.model.trunk:  # the frozen trunk's maps come from the cache (built once)
        from ..models.top import CachedTiles, cached_outputs
        from ..models.trunk import split_network
        from ._train import trunk_spec

        trunk, top = split_network(tm.model, settings.model.trunk)
        spec = trunk_spec(settings, tm.model)
        tm.trunk.build(items, trunk, spec, views=["full"], log=None)
        data = CachedTiles(items, (), tm.trunk, spec, views=["full"], tiles_per_epoch=0, pooled=top.pointwise)
        return cached_outputs(top, data, settings.evaluate.aggregate, features=features, layers=layers)
    mean, std = tm.input_norm
    arrays = [np.load(p) for p in items["cache_path"]]
    return predict_arrays(tm.model, arrays, int(items["size"].iloc[0]), settings.preprocess.normalize, mean, std,
                          stride=settings.preprocess.tile_stride, aggregate=settings.evaluate.aggregate, features=features,
                          layers=layers)


def predict_micrographs(tm: TrainedModel, items: pd.DataFrame, classes: Sequence[str],
                        features: bool = False) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Whole-micrograph predictions of a trained model (tile grid, aggregated; see :mod:`semcathode.models.forward`).

    Parameters
    ----------
    tm : TrainedModel
    items : DataFrame
        As for :func:`micrograph_outputs`, plus ``label``.
    classes : sequence of str
    features : bool
        Also return the mean tile embeddings.

    Returns
    -------
    preds : DataFrame
        ``items``' columns plus ``p_<class>``, ``pred``, ``confidence``, ``correct``,
        ``n_tiles``, ``tile_agreement`` and ``tile_accuracy`` (share of tiles right on their own).
    features : ndarray or None
        ``(N, D)`` mean tile embeddings when ``features``.
    """
    out = items.reset_index(drop=True).copy()
    if out.empty:
        return out.assign(**{f"p_{c}": [] for c in classes}, pred=[], confidence=[], correct=[]), None
    mo = micrograph_outputs(tm, out, features)
    p = mo.probs()
    for j, c in enumerate(classes):
        out[f"p_{c}"] = p[:, j]
    out["pred"] = np.asarray(classes, dtype=object)[p.argmax(axis=1)]
    out["confidence"] = p.max(axis=1)
    out["correct"] = out["pred"] == out["label"]
    out["n_tiles"] = mo.n_tiles
    out["tile_agreement"] = mo.tile_agreement
    idx = {c: j for j, c in enumerate(classes)}
    out["tile_accuracy"] = [float((v == idx.get(lbl, -1)).mean()) for v, lbl in zip(mo.tile_preds, out["label"])]
    return out, mo.features


def evaluate_model(tm: TrainedModel, items: pd.DataFrame, classes: Sequence[str], **extra) -> tuple[pd.DataFrame, dict, dict]:
    """Per-micrograph predictions, metrics and a flat results row of a model on ``items``.

    Parameters
    ----------
    tm : TrainedModel
    items : DataFrame
    classes : sequence of str
    **extra
        Further columns of the results row (scalars also go into the predictions).

    Returns
    -------
    predictions : DataFrame
        :func:`predict_micrographs` plus ``arm`` and ``seed``.
    metrics : dict
        :func:`semcathode.metrics.classification_metrics` per micrograph.
    row : dict
        :func:`semcathode.metrics.classification.results_row` plus ``tile_accuracy`` (secondary, per tile).
    """
    img, _ = predict_micrographs(tm, items, classes)
    m = classification_metrics(img["label"], img["pred"], classes)
    img = img.assign(arm=tm.arm, seed=tm.seed, **{k: v for k, v in extra.items() if not isinstance(v, (list, dict))})
    row = results_row(tm.arm, tm.seed, m, classes, **extra)
    row["tile_accuracy"] = float(img["tile_accuracy"].mean()) if len(img) else float("nan")
    return img, m, row


def evaluate_models(models: dict, items: pd.DataFrame, classes: Sequence[str], **extra) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate ``{key: TrainedModel}`` on ``items``.

    Parameters
    ----------
    models : dict
    items : DataFrame
    classes : sequence of str
    **extra
        As for :func:`evaluate_model`.

    Returns
    -------
    results : DataFrame
        One row per model.
    predictions : DataFrame
        Image-level predictions of every model.
    """
    rows, preds = [], []
    for tm in models.values():
        img, _, row = evaluate_model(tm, items, classes, **extra)
        rows.append(row)
        preds.append(img)
    return pd.DataFrame(rows), pd.concat(preds, ignore_index=True)


def evaluate_splits(models: dict, study, splits: Sequence[str] = ("test", "tail"), domain: str = "source",
                    names: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate ``{key: TrainedModel}`` on several splits of one domain, side by side.

    Parameters
    ----------
    models : dict
    study : Study
        Gives ``rows(domain, split)`` and ``classes``.
    splits : sequence of str
        E.g. ``("test", "tail")``: the frame-block test split and the session tail.
    domain : str
    names : dict, optional
        Display name per split (default: ``frame-block test`` and ``session tail``).

    Returns
    -------
    results, predictions : DataFrame
        As :func:`evaluate_models`, with a ``split`` column.

    Examples
    --------
    >>> import tempfile
    >>> import semcathode as sc
    >>> _, study = sc.data.example_study(tempfile.mkdtemp())
    >>> s1 = sc.train_stage1(study, 0, log=None)  # doctest: +ELLIPSIS
    [stage 1 seed 0, ...
    >>> summary, predictions = sc.evaluate_splits({0: s1}, study)
    >>> summary["split"].tolist(), set(predictions["split"]) == {"frame-block test", "session tail"}
    (['frame-block test', 'session tail'], True)
    """
    names = {"test": "frame-block test", "tail": "session tail", "valid": "valid", **(names or {})}
    res, preds = [], []
    for sp in splits:
        items = study.rows(domain, sp)
        if items.empty:
            continue
        r, p = evaluate_models(models, items, study.classes, split=names.get(sp, sp))
        res.append(r)
        preds.append(p)
    return pd.concat(res, ignore_index=True), pd.concat(preds, ignore_index=True)
