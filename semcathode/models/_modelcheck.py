"""Validation of an exported model's JSON description and the tensors it declares (no network).

:func:`validate_model_meta` is the one validator of a model file: :func:`~semcathode.models.load_model`
runs it after the safetensors file is read and before anything is built from it, and it covers
every field the loader and the predictor read, so a bad file is refused at load time (before
any micrograph is touched) rather than failing every micrograph later. Every check names the
file and the field:

* ``format``: :data:`FORMAT`;
* ``classes``: a list of 2 to :data:`MAX_CLASSES` unique (checked in linear time), non-empty
  strings; when the JSON carries ``classes_digest`` (sha256 hex of ``"\\n".join(classes)``,
  UTF-8) it must match, so a reordered (e.g. reversed) class list is caught; ``num_classes``
  (when present) equals its length;
* the classifier in the weights (``classifier.weight``/``.bias``, or ``head.fc``, ``fc``,
  ``head``): one row per class, bias of the same length; every floating tensor finite;
* ``timm_name``: one of the local architectures (:data:`semcathode.models._backbones.BACKBONES`);
  hub or file references (``hf-hub:...``, anything with ``:`` or ``/``) are refused, so
  loading never contacts the network; ``backbone`` (when present) is a registered name of
  that architecture;
* ``head`` (when present): the block stage a linear head reads (:func:`~semcathode.models._head.linear_head`);
* ``mean``/``std``: three finite numbers each, every ``std`` >= :data:`MIN_STD` (> 0);
* ``normalize`` (when present): ``dataset`` or ``per_image``;
* ``preprocess``: a mapping with ``mode`` in :data:`PREPROCESS_MODES`, an integer ``size`` in
  :data:`SIZE_RANGE` and at most :data:`MAX_INPUT_SIZE` px, and when present ``scale_um``
  0 (native) or a pixel size in :data:`~semcathode.io._metadata.PIXEL_SIZE_RANGE_UM`, ``tile_stride`` in
  :data:`STRIDE_RANGE` (a fraction of the tile side), ``crops_per_image`` an integer >= 1;
* ``bar`` (when present): ``method`` a data-bar method, ``fraction`` in ``[0, 1)``;
* ``temperature`` (when present): a finite number in :data:`TEMPERATURE_RANGE`;
* ``aggregate`` (when present): a tile aggregation (``mean_log_prob``, ``mean_prob``);
* ``trunk`` (when present): the frozen block stages, an integer in ``[0, MAX_TRUNK]``; ``trunk_dtype``
  (when present): the precision its cached maps were computed in, one of :data:`TRUNK_DTYPES`;
* ``ood`` (when present): a mapping of ``ood_k`` (an integer >= 1, at most the bank's rows),
  ``ood_threshold`` (finite >= 0) and ``ood_quantile`` (in ``(0, 1]``); the feature bank
  ``ood.bank`` in the weights (when present): a finite float16/float32 ``(n, d)`` tensor with
  ``n >= 1`` and ``d`` the classifier's input features.

The resource limits (:data:`MAX_INPUT_SIZE`, :data:`MAX_CLASSES`) are raised with
``$SEMCATHODE_MAX_INPUT_SIZE`` and ``$SEMCATHODE_MAX_CLASSES`` (0 = no limit).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..config._limits import env_limit, short_repr
from ..config._sections import CHOICES

__all__ = ["ModelFileError", "validate_model_meta", "classes_digest", "FORMAT", "PREPROCESS_MODES",
           "MAX_INPUT_SIZE", "MAX_CLASSES"]

FORMAT = "semcathode-model-v1"

#: Pre-processing modes a model file may name.
PREPROCESS_MODES: tuple[str, ...] = CHOICES["preprocess_mode"]
NORMALIZE_MODES: tuple[str, ...] = CHOICES["normalize"]
AGGREGATIONS: tuple[str, ...] = CHOICES["aggregate"]
#: Precisions a trunk cache is computed in (``trunk_dtype``: what ``model.trunk_dtype`` resolved to).
TRUNK_DTYPES: tuple[str, ...] = ("float32", "bfloat16")
#: Frozen block stages at most (``trunk``; the stem and blocks 0-6 of an EfficientNet).
MAX_TRUNK = 7
_BAR_METHODS: tuple[str, ...] = CHOICES["bar_method"]
#: The format's range of ``preprocess.size`` (px); :data:`MAX_INPUT_SIZE` bounds what is loaded.
SIZE_RANGE: tuple[int, int] = (16, 4096)
#: Largest network input side loaded (px; one 4096-px tile takes gigabytes); ``$SEMCATHODE_MAX_INPUT_SIZE``.
MAX_INPUT_SIZE = 1024
#: ``preprocess.tile_stride`` (fraction of the tile side): >= 0.25 keeps the grid within 16x the tiles.
STRIDE_RANGE: tuple[float, float] = (0.25, 1.0)
#: Most classes a model file may list; ``$SEMCATHODE_MAX_CLASSES``.
MAX_CLASSES = 1000
MIN_STD = 1e-4
TEMPERATURE_RANGE: tuple[float, float] = (0.01, 100.0)
#: safetensors key of the training micrographs' embeddings and the dtypes it may have.
OOD_BANK = "ood.bank"
BANK_DTYPES: tuple[str, ...] = ("float16", "float32")
OOD_KEYS: tuple[str, ...] = ("ood_k", "ood_threshold", "ood_quantile", "layers", "scales")
#: Prefix of the per-layer feature banks of a multi-layer familiarity score (``ood.bank.blocks.4``, ...).
OOD_BANKS = "ood.bank."
#: Classifier weight keys looked for, in order (timm EfficientNet: ``classifier``).
_HEAD_KEYS: tuple[str, ...] = ("classifier", "head.fc", "fc", "head")

Fail = Callable[[str, str], None]


class ModelFileError(ValueError):
    """An exported model is missing, corrupt, or its JSON does not match its weights."""


def classes_digest(classes: Sequence[str]) -> str:
    """sha256 hex of ``"\\n".join(classes)`` (UTF-8): what ``classes_digest`` in a model JSON holds."""
    return hashlib.sha256("\n".join(classes).encode("utf-8", "surrogatepass")).hexdigest()


def _known_architectures() -> dict[str, str]:
    from ._backbones import BACKBONES

    return dict(BACKBONES)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v: Any) -> bool:
    return _is_number(v) and math.isfinite(float(v))


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in getattr(t, "shape", ()))


def _repeated(items: list[str], show: int = 5) -> list[str]:
    """The first ``show`` items that occur more than once, in one linear pass."""
    seen: set[str] = set()
    dups: dict[str, None] = {}
    for c in items:
        if c in seen:
            dups[c] = None
            if len(dups) >= show:
                break
        seen.add(c)
    return list(dups)


def _check_classes(meta: dict, fail: Fail) -> list[str]:
    classes = meta["classes"]
    if not isinstance(classes, list) or not classes:
        fail("classes", f"must be a non-empty list of class names, got {short_repr(classes)}")
    limit = int(env_limit("SEMCATHODE_MAX_CLASSES", MAX_CLASSES))
    if len(classes) < 2:
        fail("classes", f"lists {len(classes)} class; a classifier needs at least 2, got {short_repr(classes)}")
    if limit and len(classes) > limit:
        fail("classes", f"lists {len(classes):,} classes, more than the limit of {limit:,}; raise it with "
             "$SEMCATHODE_MAX_CLASSES if this is intended")
    bad = next((c for c in classes if not isinstance(c, str) or not c.strip()), None)
    if bad is not None:
        fail("classes", f"every class must be a non-empty string, got {short_repr(bad)}")
    dups = _repeated(classes)
    if dups:
        fail("classes", f"class names must be unique; repeated: {', '.join(short_repr(d, 40) for d in dups)}")
    if "num_classes" in meta:
        n = meta["num_classes"]
        if not _is_int(n) or n != len(classes):
            fail("num_classes", f"is {short_repr(n)} but 'classes' lists {len(classes)}")
    if "classes_digest" in meta:
        digest = meta["classes_digest"]
        if not isinstance(digest, str) or digest.lower() != classes_digest(classes):
            fail("classes", "do not match 'classes_digest' (the list was edited or reordered after export; "
                 f"classes: {short_repr(', '.join(classes), 200)[1:-1]})")
    return classes


def _head(state: Mapping[str, Any]) -> str | None:
    """Prefix of the classifier's 2-D weight in ``state`` (None when there is none)."""
    return next((p for p in _HEAD_KEYS if f"{p}.weight" in state and len(_shape(state[f"{p}.weight"])) == 2), None)


