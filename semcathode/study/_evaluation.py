"""Evaluating trained models: whole-micrograph predictions (tile grid, aggregated, through
:func:`semcathode.models._forward.predict_arrays`), per-micrograph metrics and results rows."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..metrics._classification import classification_metrics, results_row
from ..models._export import ExportedModel
from ..models._trunk import TrunkCache, TrunkSpec
from ._train import TrainedModel, trunk_cache

__all__ = ["micrograph_outputs", "cached_network_outputs", "predict_micrographs", "evaluate_model", "evaluate_models", "evaluate_splits",
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


def micrograph_outputs(model: ExportedModel | TrainedModel, items: pd.DataFrame, features: bool = False,
                       layers: Sequence[str] = (), trunk: TrunkCache | None = None):
    """:func:`semcathode.models._forward.predict_arrays` on cached micrographs with the model's own settings.

    Parameters
    ----------
    model : ExportedModel or TrainedModel
        The model object (a loaded model file, or :attr:`TrainedModel.model_object`, which also gives
        the trunk cache); its description gives the tile grid, normalisation and aggregation.
    items : DataFrame
        With ``cache_path`` (uint8 arrays at the model's scale) and ``size``.
    features : bool
        Also return the mean tile embeddings.
    layers : sequence of str
        Layers whose pooled output to average per micrograph (``layer_features``; see
        :func:`semcathode.models._forward.predict_arrays`).
    trunk : TrunkCache, optional
        Where the maps of a model with a frozen trunk (``meta["trunk"]`` > 0) are cached: they are
        read from there (computed once if missing) and only the top runs. Default: a
        ``TrainedModel``'s own cache; none for a model object, which then runs from pixels.

    Returns
    -------
    MicrographOutputs
    """
    if isinstance(model, TrainedModel):
        if model.settings is None:
            raise ValueError("the TrainedModel has no settings: cannot know its pre-processing")
        model, trunk = model.model_object, (model.trunk if trunk is None else trunk)
    spec = model.trunk_spec() if trunk is not None else None
    if spec is not None:  # the frozen trunk's maps come from the cache (built once)
        return cached_network_outputs(model.model, items, trunk, spec, model.meta.get("aggregate", "mean_log_prob"),
                                      features=features, layers=layers)
    return model.predict_arrays([np.load(p) for p in items["cache_path"]], features=features, layers=layers)


def cached_network_outputs(network: torch.nn.Module, items: pd.DataFrame, trunk: TrunkCache, spec: TrunkSpec,
                           aggregate: str, features: bool = False, layers: Sequence[str] = ()):
    """:func:`micrograph_outputs` of a network whose first ``spec.depth`` block stages are frozen: their
    maps of ``items`` are read from ``trunk`` (computed there first where missing), only the top runs.

    Parameters
    ----------
    network : nn.Module
        The whole network.
    items : DataFrame
    trunk : TrunkCache
    spec : TrunkSpec
        The key of the maps (:meth:`ExportedModel.trunk_spec`, :func:`~semcathode.study._train.trunk_spec`).
    aggregate : str
    features : bool
    layers : sequence of str

    Returns
    -------
    MicrographOutputs
    """
    from ..models._top import CachedTiles, cached_outputs
    from ..models._trunk import split_network

    frozen, top = split_network(network, spec.depth)
    trunk.build(items, frozen, spec, views=["full"], log=None)
    data = CachedTiles(items, (), trunk, spec, views=["full"], tiles_per_epoch=0, pooled=top.pointwise)
    return cached_outputs(top, data, aggregate, features=features, layers=layers)


def predict_micrographs(tm: ExportedModel | TrainedModel, items: pd.DataFrame, classes: Sequence[str],
                        features: bool = False, trunk: TrunkCache | None = None) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Whole-micrograph predictions of a trained model (tile grid, aggregated; see :mod:`semcathode.models._forward`).

    Parameters
    ----------
    tm : ExportedModel or TrainedModel
    items : DataFrame
        As for :func:`micrograph_outputs`, plus ``label``.
    classes : sequence of str
    features : bool
        Also return the mean tile embeddings.
    trunk : TrunkCache, optional
        As for :func:`micrograph_outputs`.

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
    mo = micrograph_outputs(tm, out, features, trunk=trunk)
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


def evaluate_model(tm: ExportedModel | TrainedModel, items: pd.DataFrame, classes: Sequence[str],
                   trunk: TrunkCache | None = None, **extra) -> tuple[pd.DataFrame, dict, dict]:
    """Per-micrograph predictions, metrics and a flat results row of a model on ``items``.

    Parameters
    ----------
    tm : ExportedModel or TrainedModel
        A model object names its arm and seed in ``meta`` (``"model"`` and 0 when it does not).
    items : DataFrame
    classes : sequence of str
    trunk : TrunkCache, optional
        As for :func:`micrograph_outputs`.
    **extra
        Further columns of the results row (scalars also go into the predictions).

    Returns
    -------
    predictions : DataFrame
        :func:`predict_micrographs` plus ``arm`` and ``seed``.
    metrics : dict
        :func:`semcathode.metrics.classification_metrics` per micrograph.
    row : dict
        :func:`semcathode.metrics._classification.results_row` plus ``tile_accuracy`` (secondary, per tile).
    """
    img, _ = predict_micrographs(tm, items, classes, trunk=trunk)
    m = classification_metrics(img["label"], img["pred"], classes)
    arm, seed = (tm.arm, tm.seed) if isinstance(tm, TrainedModel) else (tm.meta.get("arm", "model"), tm.meta.get("seed", 0))
    img = img.assign(arm=arm, seed=seed, **{k: v for k, v in extra.items() if not isinstance(v, (list, dict))})
    row = results_row(arm, seed, m, classes, **extra)
    row["tile_accuracy"] = float(img["tile_accuracy"].mean()) if len(img) else float("nan")
    return img, m, row


def evaluate_models(models: dict, items: pd.DataFrame, classes: Sequence[str], trunk: TrunkCache | None = None,
                    **extra) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate ``{key: model}`` (model objects or trained models) on ``items``.

    Parameters
    ----------
    models : dict
    items : DataFrame
    classes : sequence of str
    trunk : TrunkCache, optional
        As for :func:`micrograph_outputs`.
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
        img, _, row = evaluate_model(tm, items, classes, trunk=trunk, **extra)
        rows.append(row)
        preds.append(img)
    return pd.DataFrame(rows), pd.concat(preds, ignore_index=True)


def evaluate_splits(models: dict, study, splits: Sequence[str] = ("test", "tail"), domain: str = "source",
                    names: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate ``{key: model}`` (model objects or trained models) on several splits of one domain, side by side.

    Parameters
    ----------
    models : dict
        Trained models, or model objects (a loaded model file): with a frozen trunk these read the
        maps from the study's trunk cache, computing them once where it has none.
    study : Study
        Gives ``rows(domain, split)``, ``classes`` and the trunk cache.
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
    trunk = trunk_cache(study.settings) if study.settings.model.trunk else None
    res, preds = [], []
    for sp in splits:
        items = study.rows(domain, sp)
        if items.empty:
            continue
        r, p = evaluate_models(models, items, study.classes, trunk=trunk, split=names.get(sp, sp))
        res.append(r)
        preds.append(p)
    return pd.concat(res, ignore_index=True), pd.concat(preds, ignore_index=True)
