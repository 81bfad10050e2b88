"""Typed run configuration: dataclasses loaded from YAML profiles, files and overrides.

Precedence: profile defaults <- YAML file <- command-line / notebook overrides.
Unknown keys and values of the wrong type raise :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ._files import atomic_write_text

__all__ = [
    "ConfigError",
    "DataConfig",
    "PreprocessConfig",
    "ModelConfig",
    "StageConfig",
    "TargetConfig",
    "ProtocolConfig",
    "EvalConfig",
    "CamConfig",
    "ValidityConfig",
    "RunConfig",
    "PROFILES",
    "load_config",
    "config_hash",
    "save_config",
]

PROFILES: tuple[str, ...] = ("smoke", "demo", "paper")


class ConfigError(ValueError):
    """A configuration key or value is invalid; the message names it."""


@dataclass
class DataConfig:
    """Where the micrographs are and how they are labelled and split."""

    dataset: str = "kaist-ncm"  # 'kaist-ncm' | 'synthetic' | 'folder'
    data_dir: str = ""  # '' = the dataset's default location
    labels_csv: str = ""  # optional CSV with path,label[,domain,session,sample_id]
    compositions: list[str] = field(default_factory=lambda: ["NCM333", "NCM622", "NCM811"])
    states: list[str] = field(default_factory=lambda: ["pristine", "formation", "cycled"])
    extra_compositions: list[str] = field(default_factory=lambda: ["NCM523"])
    skip_bad: bool = False
    min_size: int = 64
    bar_method: str = "auto"  # auto | metadata | detect | fraction | none
    bar_fraction: float = 0.0667
    block_size: int = 5  # consecutive frames of a session that form one split group
    tail_frac: float = 0.1  # share of each session's last frames (by frame number) held out as the session-tail test split (0 = off)
    merge_duplicates: bool = True  # duplicate / near-duplicate images always share a split group
    valid_frac: float = 0.15
    test_frac: float = 0.2
    split_seed: int = 0
    synthetic_per_class: int = 12
    synthetic_size: int = 160


@dataclass
class PreprocessConfig:
    """How a bar-free micrograph becomes a network input."""

    mode: str = "scale"  # scale (physical-scale crops) | resize (whole frame squeezed to size x size)
    size: int = 224  # network input side in px (scale: the crop; resize: the whole frame)
    scale_um: float = 0.5  # scale: µm per px every micrograph is resampled to (0 = keep native)
    crops_per_image: int = 2  # scale: random crops drawn per micrograph per training epoch
    tile_stride: float = 1.0  # scale: evaluation tile-grid stride as a fraction of size (grid always covers the frame)
    pixel_size_um: float = 0.0  # fallback µm/px for files without one (0 = such a file is an error)
    normalize: str = "dataset"  # dataset (ImageNet stats) | per_image (histogram standardisation)
    cache_dir: str = ""  # '' = ~/.cache/semcathode or $SEMCATHODE_CACHE


@dataclass
class ModelConfig:
    """Backbone and weights."""

    backbone: str = "efficientnet_lite0"
    weights: str = "auto"  # auto | hub | packaged | scratch
    channels_last: bool = True
    drop_rate: float = 0.2


@dataclass
class StageConfig:
    """One training stage."""

    epochs: int = 4
    freeze_epochs: int = 1
    lr: float = 2e-3
    lr_div: float = 10.0  # discriminative: lowest group gets lr / lr_div
    batch_size: int = 16
    schedule: str = "discriminative"  # discriminative | paper (Adam 1e-3, no freezing)
    weight_decay: float = 0.01
    min_steps: int = 0  # tiny train sets: train at least this many optimiser steps
    freeze_early_epochs: int = 0  # epochs of the unfrozen phase with the high-resolution early group still frozen
    validate: bool = True  # score the valid split after every epoch (off = faster)


@dataclass
class TargetConfig:
    """The data-poor target domain."""

    kind: str = "simulated_shift"  # simulated_shift | domain_column
    target_frac: float = 0.4  # share of each class's frame blocks held out for the target
    valid_frac: float = 0.0  # target valid share (stage 2 trains a fixed schedule: no valid needed)
    per_class_train: int = 20
    domain: str = "target"  # domain_column: which domain value is the target
    shift_strength: float = 1.0


@dataclass
class ProtocolConfig:
    """Arms, imbalance strategies and seeds of the transfer study."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    arms: list[str] = field(
        default_factory=lambda: [
            "pre_ft_oversample",
            "pre_ft_weighted",
            "ft_only",
            "pretrain_only",
            "scratch_ft",
        ]
    )
    stage1_imbalance: str = "oversample"  # none | oversample | weighted_loss (stage 1 on the source)
    oversample_target: int = 0  # 0 = size of the largest class
    sampler: str = "replicate"  # replicate | weighted
    class_weights: str = "median"  # median | inverse
    linear_probe: bool = True
    fair_budget: bool = True  # FT-only/Scratch+FT train at least as many steps as Pre+FT in both stages
    fair_max_epochs: int = 60  # cap on those epochs


