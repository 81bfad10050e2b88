"""Notebook outputs, portable report folders, the report index, figures and all report prose."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # figures
    "plot_bars": "_figures",
    "plot_class_counts": "_figures",
    "plot_confusions": "_figures",
    "plot_curves": "_figures",
    "plot_domain_pair": "_figures",
    "plot_examples": "_figures",
    "plot_history": "_figures",
    "plot_measures": "_morphology",
    "plot_outlines": "_morphology",
    "measures_note": "_morphology",
    "measures_baseline_note": "_morphology",
    "cam_particle_note": "_morphology",
    # notes
    "budget_note": "_notes",
    "split_note": "_notes",
    "cam_note": "_notes",
    "curve_note": "_notes",
    "duplicate_note": "_notes",
    "probe_verdict": "_notes",
    "provenance_note": "_notes",
    "representation_note": "_notes",
    "target_domain_note": "_notes",
    "trust_note": "_notes",
    # index
    "write_index": "_index",
    # outputs
    "NotebookOutputs": "_outputs",
    # a run folder read by the names of its results
    "open_run": "_run",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
