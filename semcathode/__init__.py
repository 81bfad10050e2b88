"""semcathode: diagnose Li-ion battery NCM cathodes from SEM micrographs.

Composition (NCM333/622/811) x aging state (pristine, formation, 100 cycles) classification
with EfficientNet transfer learning from a data-rich to a data-poor domain, honest metrics,
and Grad-CAM maps.

The public API is re-exported here lazily (PEP 562): ``import semcathode`` is fast and loads
no torch, fastai, matplotlib or grad-cam; ``semcathode.NAME`` imports the submodule that
defines ``NAME`` on first use. To export a new name, add one line to :data:`_LAZY`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> submodule (relative to this package) that defines it.
_LAZY: dict[str, str] = {
    # config
    "ConfigError": "config",
    "RunConfig": "config",
    "config_hash": "config",
    "load_config": "config",
    "save_config": "config",
    # datasets
    "DatasetError": "datasets",
    "fetch": "datasets",
    "find_local_data": "datasets",
    "resolve_data_dir": "datasets",
    # io
    "BarCrop": "io",
    "SEMImage": "io",
    "SEMMetadata": "io",
    "SEMReadError": "io",
    "crop_data_bar": "io",
    "find_data_bar": "io",
    "read_metadata": "io",
    "read_sem": "io",
    # manifest
    "ManifestError": "manifest",
    "check_duplicates": "manifest",
    "find_duplicates": "manifest",
    "index_folder": "manifest",
    "read_manifest": "manifest",
    "write_manifest": "manifest",
    # preprocess
    "PreprocessCache": "preprocess",
    "PreprocessParams": "preprocess",
    "build_items": "preprocess",
    "crop_items": "preprocess",
    "grid_items": "preprocess",
    "tile_grid": "preprocess",
    # cam
    "CAM_METHODS": "cam",
    "cam_files": "cam",
    "cam_grid": "cam",
    "cam_quant_table": "cam",
    "compute_cams": "cam",
    "deletion_auc": "cam",
    "deletion_curve": "cam",
    "energy_on_mask": "cam",
    "explain_items": "cam",
    "find_target_layer": "cam",
    "overlay": "cam",
    "save_overlay": "cam",
    "structure_map": "cam",
    "write_gallery": "cam",
    # evaluate
    "aggregate_tiles": "evaluate",
    "bootstrap_ci": "evaluate",
    "chance_level": "evaluate",
    "classification_metrics": "evaluate",
    "image_bootstrap_ci": "evaluate",
    "paired_comparison": "evaluate",
    "paired_table": "evaluate",
    "paper_table": "evaluate",
    "summarize_runs": "evaluate",
    # explain
    "cam_note": "explain",
    "cam_sample": "explain",
    "cam_study": "explain",
    "explorer_for": "explain",
    "load_run_models": "explain",
    # explorer
    "Explorer": "explorer",
    "ExplorerState": "explorer",
    "explore": "explorer",
    # export
    "ExportedModel": "export",
    "ModelFileError": "export",
    "export_model": "export",
    "export_models": "export",
    "export_trained": "export",
    "load_model": "export",
    "predict_paths": "export",
    # figures
    "plot_bars": "figures",
    "plot_class_counts": "figures",
    "plot_confusion": "figures",
    "plot_confusions": "figures",
    "plot_curves": "figures",
    "plot_domain_pair": "figures",
    "plot_examples": "figures",
    "plot_history": "figures",
    # learner
    "efficientnet_splitter": "learner",
    "fit_stage": "learner",
    "make_learner": "learner",
    "predict_items": "learner",
    # baselines
    "extract_features": "baselines",
    "linear_probe": "baselines",
    "linear_probe_report": "baselines",
    "probe_floor": "baselines",
    "probe_verdict": "baselines",
    # notes
    "budget_note": "notes",
    "representation_note": "notes",
    # predict
    "predict_arrays": "predict",
    # trust
    "calibrate": "trust",
    "scale_check": "trust",
    "trust_note": "trust",
    "trust_report": "trust",
    # protocol
    "evaluate_splits": "protocol",
    "predict_micrographs": "protocol",
    "ARMS": "protocol",
    "ModelStore": "protocol",
    "curve_note": "protocol",
    "evaluate_model": "protocol",
    "evaluate_models": "protocol",
    "learning_curve": "protocol",
    "new_domain_curve": "protocol",
    "run_arms": "protocol",
    "stack_histories": "protocol",
    "train_arm": "protocol",
    "train_stage1": "protocol",
    # report
    "NotebookOutputs": "report",
    "provenance_note": "report",
    "read_table": "report",
    "write_index": "report",
    # schema
    "Schema": "schema",
    "default_schema": "schema",
    # splits
    "SIMULATED_SHIFT_NOTE": "splits",
    "assign_groups": "splits",
    "check_no_group_leak": "splits",
    "group_folds": "splits",
    "make_transfer_splits": "splits",
    "split_groups": "splits",
    "session_tail": "splits",
    "subset_per_class": "splits",
    # study
    "Study": "study",
    "build_manifest": "study",
    "load_study": "study",
    "cache_for": "study",
    "data_dir_for": "study",
    "prepare_splits": "study",
    "preprocess_params": "study",
    "schema_from_config": "study",
    "target_domain_note": "study",
    "write_attribution": "study",
    # summary
    "count_table": "summary",
    "data_summary": "summary",
    "duplicate_note": "summary",
    "duplicate_report": "summary",
    "pixel_size_table": "summary",
    "split_table": "summary",
    # validity
    "normalisation_ablation": "validity",
    "robustness_study": "validity",
    "session_check": "validity",
    "session_probe": "validity",
    "shortcut_baseline": "validity",
    "shortcut_study": "validity",
    "shortcut_verdict": "validity",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` and cache the attribute in this module."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
