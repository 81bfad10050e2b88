"""semcathode: diagnose Li-ion battery NCM cathodes from SEM micrographs.

Composition (NCM333/622/811) x aging state (pristine, formation, 100 cycles) classification
with EfficientNet transfer learning from a data-rich to a data-poor domain, honest metrics,
and Grad-CAM maps. The public API is re-exported here explicitly.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import ConfigError, RunConfig, config_hash, load_config, save_config
from .datasets import DatasetError, fetch, find_local_data, resolve_data_dir
from .io import BarCrop, SEMImage, SEMMetadata, SEMReadError, crop_data_bar, find_data_bar, read_metadata, read_sem
from .manifest import ManifestError, check_duplicates, find_duplicates, index_folder, read_manifest, write_manifest
from .preprocess import PreprocessCache, PreprocessParams, build_items
from .cam import (
    CAM_METHODS,
    cam_files,
    cam_grid,
    cam_quant_table,
    compute_cams,
    deletion_auc,
    deletion_curve,
    energy_on_mask,
    explain_items,
    find_target_layer,
    overlay,
    save_overlay,
    structure_map,
    write_gallery,
)
from .evaluate import (
    aggregate_tiles,
    bootstrap_ci,
    chance_level,
    classification_metrics,
    image_bootstrap_ci,
    paired_comparison,
    paired_table,
    paper_table,
    summarize_runs,
)
from .explain import cam_note, cam_sample, cam_study, explorer_for, load_run_models
from .explorer import Explorer, ExplorerState, explore
from .export import ExportedModel, ModelFileError, export_model, export_models, export_trained, load_model, predict_paths
from .figures import (
    plot_bars,
    plot_class_counts,
    plot_confusion,
    plot_confusions,
    plot_curves,
    plot_domain_pair,
    plot_examples,
    plot_history,
)
from .learner import efficientnet_splitter, fit_stage, make_learner, predict_items
from .protocol import (
    ARMS,
    ModelStore,
    curve_note,
    evaluate_model,
    evaluate_models,
    learning_curve,
    linear_probe,
    linear_probe_report,
    new_domain_curve,
    probe_verdict,
    run_arms,
    stack_histories,
    train_arm,
    train_stage1,
)
from .report import NotebookOutputs, provenance_note, read_table, write_index
from .schema import Schema, default_schema
from .splits import (
    SIMULATED_SHIFT_NOTE,
    assign_groups,
    check_no_group_leak,
    group_folds,
    make_transfer_splits,
    split_groups,
    subset_per_class,
)
from .study import (
    Study,
    build_manifest,
    load_study,
    cache_for,
    data_dir_for,
    prepare_splits,
    preprocess_params,
    schema_from_config,
    target_domain_note,
    write_attribution,
)
from .summary import count_table, data_summary, duplicate_note, duplicate_report, pixel_size_table, split_table
from .validity import (
    normalisation_ablation,
    robustness_study,
    session_check,
    session_probe,
    shortcut_baseline,
    shortcut_study,
    shortcut_verdict,
)

__all__ = [
    "__version__",
    "ConfigError", "RunConfig", "config_hash", "load_config", "save_config",
    "DatasetError", "fetch", "find_local_data", "resolve_data_dir",
    "BarCrop", "SEMImage", "SEMMetadata", "SEMReadError", "crop_data_bar", "find_data_bar", "read_metadata", "read_sem",
    "ManifestError", "check_duplicates", "find_duplicates", "index_folder", "read_manifest", "write_manifest",
    "PreprocessCache", "PreprocessParams", "build_items",
    "Schema", "default_schema",
    "SIMULATED_SHIFT_NOTE", "assign_groups", "check_no_group_leak", "group_folds", "make_transfer_splits",
    "split_groups", "subset_per_class",
    "plot_bars", "plot_class_counts", "plot_confusion", "plot_curves", "plot_examples",
    "NotebookOutputs", "write_index",
    "build_manifest", "cache_for", "data_dir_for", "prepare_splits", "preprocess_params", "schema_from_config",
    "target_domain_note", "write_attribution",
    "count_table", "data_summary", "duplicate_note", "duplicate_report", "pixel_size_table", "split_table",
    "aggregate_tiles", "bootstrap_ci", "chance_level", "classification_metrics", "image_bootstrap_ci",
    "paired_comparison", "paired_table", "paper_table", "summarize_runs",
    "ExportedModel", "ModelFileError", "export_model", "export_trained", "load_model", "predict_paths",
    "plot_confusions", "plot_domain_pair", "plot_history",
    "efficientnet_splitter", "fit_stage", "make_learner", "predict_items",
    "ARMS", "ModelStore", "evaluate_model", "evaluate_models", "learning_curve", "linear_probe",
    "linear_probe_report", "new_domain_curve", "probe_verdict", "run_arms", "stack_histories", "train_arm",
    "train_stage1", "Study", "load_study",
    "normalisation_ablation", "robustness_study", "session_check", "shortcut_baseline", "shortcut_study",
    "CAM_METHODS", "cam_files", "cam_grid", "cam_quant_table", "compute_cams", "deletion_auc", "deletion_curve",
    "energy_on_mask", "explain_items", "find_target_layer", "overlay", "save_overlay", "structure_map",
    "write_gallery", "cam_note", "cam_sample", "cam_study", "explorer_for", "load_run_models",
    "Explorer", "ExplorerState", "explore",
    "shortcut_verdict", "session_probe", "export_models", "provenance_note", "read_table", "curve_note",
]
