"""Validation of an exported model's JSON description against its weights (no network).

:func:`validate_model_meta` runs after the safetensors file is read and before anything is
built from it. Every check names the file and the field:

* ``format``: :data:`FORMAT`;
* ``classes``: a non-empty list of unique, non-empty strings; when the JSON carries
  ``classes_digest`` (sha256 hex of ``"\\n".join(classes)``, UTF-8) it must match, so a
  reordered (e.g. reversed) class list is caught; ``num_classes`` (when present) equals
  its length;
* the classifier in the weights (``classifier.weight``/``.bias``, or ``head.fc``, ``fc``,
  ``head``): one row per class, bias of the same length; every floating tensor finite;
* ``timm_name``: one of the local architectures (:data:`semcathode.models.BACKBONES`);
  hub or file references (``hf-hub:...``, anything with ``:`` or ``/``) are refused, so
  loading never contacts the network; ``backbone`` (when present) is a registered name of
  that architecture;
* ``mean``/``std``: three finite numbers each, every ``std`` > 0;
* ``normalize`` (when present): ``dataset`` or ``per_image``;
* ``preprocess``: a mapping with ``mode`` in :data:`PREPROCESS_MODES`, an integer ``size`` in
  ``[16, 4096]``, and when present ``scale_um``/``tile_scale_um``/``pixel_size_um`` finite
  >= 0, ``tile_stride`` in ``(0, 1]``, ``crops_per_image`` an integer >= 1;
* ``bar`` (when present): ``method`` a data-bar method, ``fraction`` in ``[0, 1)``;
* ``temperature`` (when present): a finite number > 0.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = ["ModelFileError", "validate_model_meta", "classes_digest", "FORMAT", "PREPROCESS_MODES"]

FORMAT = "semcathode-model-v1"

#: Pre-processing modes a model file may name.
PREPROCESS_MODES: tuple[str, ...] = ("scale", "resize")
NORMALIZE_MODES: tuple[str, ...] = ("dataset", "per_image")
SIZE_RANGE: tuple[int, int] = (16, 4096)
_BAR_METHODS = ("auto", "metadata", "detect", "fraction", "none")
#: Classifier weight keys looked for, in order (timm EfficientNet: ``classifier``).
_HEAD_KEYS: tuple[str, ...] = ("classifier", "head.fc", "fc", "head")


class ModelFileError(ValueError):
    """An exported model is missing, corrupt, or its JSON does not match its weights."""


def classes_digest(classes: Sequence[str]) -> str:
    """sha256 hex of ``"\\n".join(classes)`` (UTF-8): what ``classes_digest`` in a model JSON holds."""
    return hashlib.sha256("\n".join(classes).encode("utf-8", "surrogatepass")).hexdigest()


def _known_architectures() -> dict[str, str]:
    from .backbones import BACKBONES

    return dict(BACKBONES)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v: Any) -> bool:
    return _is_number(v) and math.isfinite(float(v))


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in getattr(t, "shape", ()))


def _check_classes(meta: dict, fail) -> list[str]:
    classes = meta["classes"]
    if not isinstance(classes, list) or not classes:
        fail("classes", f"must be a non-empty list of class names, got {classes!r:.80}")
    bad = [c for c in classes if not isinstance(c, str) or not c.strip()]
    if bad:
        fail("classes", f"every class must be a non-empty string, got {bad[0]!r:.80}")
    dups = sorted({c for c in classes if classes.count(c) > 1})
    if dups:
        fail("classes", f"class names must be unique; repeated: {', '.join(dups)}")
    if "num_classes" in meta:
        n = meta["num_classes"]
        if not (isinstance(n, int) and not isinstance(n, bool)) or n != len(classes):
            fail("num_classes", f"is {n!r} but 'classes' lists {len(classes)}")
    if "classes_digest" in meta:
        digest = meta["classes_digest"]
        if not isinstance(digest, str) or digest.lower() != classes_digest(classes):
            fail("classes", "do not match 'classes_digest' (the list was edited or reordered after export; "
                 f"classes: {', '.join(classes)})")
    return classes


def _check_weights(state: Mapping[str, Any], n_classes: int, fail) -> None:
    if not state:
        fail("weights", "the safetensors file holds no tensors")
    for prefix in _HEAD_KEYS:
        wkey, bkey = f"{prefix}.weight", f"{prefix}.bias"
        if wkey in state and len(_shape(state[wkey])) == 2:
            rows = _shape(state[wkey])[0]
            if rows != n_classes:
                fail("classes", f"lists {n_classes} classes but the classifier weights ({wkey}, shape "
                     f"{list(_shape(state[wkey]))}) have {rows} outputs")
            if bkey in state and _shape(state[bkey]) != (n_classes,):
                fail("classes", f"lists {n_classes} classes but the classifier bias ({bkey}) has shape "
                     f"{list(_shape(state[bkey]))}")
            break
    else:
        fail("weights", f"no classifier found (looked for {', '.join(k + '.weight' for k in _HEAD_KEYS)})")
    for key, t in state.items():
        is_float = getattr(t, "is_floating_point", None)
        if callable(is_float) and is_float():
            import torch

            if not bool(torch.isfinite(t).all()):
                fail("weights", f"tensor {key!r} holds NaN or infinite values")


def _check_architecture(meta: dict, fail) -> None:
    name = meta["timm_name"]
    known = _known_architectures()
    if not isinstance(name, str) or not name:
        fail("timm_name", f"must be an architecture name, got {name!r:.80}")
    if ":" in name or "/" in name or "\\" in name:
        fail("timm_name", f"{name!r} refers to a hub or a file; only the local architectures "
             f"{', '.join(sorted(set(known.values())))} are loaded (no network access)")
    if name not in set(known.values()):
        fail("timm_name", f"unknown architecture {name!r}; known: {', '.join(sorted(set(known.values())))}")
    backbone = meta.get("backbone")
    if backbone is not None:
        if backbone not in known:
            fail("backbone", f"unknown backbone {backbone!r}; known: {', '.join(sorted(known))}")
        if known[backbone] != name:
            fail("backbone", f"{backbone!r} is architecture {known[backbone]!r}, but timm_name says {name!r}")


def _check_norm(meta: dict, fail) -> None:
    for key in ("mean", "std"):
        v = meta[key]
        if not isinstance(v, list) or len(v) != 3:
            fail(key, f"must be a list of 3 numbers (R, G, B), got {v!r:.80}")
        if not all(_finite(x) for x in v):
            fail(key, f"must hold finite numbers, got {v!r:.80}")
    if not all(float(x) > 0 for x in meta["std"]):
        fail("std", f"every value must be > 0 (inputs are divided by it), got {meta['std']!r}")
    if "normalize" in meta and meta["normalize"] not in NORMALIZE_MODES:
        fail("normalize", f"must be one of {', '.join(NORMALIZE_MODES)}, got {meta['normalize']!r:.80}")


def _check_preprocess(meta: dict, fail) -> None:
    pp = meta["preprocess"]
    if not isinstance(pp, dict):
        fail("preprocess", f"must be a mapping, got {pp!r:.80}")
    mode = pp.get("mode")
    if mode not in PREPROCESS_MODES:
        fail("preprocess.mode", f"must be one of {', '.join(PREPROCESS_MODES)}, got {mode!r:.80}")
    size = pp.get("size")
    lo, hi = SIZE_RANGE
    if not (isinstance(size, int) and not isinstance(size, bool)) or not lo <= size <= hi:
        fail("preprocess.size", f"must be an integer in [{lo}, {hi}] px, got {size!r:.80}")
    for key in ("scale_um", "tile_scale_um", "pixel_size_um"):
        if key in pp and not (_finite(pp[key]) and float(pp[key]) >= 0):
            fail(f"preprocess.{key}", f"must be a finite number >= 0 (µm/px), got {pp[key]!r:.80}")
    if "tile_stride" in pp and not (_finite(pp["tile_stride"]) and 0 < float(pp["tile_stride"]) <= 1):
        fail("preprocess.tile_stride", f"must be a number in (0, 1], got {pp['tile_stride']!r:.80}")
    if "crops_per_image" in pp:
        c = pp["crops_per_image"]
        if not (isinstance(c, int) and not isinstance(c, bool)) or c < 1:
            fail("preprocess.crops_per_image", f"must be an integer >= 1, got {c!r:.80}")
    try:  # the keys must also be what this version's PreprocessParams takes
        import dataclasses

        from ..data.preprocess import PreprocessParams

        known = {f.name for f in dataclasses.fields(PreprocessParams)}
    except Exception:  # noqa: BLE001 - preprocessing unavailable: the checks above stand
        return
    unknown = sorted(set(pp) - known)
    if unknown:
        fail("preprocess", f"unknown key(s) {', '.join(unknown)} (this version knows: {', '.join(sorted(known))})")


def _check_bar(meta: dict, fail) -> None:
    bar = meta.get("bar")
    if bar is None:
        return
    if not isinstance(bar, dict):
        fail("bar", f"must be a mapping, got {bar!r:.80}")
    if "method" in bar and bar["method"] not in _BAR_METHODS:
        fail("bar.method", f"must be one of {', '.join(_BAR_METHODS)}, got {bar['method']!r:.80}")
    if "fraction" in bar and not (_finite(bar["fraction"]) and 0 <= float(bar["fraction"]) < 1):
        fail("bar.fraction", f"must be a number in [0, 1), got {bar['fraction']!r:.80}")


def validate_model_meta(meta: dict, state: Mapping[str, object], json_path: Path) -> None:
    """Check a model's JSON description before anything is built from it.

    Parameters
    ----------
    meta : dict
        The parsed JSON.
    state : mapping of str to tensor
        The safetensors weights.
    json_path : Path
        Named in every error.

    Raises
    ------
    ModelFileError
        Naming the file and the offending field (the first problem found).
    """

    def fail(field: str, problem: str) -> None:
        raise ModelFileError(f"{json_path}: field '{field}' {problem}")

    if not isinstance(meta, dict):
        raise ModelFileError(f"{json_path}: must hold a JSON object")
    for key in ("format", "classes", "timm_name", "preprocess", "mean", "std"):
        if key not in meta:
            raise ModelFileError(f"{json_path}: missing key '{key}'")
    if meta["format"] != FORMAT:
        raise ModelFileError(f"{json_path}: unknown format {meta['format']!r:.80} (expected {FORMAT})")
    classes = _check_classes(meta, fail)
    _check_architecture(meta, fail)
    _check_norm(meta, fail)
    _check_preprocess(meta, fail)
    _check_bar(meta, fail)
    if "temperature" in meta and not (_finite(meta["temperature"]) and float(meta["temperature"]) > 0):
        fail("temperature", f"must be a finite number > 0, got {meta['temperature']!r:.80}")
    _check_weights(state, len(classes), fail)
