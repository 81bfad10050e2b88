"""Load, check and save a run configuration: YAML profiles, files and overrides.

Precedence: profile defaults <- YAML file <- command-line / notebook overrides.

:func:`load_config` checks every value against the rules declared beside its field in
:mod:`semcathode.config._sections` before any work starts and raises one :class:`ConfigError`
listing every unknown key, value of the wrong type and value out of range or choices, each with
what is allowed. The profile recorded in the configuration is the one whose values were used: a
file that says ``profile: paper`` is loaded on the paper profile, and contradicting it with
another explicit profile is an error.

Hostile YAML is refused before it costs anything (:mod:`semcathode.config._yaml`): a file larger
than ``$SEMCATHODE_MAX_CONFIG_BYTES`` (1 MiB), a document of more than
``$SEMCATHODE_MAX_CONFIG_NODES`` (100,000) nodes or nested deeper than
``$SEMCATHODE_MAX_CONFIG_DEPTH`` (64) levels, aliases counted where they are used (a "billion
laughs" file is refused in milliseconds), the same for ``--set`` values; every value quoted in
an error is shortened (:func:`~semcathode.config._limits.short_repr`).
"""

from __future__ import annotations

import dataclasses
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .._files import atomic_write_text
from ._yaml import YamlLimitError, bounded_load, max_config_bytes
from ._limits import short_repr
from ._sections import CHOICES, CUSTOM_PROFILE, FRACTION, PROFILES, ConfigError, RunConfig, config_hash

__all__ = [
    "load_config",
    "validate",
    "profile_dict",
    "save_config",
]


class _Bad(Exception):
    """A value that cannot be coerced to its field's type (collected, not raised to the user)."""


