"""Per-micrograph classification metrics, bootstrap intervals, paired tests and tables."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # classification
    "classification_metrics": "_classification",
    # intervals
    "bootstrap_ci": "_intervals",
    "image_bootstrap_ci": "_intervals",
    # tables
    "paired_table": "_tables",
    "paper_table": "_tables",
    "summarize_runs": "_tables",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
