"""The notebooks as one pipeline: declaration, papermill run/resume and the command line."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # cli
    "main": "_cli",
    # notebooks
    "MANIFEST": "_notebooks",
    "PipelineError": "_notebooks",
    # roots
    "report_roots": "_roots",
    # run
    "run_pipeline": "_run",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