@dataclass
class EvalConfig:
    """Metrics and statistics."""

    n_boot: int = 1000
    ci: float = 0.95
    aggregate: str = "mean_log_prob"  # per-micrograph aggregation of tiles: mean_log_prob | mean_prob
    ood_k: int = 5  # neighbours in feature space for the ood_score
    familiar_quantile: float = 0.95  # valid-split quantile of ood_score that sets the `familiar` threshold


@dataclass
class CamConfig:
    """Grad-CAM settings."""

    methods: list[str] = field(default_factory=lambda: ["gradcam", "gradcampp", "eigencam", "layercam"])
    method: str = "gradcam"
    per_class: int = 2
    arms: list[str] = field(default_factory=lambda: ["pre_ft_oversample", "ft_only"])
    opacity: float = 0.45
    batch_size: int = 8
    deletion_steps: int = 8


@dataclass
class ValidityConfig:
    """Shortcut, robustness and learning-curve studies."""

    shortcut: bool = True
    robustness_kinds: list[str] = field(
        default_factory=lambda: ["brightness", "contrast", "gamma", "noise", "blur", "magnification"]
    )
    robustness_severities: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])
    robustness_arms: list[str] = field(default_factory=lambda: ["pre_ft_oversample", "ft_only", "pretrain_only"])
    learning_curve_sizes: list[int] = field(default_factory=lambda: [1, 2, 5, 10, 20])
    learning_curve_arms: list[str] = field(default_factory=lambda: ["pre_ft_oversample", "ft_only", "scratch_ft"])
    learning_curve_seeds: list[int] = field(default_factory=lambda: [0, 1])
    ablation_seeds: list[int] = field(default_factory=lambda: [0, 1])  # normalisation ablation
    new_domain: bool = True
    new_domain_sizes: list[int] = field(default_factory=lambda: [2, 5, 10])


