"""Typed run configuration: dataclasses loaded from YAML profiles, checked ranges, hashes."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # limits
    "env_limit": "limits",
    "short_repr": "limits",
    # paths
    "cache_root": "paths",
    # run
    "load_config": "run",
    "profile_dict": "run",
    "save_config": "run",
    "validate": "run",
    # sections
    "CamConfig": "sections",
    "CHOICES": "sections",
    "config_hash": "sections",
    "ConfigError": "sections",
    "DataConfig": "sections",
    "DistributedConfig": "sections",
    "EvalConfig": "sections",
    "MorphologyConfig": "sections",
    "ModelConfig": "sections",
    "PreprocessConfig": "sections",
    "PROFILES": "sections",
    "ProtocolConfig": "sections",
    "Range": "sections",
    "RunConfig": "sections",
    "StageConfig": "sections",
    "TargetConfig": "sections",
    "ValidityConfig": "sections",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
