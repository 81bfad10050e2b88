"""Typed run configuration: dataclasses loaded from YAML profiles, checked ranges, hashes."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # paths
    "cache_root": "_paths",
    # run
    "load_config": "_run",
    "save_config": "_run",
    # settings
    "study_settings": "_settings",
    # sections
    "config_hash": "_sections",
    "ConfigError": "_sections",
    "MorphologyConfig": "_sections",
    "PROFILES": "_sections",
    "RunConfig": "_sections",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
