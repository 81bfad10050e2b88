"""The prediction rows of micrographs: the one place a model's outputs become table rows (every predict path)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ._familiarity import multi_layer_score
from ._forward import MicrographOutputs
from ._scores import knn_ood_score


class RowModel(Protocol):
    """What a model gives the rows: its classes, temperature and familiarity settings (an
    :class:`~semcathode.models.ExportedModel`; ``bank`` / ``banks`` are read when present)."""

    classes: list[str]
    meta: dict

    @property
    def temperature(self) -> float: ...

__all__ = ["PREDICTION_COLUMNS", "familiarity_request", "micrograph_rows"]

#: The first columns of every predictions table (one ``p_<class>`` per class and ``error`` follow).
PREDICTION_COLUMNS = ("path", "pred", "confidence", "n_tiles", "tile_agreement", "ood_score", "familiar")


def micrograph_rows(model: RowModel, mo: MicrographOutputs) -> list[dict[str, Any]]:
    """The prediction rows (:data:`PREDICTION_COLUMNS`, ``p_<class>``, ``error``) of a batch of micrographs.

    Parameters
    ----------
    model : ExportedModel
    mo : MicrographOutputs
        From :meth:`ExportedModel.predict_arrays` (or ``predict_tiles``) with the model's
        familiarity features (``features`` / ``layers`` as :func:`familiarity_request` says).

    Returns
    -------
    list of dict
        One per micrograph, without ``path``.
    """
    bank, banks = getattr(model, "bank", None), getattr(model, "banks", None)
    ood = model.meta.get("ood", {})
    layers = list(ood.get("layers", [])) if banks else []
    probs = mo.probs(model.temperature)
    scores = None
    if banks and mo.layer_features is not None:
        scores = multi_layer_score(banks, mo.layer_features, layers, ood["scales"], int(ood.get("ood_k", 5)))
    elif bank is not None and mo.features is not None:
        scores = knn_ood_score(bank, mo.features, int(ood.get("ood_k", 5)))
    rows = []
    for k, p in enumerate(probs):
        row: dict[str, Any] = dict(pred=model.classes[int(p.argmax())], confidence=float(p.max()),
                                   n_tiles=int(mo.n_tiles[k]), tile_agreement=float(mo.tile_agreement[k]), error="")
        if scores is not None:
            row.update(ood_score=float(scores[k]),
                       familiar=bool(scores[k] <= float(ood.get("ood_threshold", np.inf))))
        row.update({f"p_{c}": float(v) for c, v in zip(model.classes, p)})
        rows.append(row)
    return rows


def familiarity_request(model: RowModel) -> dict[str, Any]:
    """The ``features`` / ``layers`` arguments a forward pass needs for the model's familiarity score."""
    banks = getattr(model, "banks", None)
    return {"features": getattr(model, "bank", None) is not None,
            "layers": list(model.meta.get("ood", {}).get("layers", [])) if banks else []}


