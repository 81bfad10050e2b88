"""From files to DataLoaders: schema, manifest, splits, simulated shift, synthetic data, fetch, pre-processing cache, loaders and the study factory."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # download
    "fetch": "_download",
    # factory
    "example_study": "_study",
    "build_manifest": "_factory",
    "load_study": "_study",
    "prepare_splits": "_factory",
    "schema_from_config": "_factory",
    "Study": "_study",
    "write_attribution": "_factory",
    # loaders
    "make_dataloaders": "_loaders",
    # manifest
    "index_folder": "_manifest",
    "ManifestError": "_manifest",
    "read_manifest": "_manifest",
    "write_manifest": "_manifest",
    # preprocess
    "build_items": "_preprocess",
    "PreprocessParams": "_preprocess",
    # splits
    "check_no_group_leak": "_splits",
    # summary
    "count_table": "_summary",
    "data_summary": "_summary",
    "duplicate_report": "_summary",
    "pixel_size_table": "_summary",
    "split_table": "_summary",
    # synthetic_micrograph
    "render_micrograph": "_synthetic_micrograph",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