def _check_weights(state: Mapping[str, Any], n_classes: int, fail: Fail) -> None:
    if not state:
        fail("weights", "the safetensors file holds no tensors")
    prefix = _head(state)
    if prefix is None:
        fail("weights", f"no classifier found (looked for {', '.join(k + '.weight' for k in _HEAD_KEYS)})")
    wkey, bkey = f"{prefix}.weight", f"{prefix}.bias"
    rows = _shape(state[wkey])[0]
    if rows != n_classes:
        fail("classes", f"lists {n_classes} classes but the classifier weights ({wkey}, shape "
             f"{list(_shape(state[wkey]))}) have {rows} outputs")
    if bkey in state and _shape(state[bkey]) != (n_classes,):
        fail("classes", f"lists {n_classes} classes but the classifier bias ({bkey}) has shape "
             f"{list(_shape(state[bkey]))}")
    for key, t in state.items():
        is_float = getattr(t, "is_floating_point", None)
        if callable(is_float) and is_float():
            import torch

            if not bool(torch.isfinite(t).all()):
                fail("weights", f"tensor {key!r} holds NaN or infinite values")


def _check_architecture(meta: dict, fail: Fail) -> None:
    name = meta["timm_name"]
    known = _known_architectures()
    if not isinstance(name, str) or not name:
        fail("timm_name", f"must be an architecture name, got {short_repr(name)}")
    if ":" in name or "/" in name or "\\" in name:
        fail("timm_name", f"{short_repr(name)} refers to a hub or a file; only the local architectures "
             f"{', '.join(sorted(set(known.values())))} are loaded (no network access)")
    if name not in set(known.values()):
        fail("timm_name", f"unknown architecture {short_repr(name)}; known: {', '.join(sorted(set(known.values())))}")
    backbone = meta.get("backbone")
    if backbone is not None:
        if not isinstance(backbone, str) or backbone not in known:
            fail("backbone", f"unknown backbone {short_repr(backbone)}; known: {', '.join(sorted(known))}")
        if known[backbone] != name:
            fail("backbone", f"{backbone!r} is architecture {known[backbone]!r}, but timm_name says {name!r}")


