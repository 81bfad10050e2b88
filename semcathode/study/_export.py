"""What the study trained as the model object: :func:`~semcathode.study._train.model_object` describes a
:class:`~semcathode.study.TrainedModel` as an :class:`~semcathode.models.ExportedModel` (its
settings' pre-processing, normalisation, aggregation, trunk boundary and provenance), which
:func:`export_trained` writes as a model file, so that ``predict`` and Grad-CAM run from pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..models._export import arm_model_file
from ._train import TrainedModel, model_object

__all__ = ["export_trained", "export_models"]


def export_trained(tm: TrainedModel, path: str | Path, classes: Sequence[str] | None = None,
                   metrics: dict | None = None, trust: dict | None = None) -> Path:
    """Write a trained model's model object (:func:`~semcathode.study._train.model_object`) as a model file.

    Parameters
    ----------
    tm : TrainedModel
    path : str or Path
    classes : sequence of str, optional
        Default ``tm.classes``.
    metrics : dict, optional
        Stored in the JSON (e.g. the test metrics).
    trust : dict, optional
        Calibration and familiarity from :func:`semcathode.study._trust.calibrate`.

    Returns
    -------
    Path
        The safetensors path (see :meth:`semcathode.models.ExportedModel.save`).
    """
    return model_object(tm, classes, metrics, trust).save(path)


def export_models(models: dict[tuple[str, int] | str, TrainedModel], out_dir: str | Path,
                  classes: Sequence[str], seed: int) -> dict[str, Path]:
    """Export the models of one seed as ``model_<arm>.safetensors``.

    Parameters
    ----------
    models : dict
        ``{(arm, seed): TrainedModel}`` (or ``{arm: TrainedModel}``).
    out_dir : str or Path
    classes : sequence of str
    seed : int
        Only this seed's models are exported.

    Returns
    -------
    dict
        ``{arm: safetensors path}``.
    """
    out = {}
    for key, tm in models.items():
        arm, s = key if isinstance(key, tuple) else (key, tm.seed)
        if s == seed:
            out[arm] = export_trained(tm, Path(out_dir) / arm_model_file(arm), classes)
    return out
