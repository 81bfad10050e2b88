"""Notebook outputs, the report index, figures and all report prose."""

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
    # notes
    "budget_note": "notes",
    "cam_note": "notes",
    "curve_note": "notes",
    "duplicate_note": "notes",
    "probe_verdict": "notes",
    "provenance_note": "notes",
    "representation_note": "notes",
    "target_domain_note": "notes",
    "trust_note": "notes",
    # outputs
    "absolute_paths": "outputs",
    "df_to_markdown": "outputs",
    "make_portable": "outputs",
    "NotebookOutputs": "outputs",
    "PathRelativizer": "outputs",
    "read_outputs": "outputs",
    "read_table": "outputs",
    "write_index": "outputs",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
