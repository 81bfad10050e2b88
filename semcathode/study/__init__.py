"""The transfer-learning study: model store, stage training, arms, evaluation, curves, baselines, validity and trust.

Calling convention: a function of this list takes the :class:`~semcathode.data.Study` first
(``sc.train_stage1(study, seed)``, ``sc.run_arms(study, keep=...)``,
``sc.study.learning_curve(study, sizes, arms, seeds)``) and reads its settings from
``study.settings`` (a :class:`~semcathode.config._settings.StudySettings`); a trained model
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
    "ARMS": "_arms",
    "run_arms": "_arms",
    # curves
    "learning_curve": "_curves",
    "new_domain_curve": "_curves",
    "stack_histories": "_curves",
    # export: what the study trained, as a model file
    "export_models": "_export",
    "export_trained": "_export",
    # evaluation
    "evaluate_splits": "_evaluation",
    # store
    "ModelStore": "_store",
    # train
    "train_stage1": "_train",
    "TrainedModel": "_train",
    # baselines
    "linear_probe_report": "_baselines",
    "probe_floor": "_baselines",
    # measures
    "baseline_comparison": "_measures",
    "measure_summary": "_measures",
    "measures_baseline": "_measures",
    # trust
    "fit_trust": "_trust",
    "scale_check": "_trust",
    # validity
    "normalisation_ablation": "_validity",
    "robustness_study": "_validity",
    "session_check": "_validity",
    "session_probe": "_validity",
    "shortcut_study": "_validity",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
