"""Per-micrograph classification metrics, bootstrap intervals, paired tests and tables."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # classification
    "classification_metrics": "classification",
    # intervals
    "bootstrap_ci": "intervals",
    "image_bootstrap_ci": "intervals",
    # tables
    "paired_table": "tables",
    "paper_table": "tables",
    "summarize_runs": "tables",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