def _check_head(meta: dict, fail: Fail) -> None:
    head = meta.get("head")
    known = CHOICES["head_layer"]
    if head is not None and (not isinstance(head, str) or head not in known):
        fail("head", f"must be the block stage a linear head reads ({', '.join(known)}), got {short_repr(head)}")


def _check_norm(meta: dict, fail: Fail) -> None:
    for key in ("mean", "std"):
        v = meta[key]
        if not isinstance(v, list) or len(v) != 3:
            fail(key, f"must be a list of 3 numbers (R, G, B), got {short_repr(v)}")
        if not all(_finite(x) for x in v):
            fail(key, f"must hold finite numbers, got {short_repr(v)}")
    if not all(float(x) >= MIN_STD for x in meta["std"]):
        fail("std", f"every value must be > 0 (at least {MIN_STD:g}: inputs are divided by it), got {meta['std']!r}")
    if "normalize" in meta and meta["normalize"] not in NORMALIZE_MODES:
        fail("normalize", f"must be one of {', '.join(NORMALIZE_MODES)}, got {short_repr(meta['normalize'])}")


def _check_size(pp: dict, fail: Fail) -> None:
    size = pp.get("size")
    lo, hi = SIZE_RANGE
    if not _is_int(size) or not lo <= size <= hi:
        fail("preprocess.size", f"must be an integer in [{lo}, {hi}] px, got {short_repr(size)}")
    limit = int(env_limit("SEMCATHODE_MAX_INPUT_SIZE", MAX_INPUT_SIZE))
    if limit and size > limit:
        fail("preprocess.size", f"is {size} px, more than the limit of {limit} px per network input (a tile of "
             f"{size}x{size} px takes gigabytes in the network); raise it with $SEMCATHODE_MAX_INPUT_SIZE if this "
             "is intended")


