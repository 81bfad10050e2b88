"""The notebooks as one pipeline: declaration, papermill run/resume and the command line."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # cli
    "main": "cli",
    # notebooks
    "MANIFEST": "notebooks",
    "PipelineError": "notebooks",
    # roots
    "report_roots": "roots",
    # run
    "run_pipeline": "run",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
