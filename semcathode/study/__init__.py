"""The transfer-learning study: model store, stage training, arms, evaluation, curves, baselines, validity and trust.

Calling convention: a function of this list takes the :class:`~semcathode.data.Study` first
(``sc.train_stage1(study, seed)``, ``sc.run_arms(study, keep=...)``,
``sc.study.learning_curve(study, sizes, arms, seeds)``) and reads its settings from
``study.settings`` (a :class:`~semcathode.config.settings.StudySettings`); a trained model
(:class:`TrainedModel`) carries those settings on, so evaluating and exporting it take the
model first. The building blocks in the modules (``train_arm``, ``extract_features``, the
store's keys) take the rows they work on and the settings explicitly. No function here takes
a whole :class:`~semcathode.config.RunConfig`: the notebooks, the CLI and the pipeline hold it.
"""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # arms
    "ARMS": "arms",
    "run_arms": "arms",
    # curves
    "learning_curve": "curves",
    "new_domain_curve": "curves",
    "stack_histories": "curves",
    # export: what the study trained, as a model file
    "export_models": "export",
    "export_trained": "export",
    # evaluation
    "evaluate_splits": "evaluation",
    # store
    "ModelStore": "store",
    # train
    "train_stage1": "train",
    "TrainedModel": "train",
    # baselines
    "linear_probe_report": "baselines",
    "probe_floor": "baselines",
    # measures
    "baseline_comparison": "measures",
    "measure_summary": "measures",
    "measures_baseline": "measures",
    # trust
    "fit_trust": "trust",
    "scale_check": "trust",
    # validity
    "normalisation_ablation": "validity",
    "robustness_study": "validity",
    "session_check": "validity",
    "session_probe": "validity",
    "shortcut_study": "validity",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
