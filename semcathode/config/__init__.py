"""Typed run configuration: dataclasses loaded from YAML profiles, checked ranges, hashes."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # paths
    "cache_root": "_paths",
    # run
    "load_config": "run",
    "save_config": "run",
    # settings
    "study_settings": "settings",
    # sections
    "config_hash": "sections",
    "ConfigError": "sections",
    "MorphologyConfig": "sections",
    "PROFILES": "sections",
    "RunConfig": "sections",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
