"""Exporting what the study trained: a :class:`~semcathode.study.TrainedModel` written as a model file
(:func:`semcathode.models.export_model`) with its configuration's pre-processing, normalisation,
aggregation and provenance, so that ``predict`` and Grad-CAM run from pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..models.export import arm_model_file
from .train import TrainedModel

__all__ = ["export_trained", "export_models"]


def export_trained(tm: TrainedModel, path: str | Path, classes: Sequence[str],
                   metrics: dict | None = None, trust: dict | None = None) -> Path:
    """Export a :class:`~semcathode.study.TrainedModel` with the pre-processing of its settings.

    Parameters
    ----------
    tm : TrainedModel
        Its ``settings`` give the pre-processing, normalisation and aggregation.
    path : str or Path
    classes : sequence of str
    metrics : dict, optional
        Stored in the JSON (e.g. the test metrics).
    trust : dict, optional
        Calibration and familiarity from :func:`semcathode.study.trust.calibrate`.

    Returns
    -------
    Path
        The safetensors path (see :func:`semcathode.models.export_model`).
    """
    from ..data.factory import preprocess_params
    from ..models import export_model
    from ..models.backbones import BACKBONES

    settings = tm.settings
    winfo = dict(tm.weights_info)
    backbone = winfo.get("backbone", settings.model.backbone)
    timm_name = winfo.get("timm_name") or BACKBONES.get(backbone, backbone)
    mean, std = tm.input_norm
    return export_model(
        tm.model, path, classes, backbone, timm_name, preprocess_params(settings.preprocess), settings.preprocess.normalize, mean, std,
        weights_info=winfo, metrics=metrics, config_hash=settings.hash(), bar_method=settings.data.bar_method,
        bar_fraction=settings.data.bar_fraction,
        # where the frozen part ends (0: every layer trained); the file holds the whole network either way
        extra={"arm": tm.arm, "seed": tm.seed, "trunk": int(getattr(settings.model, "trunk", 0))},
        aggregate=settings.evaluate.aggregate, trust=trust,
    )


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
