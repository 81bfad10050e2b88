"""Notebook outputs, portable report folders, the report index, figures and all report prose."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # figures
    "plot_bars": "figures",
    "plot_class_counts": "figures",
    "plot_confusion": "figures",
    "plot_confusions": "figures",
    "plot_curves": "figures",
    "plot_domain_pair": "figures",
    "plot_examples": "figures",
    "plot_history": "figures",
    "plot_measures": "morphology",
    "plot_outlines": "morphology",
    "measures_note": "morphology",
    "measures_baseline_note": "morphology",
    "cam_particle_note": "morphology",
    # notes
    "budget_note": "notes",
    "split_note": "notes",
    "cam_note": "notes",
    "curve_note": "notes",
    "duplicate_note": "notes",
    "probe_verdict": "notes",
    "provenance_note": "notes",
    "representation_note": "notes",
    "training_note": "notes",
    "target_domain_note": "notes",
    "trust_note": "notes",
    # index
    "read_run_state": "index",
    "RUN_STATE": "index",
    "write_index": "index",
    # outputs
    "df_to_markdown": "outputs",
    "NotebookOutputs": "outputs",
    "OUTPUTS_FILE": "outputs",
    "read_outputs": "outputs",
    "read_table": "outputs",
    "show_png": "outputs",
    # a run folder read by the names of its results
    "Run": "_run",
    "open_run": "_run",
    # portable
    "absolute_paths": "portable",
    "machine_relativizer": "portable",
    "make_portable": "portable",
    "PathRelativizer": "portable",
    "REPORT_TEXT_SUFFIXES": "portable",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