def _check_scale(pp: dict, fail: Fail) -> None:
    from ..io._metadata import PIXEL_SIZE_RANGE_UM

    lo, hi = PIXEL_SIZE_RANGE_UM
    for key in ("scale_um", "tile_scale_um", "pixel_size_um"):
        if key not in pp:
            continue
        v = pp[key]
        if not (_finite(v) and float(v) >= 0) or (key == "scale_um" and v and not lo <= float(v) <= hi):
            fail(f"preprocess.{key}", f"must be a finite number >= 0 (µm/px): 0 keeps the native pixel size, else a "
                 f"pixel size in the plausible SEM range {lo:g}..{hi:g} µm/px; got {short_repr(v)}")


def _check_preprocess(meta: dict, fail: Fail) -> None:
    pp = meta["preprocess"]
    if not isinstance(pp, dict):
        fail("preprocess", f"must be a mapping, got {short_repr(pp)}")
    mode = pp.get("mode")
    if mode not in PREPROCESS_MODES:
        fail("preprocess.mode", f"must be one of {', '.join(PREPROCESS_MODES)}, got {short_repr(mode)}")
    _check_size(pp, fail)
    _check_scale(pp, fail)
    if "tile_stride" in pp:
        s, (lo, hi) = pp["tile_stride"], STRIDE_RANGE
        if not (_finite(s) and 0 < float(s) <= hi):
            fail("preprocess.tile_stride", f"must be a number in (0, 1] (a fraction of the tile side), got {short_repr(s)}")
        if float(s) < lo:
            fail("preprocess.tile_stride", f"is {s:g}: must be at least {lo:g} of the tile side (smaller strides "
                 f"multiply the tiles of every micrograph by {1 / float(s) ** 2:,.0f}); allowed: [{lo:g}, {hi:g}]")
    if "crops_per_image" in pp:
        c = pp["crops_per_image"]
        if not _is_int(c) or c < 1:
            fail("preprocess.crops_per_image", f"must be an integer >= 1, got {short_repr(c)}")
    try:  # the keys must also be what this version's PreprocessParams takes
        import dataclasses

        from ..data._preprocess import PreprocessParams

        known = {f.name for f in dataclasses.fields(PreprocessParams)}
    except Exception:  # noqa: BLE001 - preprocessing unavailable: the checks above stand
        return
    unknown = sorted(map(str, set(pp) - known))
    if unknown:
        fail("preprocess", f"unknown key(s) {short_repr(', '.join(unknown))[1:-1]} (this version knows: "
             f"{', '.join(sorted(known))})")


def _check_bar(meta: dict, fail: Fail) -> None:
    bar = meta.get("bar")
    if bar is None:
        return
    if not isinstance(bar, dict):
        fail("bar", f"must be a mapping, got {short_repr(bar)}")
    if "method" in bar and bar["method"] not in _BAR_METHODS:
        fail("bar.method", f"must be one of {', '.join(_BAR_METHODS)}, got {short_repr(bar['method'])}")
    if "fraction" in bar and not (_finite(bar["fraction"]) and 0 <= float(bar["fraction"]) < 1):
        fail("bar.fraction", f"must be a number in [0, 1), got {short_repr(bar['fraction'])}")


