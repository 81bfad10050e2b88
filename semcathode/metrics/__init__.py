"""Per-micrograph classification metrics, bootstrap intervals, paired tests and tables."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # classification
    "aggregate_tiles": "classification",
    "chance_level": "classification",
    "classification_metrics": "classification",
    "METRICS": "classification",
    "metrics_from_preds": "classification",
    "results_row": "classification",
    "short_class_name": "classification",
    # intervals
    "bootstrap_ci": "intervals",
    "image_bootstrap_ci": "intervals",
    "paired_comparison": "intervals",
    # tables
    "paired_table": "tables",
    "paper_table": "tables",
    "summarize_runs": "tables",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
