"""Notebook outputs, portable report folders, the report index, figures and all report prose."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # figures
    "plot_bars": "figures",
    "plot_class_counts": "figures",
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
    "target_domain_note": "notes",
    "trust_note": "notes",
    # index
    "write_index": "index",
    # outputs
    "NotebookOutputs": "outputs",
    # a run folder read by the names of its results
    "open_run": "_run",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