def _check_scalars(meta: dict, fail: Fail) -> None:
    """``temperature``, ``aggregate``, ``trunk`` and ``trunk_dtype``."""
    if "temperature" in meta:
        t, (lo, hi) = meta["temperature"], TEMPERATURE_RANGE
        if not (_finite(t) and lo <= float(t) <= hi):
            fail("temperature", f"must be a finite number > 0, in [{lo:g}, {hi:g}] (probabilities are "
                 f"softmax(log p / temperature)), got {short_repr(t)}")
    if "aggregate" in meta and meta["aggregate"] not in AGGREGATIONS:
        fail("aggregate", f"must be one of {', '.join(AGGREGATIONS)}, got {short_repr(meta['aggregate'])}")
    trunk = meta.get("trunk", 0)
    if isinstance(trunk, bool) or not isinstance(trunk, int) or not 0 <= trunk <= MAX_TRUNK:
        fail("trunk", f"must be the number of frozen block stages, an integer in [0, {MAX_TRUNK}], got {short_repr(trunk)}")
    if "trunk_dtype" in meta and meta["trunk_dtype"] not in TRUNK_DTYPES:
        fail("trunk_dtype", f"must be one of {', '.join(TRUNK_DTYPES)}, got {short_repr(meta['trunk_dtype'])}")


def _check_bank(bank: Any, state: Mapping[str, Any], where: str, fail: Fail, final: bool = True,
                name: str = "ood.bank") -> int:
    """The feature bank's rows; the bank is float16/float32 ``(n, d)``, finite, ``d`` = the classifier's
    inputs (``final``; a mid-level layer's bank has its own width)."""
    import torch

    dtype = str(getattr(bank, "dtype", type(bank).__name__)).replace("torch.", "")
    if dtype not in BANK_DTYPES:
        fail(name, f"({where}) has dtype {dtype}; the feature bank must be {' or '.join(BANK_DTYPES)}")
    shape = _shape(bank)
    if len(shape) != 2 or min(shape) < 1:
        fail(name, f"({where}) has shape {list(shape)}; the feature bank must be (micrographs, features)")
    prefix = _head(state)
    n_features = _shape(state[f"{prefix}.weight"])[1] if prefix else None
    if final and n_features is not None and shape[1] != n_features:
        fail(name, f"({where}) has {shape[1]} features per row but the classifier takes {n_features}")
    if not bool(torch.isfinite(bank).all()):
        fail(name, f"({where}) holds NaN or infinite values")
    return shape[0]


def _check_layers(ood: dict, banks: Mapping[str, Any], state: Mapping[str, Any], where: str, fail: Fail) -> int | None:
    """A multi-layer score: ``ood.layers`` names exactly the banks, each with a finite scale > 0."""
    layers = ood.get("layers")
    if layers is None and not banks:
        if "scales" in ood:
            fail("ood.scales", "given without ood.layers")
        return None
    known = CHOICES["familiarity_layer"]
    if (not isinstance(layers, list) or not layers or len(set(map(str, layers))) != len(layers)
            or not all(isinstance(x, str) and x in known for x in layers)):
        fail("ood.layers", f"must be a non-empty list of distinct layers among {', '.join(known)}, got {short_repr(layers)}")
    if sorted(layers) != sorted(banks):
        fail("ood.layers", f"names {', '.join(layers)} but the weights hold feature banks for "
             f"{', '.join(sorted(banks)) or 'no layer'} ({where})")
    scales = ood.get("scales")
    if not isinstance(scales, dict) or sorted(scales) != sorted(layers) or not all(
            _finite(v) and float(v) > 0 for v in scales.values()):
        fail("ood.scales", f"must map each of ood.layers to a finite number > 0 (its median score on the valid "
             f"split), got {short_repr(scales)}")
    rows = min(_check_bank(banks[x], state, where, fail, final=x == "final", name=OOD_BANKS + x) for x in layers)
    for x in layers:
        width = _layer_width(state, x)
        if width is not None and _shape(banks[x])[1] != width:
            fail(OOD_BANKS + x, f"({where}) has {_shape(banks[x])[1]} features per row but {x} has {width} channels")
    return rows


