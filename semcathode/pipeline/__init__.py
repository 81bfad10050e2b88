"""The notebooks as one pipeline: declaration, papermill run/resume and the command line."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # cli
    "build_parser": "cli",
    "CliError": "cli",
    "main": "cli",
    # run
    "missing_products": "run",
    "Notebook": "run",
    "notebook_dir": "run",
    "notebook_hashes": "run",
    "NOTEBOOK_NAMES": "run",
    "NOTEBOOK_SECTIONS": "run",
    "notebook_spec": "run",
    "NOTEBOOKS": "run",
    "package_versions": "run",
    "PipelineError": "run",
    "run_pipeline": "run",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
