"""The notebooks as one pipeline: declaration, papermill run/resume and the command line."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # cli
    "build_parser": "cli",
    "CliError": "cli",
    "main": "cli",
    # notebooks
    "ARM_MODELS": "notebooks",
    "MANIFEST": "notebooks",
    "Notebook": "notebooks",
    "notebook_dir": "notebooks",
    "notebook_hashes": "notebooks",
    "NOTEBOOK_NAMES": "notebooks",
    "NOTEBOOK_SECTIONS": "notebooks",
    "notebook_spec": "notebooks",
    "NOTEBOOKS": "notebooks",
    "PipelineError": "notebooks",
    # resume
    "missing_products": "resume",
    "plan_resume": "resume",
    # run
    "package_versions": "run",
    "run_pipeline": "run",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