def _coerce(value: Any, tp: Any, key: str, problems: list[str]) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _Bad(f"config key '{key}' must be a mapping, got {short_repr(value)}")
        return _build(tp, value, key, problems)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if value is None:
            value = []
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise _Bad(f"config key '{key}' must be a list, got {short_repr(value)}")
        return [_coerce(v, item_tp, f"{key}[{i}]", problems) for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise _Bad(f"config key '{key}' must be true/false, got {short_repr(value)}")
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise _Bad(f"config key '{key}' must be an integer, got {short_repr(value)}")
        try:
            return int(value)
        except ValueError:
            raise _Bad(f"config key '{key}' must be an integer, got {short_repr(value)}") from None
    if tp is float:
        if isinstance(value, bool):
            raise _Bad(f"config key '{key}' must be a number, got {short_repr(value)}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _Bad(f"config key '{key}' must be a number, got {short_repr(value)}") from None
    if tp is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise _Bad(f"config key '{key}' must be a string, got {short_repr(value)}")
        return str(value)
    return value


def _key_text(key: Any, limit: int = 60) -> str:
    """A mapping key as written in messages (inside quotes): escaped, and shortened past ``limit`` characters."""
    if not isinstance(key, str):
        return short_repr(key, limit)
    text = repr(key[: limit + 1])[1:-1]
    if len(key) <= limit and len(text) <= limit:
        return text
    return f"{text[: limit - 3]}... ({len(key):,} characters)"


def _build(cls: type, values: dict, prefix: str = "", problems: list[str] | None = None) -> Any:
    """Build dataclass ``cls`` from a nested dict; bad keys and values go to ``problems`` (their
    defaults are kept) when given, else the first one raises :class:`ConfigError`."""
    collect = problems is not None
    problems = problems if problems is not None else []
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names, key=str)
    if unknown:
        dotted = [f"'{prefix + '.' if prefix else ''}{_key_text(k)}'" for k in unknown[:5]]
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        problems.append(f"unknown config key{'s' if len(unknown) > 1 else ''} {', '.join(dotted)}{more}"
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
            out.append(f"config key '{key}' has invalid value {short_repr(v)}; choose one of {', '.join(meta['choices'])}")
        if "range" in meta and v not in meta["range"]:
            out.append(f"config key '{key}' = {short_repr(v)} is out of range: must be {meta['range']}")
        if meta.get("nonempty") and not v:
            out.append(f"config key '{key}' must not be empty")
        if "items" in meta:
            out += _item_problems(key, v, meta["items"])
    return out


def _item_problems(key: str, values: list, allowed: Any) -> list[str]:
    """The first item of a list key outside its declared range (a :class:`Range`) or choices (a tuple)."""
    bad = [x for x in values if x not in allowed]
    if not bad:
        return []
    if isinstance(allowed, tuple):
        return [f"config key '{key}' holds {short_repr(bad[0])}, not a known name; every item must be one of "
                f"{', '.join(allowed)}"]
    return [f"config key '{key}' holds {short_repr(bad[0])}, out of range: every item must be {allowed}"]


def _cross_problems(cfg: "RunConfig") -> list[str]:
    """Constraints between keys."""
    out = []
    d = cfg.data
    if d.valid_frac in FRACTION and d.test_frac in FRACTION and d.valid_frac + d.test_frac >= 1:
        out.append(f"config keys 'data.valid_frac' + 'data.test_frac' = {d.valid_frac + d.test_frac:g} must be < 1 "
                   "(nothing would be left to train on)")
    m = cfg.model
    if m.head == "linear" and m.head_layer in CHOICES["head_layer"]:
        kept = int(m.head_layer.split(".")[1]) + 1
        if m.trunk != kept:
            out.append(f"config key 'model.trunk' = {m.trunk} must be {kept} with 'model.head' = linear at "
                       f"'model.head_layer' = {m.head_layer} (the linear head trains only the classifier: every "
                       f"kept block stage is the frozen, cached trunk)")
    return out


def validate(cfg: "RunConfig") -> None:
    """Check every value of a configuration against the ranges and choices declared in its fields.

    Use it on a :class:`RunConfig` built or changed in code (:func:`load_config` already does).

    Parameters
    ----------
    cfg : RunConfig
        The configuration to check.

    Returns
    -------
    None
        When every value is allowed.

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


def _first_line(exc: BaseException, limit: int = 120) -> str:
    """An exception's message, first line, at most ``limit`` characters."""
    text = (str(exc).splitlines() or [type(exc).__name__])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _override_value(item: str, text: str) -> Any:
    """The YAML value of one ``key=value`` override, within the size, node and depth limits."""
    limit = max_config_bytes()
    if limit and len(text.encode("utf-8", "surrogateescape")) > limit:
        raise ConfigError(f"override {short_repr(item)}: the value is {len(text):,} characters, more than the "
                          f"limit of {limit:,} bytes; raise it with $SEMCATHODE_MAX_CONFIG_BYTES if this is intended")
    try:
        return bounded_load(text)
    except YamlLimitError as exc:
        raise ConfigError(f"override {short_repr(item)}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {short_repr(item)}: the value {short_repr(text)} is not valid YAML "
                          f"({_yaml_problem(exc)}); quote it or fix the brackets") from None
    except (ValueError, OverflowError) as exc:
        raise ConfigError(f"override {short_repr(item)}: the value cannot be read ({_first_line(exc)}); "
                          "quote it to make it a string") from None


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
                raise ConfigError(f"override {short_repr(item)} must look like section.key=value")
            k, v = item.split("=", 1)
            items.append((k.strip(), _override_value(item, v)))
    for key, value in items:
        parts = str(key).split(".")
        if not all(parts):
            raise ConfigError(f"override key {short_repr(key)} must look like section.key (no empty parts)")
        node = nested
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override key '{_key_text(key)}' conflicts with another override")
        node[parts[-1]] = value
    return nested


def _read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a regular file")
    limit = max_config_bytes()
    try:
        with path.open("rb") as fh:  # never more than the limit (+1 byte to see it is over)
            raw = fh.read(limit + 1) if limit else fh.read()
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror or exc})") from None
    if limit and len(raw) > limit:
        raise ConfigError(f"config file {path} is larger than the limit of {limit:,} bytes for a configuration; "
                          "raise it with $SEMCATHODE_MAX_CONFIG_BYTES if this is intended")
    if b"\0" in raw:
        raise ConfigError(f"config file {path} is a binary file, not YAML text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 YAML") from None
    try:
        data = bounded_load(text)
    except YamlLimitError as exc:
        raise ConfigError(f"config file {path} is refused: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from None
    except (ValueError, OverflowError) as exc:
        raise ConfigError(f"config file {path} holds a value that cannot be read ({_first_line(exc)}); "
                          "quote it to make it a string") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level, got {type(data).__name__}")
    return data


def profile_dict(profile: str) -> dict:
    """The YAML mapping of a shipped profile.

    Parameters
    ----------
    profile : str
        One of :data:`PROFILES`.

    Returns
    -------
    dict
        The profile's nested keys and values, as written in ``semcathode/config/profiles``.

    Raises
    ------
    ConfigError
        ``profile`` is not a shipped profile.
    """
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {short_repr(profile)}; choose one of {', '.join(PROFILES)}")
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
            raise ConfigError(f"{where} names unknown profile {short_repr(p)}; choose one of "
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

    Examples
    --------
    >>> cfg = load_config("smoke", overrides=["stage1.epochs=2"])
    >>> cfg.profile, cfg.stage1.epochs
    ('smoke', 2)
    >>> load_config("smoke", overrides={"stage1.epochz": 2})
    Traceback (most recent call last):
    ...
    semcathode.config._sections.ConfigError: unknown config key 'stage1.epochz' in 'stage1'; valid keys: ...
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


def save_config(cfg: RunConfig, path: str | Path) -> Path:
    """Write the configuration (with its hash) as YAML, atomically.

    Parameters
    ----------
    cfg : RunConfig
        The configuration.
    path : str or Path
        The YAML file to write; :func:`load_config` reads it back to an equal configuration.

    Returns
    -------
    Path
        The file written.
    """
    d = cfg.to_dict()
    d["config_hash"] = config_hash(cfg)
    return atomic_write_text(path, yaml.safe_dump(d, sort_keys=False))
