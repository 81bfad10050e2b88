"""Per-micrograph classification metrics, bootstrap intervals, paired tests and tables."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # classification
    "aggregate_tiles": "classification",
    "bootstrap_ci": "classification",
    "chance_level": "classification",
    "classification_metrics": "classification",
    "image_bootstrap_ci": "classification",
    "METRICS": "classification",
    "metrics_from_preds": "classification",
    "paired_comparison": "classification",
    "paired_table": "classification",
    "paper_table": "classification",
    "results_row": "classification",
    "short_class_name": "classification",
    "summarize_runs": "classification",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
