"""From files to DataLoaders: schema, manifest, splits, simulated shift, synthetic data, fetch, pre-processing cache, loaders and the study factory."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # download
    "attribution": "download",
    "build_registry": "download",
    "DatasetError": "download",
    "DatasetInfo": "download",
    "DATASETS": "download",
    "fetch": "download",
    "find_local_data": "download",
    "registry": "download",
    "resolve_data_dir": "download",
    "verify": "download",
    # duplicates
    "check_duplicates": "duplicates",
    "DuplicateWarning": "duplicates",
    "find_duplicates": "duplicates",
    # factory
    "example_study": "factory",
    "build_manifest": "factory",
    "cache_for": "factory",
    "data_dir_for": "factory",
    "load_study": "factory",
    "prepare_splits": "factory",
    "preprocess_params": "factory",
    "schema_from_config": "factory",
    "Study": "factory",
    "write_attribution": "factory",
    # inputs
    "crop_items": "inputs",
    "grid_items": "inputs",
    # loaders
    "class_counts": "loaders",
    "class_weights": "loaders",
    "crop_array": "loaders",
    "load_item": "loaders",
    "make_dataloaders": "loaders",
    "make_test_dl": "loaders",
    "oversample": "loaders",
    "PerImageStandardize": "loaders",
    "sample_weights": "loaders",
    # manifest
    "index_folder": "manifest",
    "ManifestError": "manifest",
    "read_manifest": "manifest",
    "skipped_path": "manifest",
    "write_manifest": "manifest",
    # preprocess
    "build_items": "preprocess",
    "cut_tiles": "tiles",
    "load_bar_free": "preprocess",
    "preprocess_image": "preprocess",
    "PreprocessCache": "preprocess",
    "PreprocessParams": "preprocess",
    "resize": "preprocess",
    "resample_to_scale": "preprocess",
    "standardise": "preprocess",
    "tile_grid": "tiles",
    "grid_size": "tiles",
    "to_uint8": "preprocess",
    # schema
    "DEFAULT_COMPOSITIONS": "schema",
    "default_schema": "schema",
    "DEFAULT_STATES": "schema",
    "Schema": "schema",
    "STATE_ALIASES": "schema",
    # shift
    "AcquisitionShift": "shift",
    "random_shift": "shift",
    "severity_grid": "shift",
    "shift_at_severity": "shift",
    "SHIFT_KINDS": "shift",
    "simulated_instrument_shift": "shift",
    # splits
    "assign_groups": "splits",
    "check_no_group_leak": "splits",
    "group_folds": "splits",
    "make_transfer_splits": "splits",
    "merge_duplicate_groups": "splits",
    "session_tail": "splits",
    "session_position": "splits",
    "SIMULATED_SHIFT_NOTE": "splits",
    "split_groups": "splits",
    "subset_per_class": "splits",
    # summary
    "count_table": "summary",
    "data_summary": "summary",
    "duplicate_report": "summary",
    "pixel_size_table": "summary",
    "split_table": "summary",
    # synthetic
    "make_blob_dataset": "synthetic",
    "write_synthetic_dataset": "synthetic",
    # synthetic_micrograph
    "default_bar_height": "synthetic_micrograph",
    "make_micrograph": "synthetic_micrograph",
    "render_micrograph": "synthetic_micrograph",
    "SYNTHETIC_COMPOSITIONS": "synthetic_micrograph",
    "SYNTHETIC_STATES": "synthetic_micrograph",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
