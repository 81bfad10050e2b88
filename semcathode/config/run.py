"""Typed run configuration: dataclasses loaded from YAML profiles, files and overrides.

Precedence: profile defaults <- YAML file <- command-line / notebook overrides.

Every field declares its allowed values in its dataclass metadata (``range``: a :class:`Range`;
``choices``; ``nonempty``; ``items``: the range of each list item), so the rules sit beside the
field they govern. :func:`load_config` checks them all before any work starts and raises one
:class:`ConfigError` listing every unknown key, value of the wrong type and value out of range
or choices, each with what is allowed. The profile recorded in the configuration is the one
whose values were used: a file that says ``profile: paper`` is loaded on the paper profile, and
contradicting it with another explicit profile is an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .._files import atomic_write_text

__all__ = [
    "ConfigError",
    "Range",
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
    "validate",
    "config_hash",
    "save_config",
]

PROFILES: tuple[str, ...] = ("smoke", "demo", "paper")

#: ``profile: custom`` in a file: the values are the dataclass defaults plus the file, no shipped profile.
CUSTOM_PROFILE = "custom"


class ConfigError(ValueError):
    """A configuration key or value is invalid; the message names it (all of them, on one line).

    Attributes
    ----------
    problems : list of str
        One entry per bad key.
    """

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            msg = self.problems[0]
        else:
            msg = f"{len(self.problems)} invalid config values: " + "; ".join(self.problems)
        super().__init__(msg)


@dataclass(frozen=True)
class Range:
    """Allowed interval of a numeric config value (always finite; ``None`` = unbounded)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        if self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi):
            return False
        return True

    def __str__(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {self.hi:g}"
        return "a finite number"


def _f(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, range: Range | None = None,
       choices: tuple[str, ...] | None = None, nonempty: bool = False, items: Range | None = None) -> Any:
    """A dataclass field whose allowed values are declared in its metadata (checked by :func:`validate`)."""
    meta: dict[str, Any] = {}
    if range is not None:
        meta["range"] = range
    if choices is not None:
        meta["choices"] = tuple(choices)
    if nonempty:
        meta["nonempty"] = True
    if items is not None:
        meta["items"] = items
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


GE0 = Range(0)
GE1 = Range(1)
POS = Range(0, lo_open=True)
FRACTION = Range(0, 1, hi_open=True)  # [0, 1)
UNIT = Range(0, 1)  # [0, 1]
#: Backbone names (the keys of :data:`semcathode.models.BACKBONES`; kept here so that a config
#: loads without importing torch; a test keeps the two in step).
BACKBONE_NAMES: tuple[str, ...] = ("efficientnet_b0", "efficientnet_lite0")


@dataclass
class DataConfig:
    """Where the micrographs are and how they are labelled and split."""

    dataset: str = _f("kaist-ncm", choices=("kaist-ncm", "synthetic", "folder"))
    data_dir: str = ""  # '' = the dataset's default location
    labels_csv: str = ""  # optional CSV with path,label[,domain,session,sample_id]
    compositions: list[str] = _f(factory=lambda: ["NCM333", "NCM622", "NCM811"], nonempty=True)
    states: list[str] = _f(factory=lambda: ["pristine", "formation", "cycled"], nonempty=True)
    extra_compositions: list[str] = field(default_factory=lambda: ["NCM523"])
    skip_bad: bool = False
    min_size: int = _f(64, range=Range(16, 100_000))
    bar_method: str = _f("auto", choices=("auto", "metadata", "detect", "fraction", "none"))
    bar_fraction: float = _f(0.0667, range=Range(0, 0.5, hi_open=True))
    block_size: int = _f(5, range=GE1)  # consecutive frames of a session that form one split group
    tail_frac: float = _f(0.1, range=FRACTION)  # share of each session's last frames (by frame number) held out as the session-tail test split (0 = off)
    merge_duplicates: bool = True  # duplicate / near-duplicate images always share a split group
    valid_frac: float = _f(0.15, range=FRACTION)  # valid_frac + test_frac < 1
    test_frac: float = _f(0.2, range=FRACTION)
    split_seed: int = _f(0, range=GE0)
    synthetic_per_class: int = _f(12, range=GE1)
    synthetic_size: int = _f(160, range=Range(64, 4096))


@dataclass
class PreprocessConfig:
    """How a bar-free micrograph becomes a network input."""

    mode: str = _f("scale", choices=("scale", "resize"))  # scale (physical-scale crops) | resize (whole frame squeezed to size x size)
    size: int = _f(224, range=Range(16, 4096))  # network input side in px (scale: the crop; resize: the whole frame)
    scale_um: float = _f(0.5, range=Range(0, 100))  # scale: µm per px every micrograph is resampled to (0 = keep native)
    crops_per_image: int = _f(2, range=GE1)  # scale: random crops drawn per micrograph per training epoch
    tile_stride: float = _f(1.0, range=Range(0, 1, lo_open=True))  # scale: evaluation tile-grid stride as a fraction of size (grid always covers the frame)
    pixel_size_um: float = _f(0.0, range=Range(0, 100))  # fallback µm/px for files without one (0 = such a file is an error)
    normalize: str = _f("dataset", choices=("dataset", "per_image"))  # dataset (ImageNet stats) | per_image (histogram standardisation)
    cache_dir: str = ""  # '' = ~/.cache/semcathode or $SEMCATHODE_CACHE


@dataclass
class ModelConfig:
    """Backbone and weights."""

    backbone: str = _f("efficientnet_lite0", choices=BACKBONE_NAMES)
    weights: str = _f("auto", choices=("auto", "hub", "packaged", "scratch"))
    channels_last: bool = True
    drop_rate: float = _f(0.2, range=FRACTION)


@dataclass
class StageConfig:
    """One training stage."""

    epochs: int = _f(4, range=GE0)
    freeze_epochs: int = _f(1, range=GE0)
    lr: float = _f(2e-3, range=Range(0, 10, lo_open=True))
    lr_div: float = _f(10.0, range=GE1)  # discriminative: lowest group gets lr / lr_div
    batch_size: int = _f(16, range=Range(1, 65_536))
    schedule: str = _f("discriminative", choices=("discriminative", "paper"))  # discriminative | paper (Adam 1e-3, no freezing)
    weight_decay: float = _f(0.01, range=GE0)
    min_steps: int = _f(0, range=GE0)  # tiny train sets: train at least this many optimiser steps
    freeze_early_epochs: int = _f(0, range=GE0)  # epochs of the unfrozen phase with the high-resolution early group still frozen
    validate: bool = True  # score the valid split after every epoch (off = faster)


@dataclass
class TargetConfig:
    """The data-poor target domain."""

    kind: str = _f("simulated_shift", choices=("simulated_shift", "domain_column"))
    target_frac: float = _f(0.4, range=Range(0, 1, lo_open=True, hi_open=True))  # share of each class's frame blocks held out for the target
    valid_frac: float = _f(0.0, range=FRACTION)  # target valid share (stage 2 trains a fixed schedule: no valid needed)
    per_class_train: int = _f(20, range=GE1)
    domain: str = "target"  # domain_column: which domain value is the target
    shift_strength: float = _f(1.0, range=GE0)


@dataclass
class ProtocolConfig:
    """Arms, imbalance strategies and seeds of the transfer study."""

    seeds: list[int] = _f(factory=lambda: [0, 1, 2], nonempty=True, items=GE0)
    arms: list[str] = _f(
        factory=lambda: [
            "pre_ft_oversample",
            "pre_ft_weighted",
            "ft_only",
            "pretrain_only",
            "scratch_ft",
        ],
        nonempty=True,
    )
    stage1_imbalance: str = _f("oversample", choices=("none", "oversample", "weighted_loss"))  # (stage 1 on the source)
    oversample_target: int = _f(0, range=GE0)  # 0 = size of the largest class
    sampler: str = _f("replicate", choices=("replicate", "weighted"))
    class_weights: str = _f("median", choices=("median", "inverse"))
    linear_probe: bool = True
    fair_budget: bool = True  # FT-only/Scratch+FT train at least as many steps as Pre+FT in both stages
    fair_max_epochs: int = _f(60, range=GE1)  # cap on those epochs


@dataclass
class EvalConfig:
    """Metrics and statistics."""

    n_boot: int = _f(1000, range=GE1)
    ci: float = _f(0.95, range=Range(0, 1, lo_open=True, hi_open=True))
    aggregate: str = _f("mean_log_prob", choices=("mean_log_prob", "mean_prob"))  # per-micrograph aggregation of tiles
    ood_k: int = _f(5, range=GE1)  # neighbours in feature space for the ood_score
    familiar_quantile: float = _f(0.95, range=Range(0, 1, lo_open=True))  # valid-split quantile of ood_score that sets the `familiar` threshold


@dataclass
class CamConfig:
    """Grad-CAM settings."""

    methods: list[str] = _f(factory=lambda: ["gradcam", "gradcampp", "eigencam", "layercam"], nonempty=True)
    method: str = "gradcam"
    per_class: int = _f(2, range=GE1)
    arms: list[str] = field(default_factory=lambda: ["pre_ft_oversample", "ft_only"])
    opacity: float = _f(0.45, range=UNIT)
    batch_size: int = _f(8, range=GE1)
    deletion_steps: int = _f(8, range=GE1)


@dataclass
class ValidityConfig:
    """Shortcut, robustness and learning-curve studies."""

    shortcut: bool = True
    robustness_kinds: list[str] = field(
        default_factory=lambda: ["brightness", "contrast", "gamma", "noise", "blur", "magnification"]
    )
    robustness_severities: list[float] = _f(factory=lambda: [0.0, 0.5, 1.0], items=GE0)
    robustness_arms: list[str] = field(default_factory=lambda: ["pre_ft_oversample", "ft_only", "pretrain_only"])
    learning_curve_sizes: list[int] = _f(factory=lambda: [1, 2, 5, 10, 20], items=GE1)
    learning_curve_arms: list[str] = field(default_factory=lambda: ["pre_ft_oversample", "ft_only", "scratch_ft"])
    learning_curve_seeds: list[int] = _f(factory=lambda: [0, 1], items=GE0)
    ablation_seeds: list[int] = _f(factory=lambda: [0, 1], items=GE0)  # normalisation ablation
    new_domain: bool = True
    new_domain_sizes: list[int] = _f(factory=lambda: [2, 5, 10], items=GE1)


@dataclass
class RunConfig:
    """The whole run: every notebook receives this one configuration."""

    profile: str = _f("smoke", choices=PROFILES + (CUSTOM_PROFILE,))
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
class _Bad(Exception):
    """A value that cannot be coerced to its field's type (collected, not raised to the user)."""


def _coerce(value: Any, tp: Any, key: str, problems: list[str]) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _Bad(f"config key '{key}' must be a mapping, got {value!r}")
        return _build(tp, value, key, problems)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if value is None:
            value = []
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise _Bad(f"config key '{key}' must be a list, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]", problems) for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise _Bad(f"config key '{key}' must be true/false, got {value!r}")
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise _Bad(f"config key '{key}' must be an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise _Bad(f"config key '{key}' must be an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise _Bad(f"config key '{key}' must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _Bad(f"config key '{key}' must be a number, got {value!r}") from None
    if tp is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise _Bad(f"config key '{key}' must be a string, got {value!r}")
        return str(value)
    return value


def _build(cls: type, values: dict, prefix: str = "", problems: list[str] | None = None) -> Any:
    """Build dataclass ``cls`` from a nested dict; bad keys and values go to ``problems`` (their
    defaults are kept) when given, else the first one raises :class:`ConfigError`."""
    collect = problems is not None
    problems = problems if problems is not None else []
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names, key=str)
    for k in unknown:
        problems.append(f"unknown config key '{prefix + '.' if prefix else ''}{k}'"
                        f"{f' in {prefix!r}' if prefix else ''}; valid keys: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in values.items():
        if name not in names:
            continue
        key = f"{prefix}.{name}" if prefix else name
        try:
            kwargs[name] = _coerce(value, hints[name], key, problems)
        except _Bad as exc:
            problems.append(str(exc))
    if problems and not collect:
        raise ConfigError(problems)
    return cls(**kwargs)


def _value_problems(obj: Any, prefix: str = "") -> list[str]:
    """Every value of ``obj`` (a config dataclass) outside its declared range or choices."""
    out: list[str] = []
    for f in dataclasses.fields(obj):
        key = f"{prefix}.{f.name}" if prefix else f.name
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            out += _value_problems(v, key)
            continue
        meta = f.metadata
        if "choices" in meta and v not in meta["choices"]:
            out.append(f"config key '{key}' has invalid value {v!r}; choose one of {', '.join(meta['choices'])}")
        if "range" in meta and v not in meta["range"]:
            out.append(f"config key '{key}' = {v!r} is out of range: must be {meta['range']}")
        if meta.get("nonempty") and not v:
            out.append(f"config key '{key}' must not be empty")
        if "items" in meta:
            bad = [x for x in v if x not in meta["items"]]
            if bad:
                out.append(f"config key '{key}' holds {bad[0]!r}, out of range: every item must be {meta['items']}")
    return out


def _cross_problems(cfg: "RunConfig") -> list[str]:
    """Constraints between keys."""
    out = []
    d = cfg.data
    if d.valid_frac in FRACTION and d.test_frac in FRACTION and d.valid_frac + d.test_frac >= 1:
        out.append(f"config keys 'data.valid_frac' + 'data.test_frac' = {d.valid_frac + d.test_frac:g} must be < 1 "
                   "(nothing would be left to train on)")
    return out


def validate(cfg: "RunConfig") -> None:
    """Check every value of a configuration against the ranges and choices declared in its fields.

    Use it on a :class:`RunConfig` built or changed in code (:func:`load_config` already does).

    Raises
    ------
    ConfigError
        Listing every bad key with its allowed range or choices.
    """
    problems = _value_problems(cfg) + _cross_problems(cfg)
    if problems:
        raise ConfigError(problems)


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: what and where."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem}{where}"


def _dotted_to_nested(overrides: dict[str, Any] | list[str] | None) -> dict:
    nested: dict = {}
    if not overrides:
        return nested
    items: list[tuple[str, Any]] = []
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        if isinstance(overrides, str):
            overrides = [overrides]
        for item in overrides:
            if not isinstance(item, str) or "=" not in item:
                raise ConfigError(f"override {item!r} must look like section.key=value")
            k, v = item.split("=", 1)
            try:
                value = yaml.safe_load(v)
            except yaml.YAMLError as exc:
                raise ConfigError(f"override {item!r}: the value {v!r} is not valid YAML "
                                  f"({_yaml_problem(exc)}); quote it or fix the brackets") from None
            items.append((k.strip(), value))
    for key, value in items:
        parts = str(key).split(".")
        if not all(parts):
            raise ConfigError(f"override key {key!r} must look like section.key (no empty parts)")
        node = nested
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override key '{key}' conflicts with another override")
        node[parts[-1]] = value
    return nested


def _read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a regular file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror or exc})") from None
    if b"\0" in raw:
        raise ConfigError(f"config file {path} is a binary file, not YAML text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 YAML") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level, got {type(data).__name__}")
    return data


def profile_dict(profile: str) -> dict:
    """The YAML mapping of a shipped profile."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    text = resources.files("semcathode.config").joinpath("profiles", f"{profile}.yaml").read_text()
    return yaml.safe_load(text) or {}


def _resolve_profile(requested: str | None, sources: list[tuple[str, Any]], default: str) -> str:
    """The one profile named by the caller, a config file and/or ``profile=`` overrides.

    They must agree: a file that says ``profile: paper`` run with ``--profile demo`` is an
    error rather than paper recorded over demo values (or the reverse).
    """
    named = [(where, p) for where, p in sources if p not in (None, "")]
    for where, p in named:
        if not isinstance(p, str) or p not in PROFILES + (CUSTOM_PROFILE,):
            raise ConfigError(f"{where} names unknown profile {p!r}; choose one of "
                              f"{', '.join(PROFILES + (CUSTOM_PROFILE,))}")
    if requested is not None:
        named.insert(0, ("the requested profile", requested))
    chosen = {p for _, p in named}
    if len(chosen) > 1:
        raise ConfigError("conflicting profiles: " + ", ".join(f"{where} says {p!r}" for where, p in named)
                          + "; give one profile (or remove 'profile:' from the file)")
    return named[0][1] if named else default


def load_config(
    profile: str | None = None,
    path: str | Path | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    default_profile: str = "smoke",
) -> RunConfig:
    """Load a :class:`RunConfig` and check every value against its declared range.

    Parameters
    ----------
    profile : str, optional
        ``smoke``, ``demo`` or ``paper``; its shipped YAML gives the defaults. ``None``: the
        profile the file (or a ``profile=`` override) names, else ``default_profile``.
    path : str or Path, optional
        A YAML file whose keys override the profile (same nesting as :class:`RunConfig`).
        A file written by :func:`save_config` loads back to the same configuration. A file
        that says ``profile: X`` is loaded on profile ``X``'s values; ``profile: custom``
        means the dataclass defaults plus the file.
    overrides : dict or list of str, optional
        Dotted keys, e.g. ``{"stage1.epochs": 2}`` or ``["stage1.epochs=2"]``.
    default_profile : str
        The profile when nobody names one.

    Returns
    -------
    RunConfig
        Its ``profile`` is the profile whose values were used.

    Raises
    ------
    ConfigError
        Unknown profile or profiles that contradict each other (the argument vs the file or
        an override); an unreadable, binary or non-YAML file; an override that is not
        ``key=value`` YAML; and -- all listed in one error -- every unknown key, value of the
        wrong type, value outside its range or choices.
    """
    file_values = _read_yaml(path) if path else {}
    file_values.pop("config_hash", None)
    nested = _dotted_to_nested(overrides)
    chosen = _resolve_profile(
        profile, [(f"config file {path}", file_values.get("profile")), ("an override", nested.get("profile"))],
        default_profile,
    )
    merged: dict = {} if chosen == CUSTOM_PROFILE else profile_dict(chosen)
    merged = _merge(_merge(merged, file_values), nested)
    merged["profile"] = chosen
    problems: list[str] = []
    cfg = _build(RunConfig, merged, "", problems)
    problems += [p for p in _value_problems(cfg) + _cross_problems(cfg) if p not in problems]
    if problems:
        raise ConfigError(problems)
    return cfg


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