def _layer_width(state: Mapping[str, Any], layer: str) -> int | None:
    """Output channels of block stage ``blocks.N`` (its last block's output BatchNorm), if found."""
    if not layer.startswith("blocks."):
        return None
    pre = layer + "."
    outs = [k for k in state if k.startswith(pre) and k.endswith((".bn3.weight", ".bn2.weight"))]
    if not outs:
        return None
    last = max(int(k[len(pre):].split(".")[0]) for k in outs)
    mine = [k for k in outs if k.startswith(f"{pre}{last}.")]
    key = next((k for k in mine if k.endswith(".bn3.weight")), mine[0])  # bn3: inverted residual; bn2: depthwise
    return _shape(state[key])[0]


def _check_ood(meta: dict, state: Mapping[str, Any], bank: Any, where: str, fail: Fail,
               banks: Mapping[str, Any] | None = None) -> None:
    rows = _check_bank(bank, state, where, fail) if bank is not None else None
    ood = meta.get("ood", {})
    if not isinstance(ood, dict):
        fail("ood", f"must be a mapping of {', '.join(OOD_KEYS)}, got {short_repr(ood)}")
    unknown = sorted(map(str, set(ood) - set(OOD_KEYS)))
    if unknown:
        fail("ood", f"unknown key(s) {short_repr(', '.join(unknown))[1:-1]} (known: {', '.join(OOD_KEYS)})")
    layer_rows = _check_layers(ood, banks or {}, state, where, fail)
    if layer_rows is not None:
        if bank is not None:
            fail("ood", f"the weights hold both a final-layer bank and per-layer banks ({where})")
        rows = layer_rows
    if "ood_k" in ood:
        k = ood["ood_k"]
        if not _is_int(k) or k < 1 or (rows is not None and k > rows):
            most = f" and at most the feature bank's {rows} rows" if rows is not None else ""
            fail("ood.ood_k", f"must be an integer >= 1{most} (neighbours in feature space), got {short_repr(k)}")
    if "ood_threshold" in ood and not (_finite(ood["ood_threshold"]) and float(ood["ood_threshold"]) >= 0):
        fail("ood.ood_threshold", f"must be a finite number >= 0 (a distance), got {short_repr(ood['ood_threshold'])}")
    if "ood_quantile" in ood and not (_finite(ood["ood_quantile"]) and 0 < float(ood["ood_quantile"]) <= 1):
        fail("ood.ood_quantile", f"must be a number in (0, 1], got {short_repr(ood['ood_quantile'])}")


def validate_model_meta(meta: dict, state: Mapping[str, object], json_path: Path, bank: Any = None,
                        banks: Mapping[str, Any] | None = None) -> None:
    """Check a model's JSON description and its tensors before anything is built from them.

    Parameters
    ----------
    meta : dict
        The parsed JSON.
    state : mapping of str to tensor
        The safetensors weights (without the feature bank).
    json_path : Path
        Named in every error.
    bank : tensor, optional
        The feature bank (``ood.bank`` of the safetensors file), when the model has one.

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
        raise ModelFileError(f"{json_path}: unknown format {short_repr(meta['format'])} (expected {FORMAT})")
    classes = _check_classes(meta, fail)
    _check_architecture(meta, fail)
    _check_head(meta, fail)
    _check_norm(meta, fail)
    _check_preprocess(meta, fail)
    _check_bar(meta, fail)
    _check_scalars(meta, fail)
    _check_weights(state, len(classes), fail)
    _check_ood(meta, state, bank, f"tensor {OOD_BANK!r} of {Path(json_path).with_suffix('.safetensors').name}", fail,
               banks=banks)
