"""Exporting what the study trained: a :class:`~semcathode.study.TrainedModel` written as a model file
(:func:`semcathode.models.export_model`) with its configuration's pre-processing, normalisation,
aggregation and provenance, so that ``predict`` and Grad-CAM run from pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..config.sections import RunConfig
from ..models.export import arm_model_file
from .train import TrainedModel

__all__ = ["export_trained", "export_models"]


def export_trained(tm: TrainedModel, path: str | Path, cfg: RunConfig, classes: Sequence[str],
                   metrics: dict | None = None, trust: dict | None = None) -> Path:
    """Export a :class:`~semcathode.study.TrainedModel` with its configuration's pre-processing.

    Parameters
    ----------
    tm : TrainedModel
    path : str or Path
    cfg : RunConfig
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
    from ..config.sections import config_hash
    from ..data.factory import preprocess_params
    from ..models import export_model
    from ..models.backbones import BACKBONES

    winfo = dict(tm.weights_info)
    backbone = winfo.get("backbone", cfg.model.backbone)
    timm_name = winfo.get("timm_name") or BACKBONES.get(backbone, backbone)
    mean, std = tm.input_norm
    return export_model(
        tm.model, path, classes, backbone, timm_name, preprocess_params(cfg.preprocess), cfg.preprocess.normalize, mean, std,
        weights_info=winfo, metrics=metrics, config_hash=config_hash(cfg), bar_method=cfg.data.bar_method,
        bar_fraction=cfg.data.bar_fraction,
        # where the frozen part ends (0: every layer trained); the file holds the whole network either way
        extra={"arm": tm.arm, "seed": tm.seed, "trunk": int(getattr(cfg.model, "trunk", 0))},
        aggregate=cfg.evaluate.aggregate, trust=trust,
    )


def export_models(models: dict[tuple[str, int] | str, TrainedModel], out_dir: str | Path, cfg: RunConfig,
                  classes: Sequence[str], seed: int) -> dict[str, Path]:
    """Export the models of one seed as ``model_<arm>.safetensors``.

    Parameters
    ----------
    models : dict
        ``{(arm, seed): TrainedModel}`` (or ``{arm: TrainedModel}``).
    out_dir : str or Path
    cfg : RunConfig
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
            out[arm] = export_trained(tm, Path(out_dir) / arm_model_file(arm), cfg, classes)
    return out
