"""semcathode: diagnose Li-ion battery NCM cathodes from SEM micrographs.

Composition (NCM333/622/811) x aging state (pristine, formation, 100 cycles) classification
with EfficientNet transfer learning from a data-rich to a data-poor domain, honest metrics,
and Grad-CAM maps.

The package is laid out along the data flow, one subpackage per step::

    config -> io -> data -> morphology -> models -> metrics -> study -> explain -> report -> pipeline

Each subpackage has its own ``__all__``; a module imports only from subpackages to its left.
The root re-exports a small curated API lazily (PEP 562): ``import semcathode`` loads no
torch, fastai, matplotlib or grad-cam; a name's submodule is imported on first use.

Examples
--------
>>> import semcathode as sc
>>> cfg = sc.load_config("smoke")
>>> cfg.profile
'smoke'
>>> sc.data.schema_from_config(cfg.data).classes[:2]
['NCM333_pristine', 'NCM333_formation']
"""

from __future__ import annotations

from ._lazy import attach

__version__ = "0.1.0"

#: The subpackages, in the order of the data flow.
SUBPACKAGES: tuple[str, ...] = ("config", "io", "data", "morphology", "models", "metrics", "study", "explain", "report", "pipeline")

#: Public name -> module (relative to this package) that defines it.
_NAMES: dict[str, str] = {
    "RunConfig": "config",
    "load_config": "config",
    "read_sem": "io",
    "fetch": "data",
    "index_folder": "data",
    "Study": "data",
    "load_study": "data",
    "train_stage1": "study",
    "run_arms": "study",
    "evaluate_splits": "study",
    "load_model": "models",
    "predict": "models",
    "cam_files": "explain",
    "explore": "explain",
    "run_pipeline": "pipeline",
    "open_run": "report",
}

__all__ = ["__version__", *_NAMES]
__getattr__, __dir__ = attach(__name__, _NAMES, SUBPACKAGES)
