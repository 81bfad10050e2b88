"""The transfer-learning study: model store, stage training, arms, evaluation, curves, baselines, validity and trust."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # arms
    "Arm": "arms",
    "ARMS": "arms",
    "fair_stage": "arms",
    "run_arms": "arms",
    "train_arm": "arms",
    # curves
    "learning_curve": "curves",
    "new_domain_curve": "curves",
    "stack_histories": "curves",
    # export: what the study trained, as a model file
    "export_models": "export",
    "export_trained": "export",
    # evaluation
    "evaluate_model": "evaluation",
    "evaluate_models": "evaluation",
    "evaluate_splits": "evaluation",
    "micrograph_outputs": "evaluation",
    "predict_micrographs": "evaluation",
    "split_rows": "evaluation",
    # store
    "arm_key": "store",
    "MODEL_FIELDS": "store",
    "model_fields": "store",
    "model_store": "store",
    "ModelStore": "store",
    "stage1_key": "store",
    # train
    "input_norm": "train",
    "resolve_backbone": "train",
    "train_stage1": "train",
    "TrainedModel": "train",
    "warm_trunk_cache": "train",
    # baselines
    "extract_features": "baselines",
    "linear_probe": "baselines",
    "linear_probe_report": "baselines",
    "probe_floor": "baselines",
    # measures
    "BASELINE_MEASURES": "measures",
    "SUMMARY_MEASURES": "measures",
    "baseline_comparison": "measures",
    "measure_summary": "measures",
    "measures_baseline": "measures",
    # trust
    "calibrate": "trust",
    "fit_trust": "trust",
    "ood_scores": "trust",
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