@dataclass
class RunConfig:
    """The whole run: every notebook receives this one configuration."""

    profile: str = "smoke"
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    stage1: StageConfig = field(default_factory=StageConfig)
    stage2: StageConfig = field(default_factory=StageConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    cam: CamConfig = field(default_factory=CamConfig)
    validity: ValidityConfig = field(default_factory=ValidityConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON serialisable)."""
        return dataclasses.asdict(self)

    def hash(self, *sections: str) -> str:
        """Short hash of the named sections (all when none are given)."""
        return config_hash(self, *sections)


# ---------------------------------------------------------------------------
_CHOICES: dict[str, tuple[str, ...]] = {
    "profile": PROFILES + ("custom",),
    "data.dataset": ("kaist-ncm", "synthetic", "folder"),
    "data.bar_method": ("auto", "metadata", "detect", "fraction", "none"),
    "preprocess.mode": ("scale", "resize"),
    "evaluate.aggregate": ("mean_log_prob", "mean_prob"),
    "preprocess.normalize": ("dataset", "per_image"),
    "model.weights": ("auto", "hub", "packaged", "scratch"),
    "stage1.schedule": ("discriminative", "paper"),
    "stage2.schedule": ("discriminative", "paper"),
    "target.kind": ("simulated_shift", "domain_column"),
    "protocol.sampler": ("replicate", "weighted"),
    "protocol.stage1_imbalance": ("none", "oversample", "weighted_loss"),
    "protocol.class_weights": ("median", "inverse"),
}


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}")
        return _build(tp, value, key)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"config key '{key}' must be true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}") from None
    if tp is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
        return str(value)
    return value


def _build(cls: type, values: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        where = f" in '{prefix}'" if prefix else ""
        raise ConfigError(
            f"unknown config key{'s' if len(unknown) > 1 else ''} "
            + ", ".join(f"'{prefix + '.' if prefix else ''}{k}'" for k in unknown)
            + f"{where}; valid keys: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(value, hints[name], key)
        if key in _CHOICES and kwargs[name] not in _CHOICES[key]:
            raise ConfigError(
                f"config key '{key}' has invalid value {value!r}; choose one of {', '.join(_CHOICES[key])}"
            )
    obj = cls(**kwargs)
    return obj


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _dotted_to_nested(overrides: dict[str, Any] | list[str] | None) -> dict:
    nested: dict = {}
    if not overrides:
        return nested
    items: list[tuple[str, Any]] = []
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like section.key=value")
            k, v = item.split("=", 1)
            items.append((k.strip(), yaml.safe_load(v)))
    for key, value in items:
        parts = key.split(".")
        node = nested
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override key '{key}' conflicts with another override")
        node[parts[-1]] = value
    return nested


def _read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def profile_dict(profile: str) -> dict:
    """The YAML mapping of a shipped profile."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    text = resources.files("semcathode").joinpath("profiles", f"{profile}.yaml").read_text()
    return yaml.safe_load(text) or {}


def load_config(
    profile: str = "smoke",
    path: str | Path | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
) -> RunConfig:
    """Load a :class:`RunConfig`.

    Parameters
    ----------
    profile : str
        ``smoke``, ``demo`` or ``paper``; its shipped YAML gives the defaults.
    path : str or Path, optional
        A YAML file whose keys override the profile (same nesting as :class:`RunConfig`).
        A file written by :func:`save_config` loads back to the same configuration.
    overrides : dict or list of str, optional
        Dotted keys, e.g. ``{"stage1.epochs": 2}`` or ``["stage1.epochs=2"]``.

    Returns
    -------
    RunConfig

    Raises
    ------
    ConfigError
        Unknown profile, unknown key, or a value of the wrong type or outside its choices.
    """
    merged: dict = profile_dict(profile)
    merged["profile"] = profile
    if path:
        file_values = _read_yaml(path)
        file_values.pop("config_hash", None)
        merged = _merge(merged, file_values)
    merged = _merge(merged, _dotted_to_nested(overrides))
    return _build(RunConfig, merged)


def config_hash(cfg: RunConfig, *sections: str) -> str:
    """Stable 12-hex-digit hash of the configuration (or of some sections).

    Parameters
    ----------
    cfg : RunConfig
    *sections : str
        Top-level section names (``"data"``, ``"stage1"``...). None = everything.
    """
    d = cfg.to_dict()
    if sections:
        missing = [s for s in sections if s not in d]
        if missing:
            raise ConfigError(f"unknown config section(s): {', '.join(missing)}")
        d = {s: d[s] for s in sections}
    blob = json.dumps(d, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def save_config(cfg: RunConfig, path: str | Path) -> Path:
    """Write the configuration (with its hash) as YAML, atomically."""
    d = cfg.to_dict()
    d["config_hash"] = config_hash(cfg)
    return atomic_write_text(path, yaml.safe_dump(d, sort_keys=False))
