"""Typed run configuration: dataclasses loaded from YAML profiles, checked ranges, hashes."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # paths
    "cache_root": "paths",
    # run
    "CamConfig": "run",
    "config_hash": "run",
    "ConfigError": "run",
    "DataConfig": "run",
    "EvalConfig": "run",
    "load_config": "run",
    "ModelConfig": "run",
    "PreprocessConfig": "run",
    "PROFILES": "run",
    "ProtocolConfig": "run",
    "Range": "run",
    "RunConfig": "run",
    "save_config": "run",
    "StageConfig": "run",
    "TargetConfig": "run",
    "validate": "run",
    "ValidityConfig": "run",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
