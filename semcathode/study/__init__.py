"""The transfer-learning study: arms, stage training, model store, baselines, curves, validity and trust."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # arms
    "Arm": "arms",
    "ARMS": "arms",
    "evaluate_model": "arms",
    "evaluate_models": "arms",
    "evaluate_splits": "arms",
    "fair_stage": "arms",
    "learning_curve": "arms",
    "micrograph_outputs": "arms",
    "ModelStore": "arms",
    "new_domain_curve": "arms",
    "predict_micrographs": "arms",
    "resolve_backbone": "arms",
    "run_arms": "arms",
    "split_rows": "arms",
    "stack_histories": "arms",
    "stage1_key": "arms",
    "train_arm": "arms",
    "train_stage1": "arms",
    "TrainedModel": "arms",
    # baselines
    "extract_features": "baselines",
    "linear_probe": "baselines",
    "linear_probe_report": "baselines",
    "probe_floor": "baselines",
    # trust
    "calibrate": "trust",
    "scale_check": "trust",
    "trust_report": "trust",
    # validity
    "normalisation_ablation": "validity",
    "robustness_items": "validity",
    "robustness_study": "validity",
    "session_check": "validity",
    "session_probe": "validity",
    "shortcut_baseline": "validity",
    "shortcut_features": "validity",
    "shortcut_study": "validity",
    "shortcut_verdict": "validity",
    "with_extra_shift": "validity",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
