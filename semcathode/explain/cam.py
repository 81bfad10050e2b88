"""Grad-CAM family explanations of the cathode classifier, and checks of what they show.

Everything here wraps `pytorch-grad-cam <https://github.com/jacobgil/pytorch-grad-cam>`_
(import name ``pytorch_grad_cam``); the methods are listed in :data:`CAM_METHODS`.

Target layer
    For a timm EfficientNet the default (:func:`find_target_layer`, ``which='last'``) is
    ``bn2``: the batch-norm + activation (``BatchNormAct2d``) that follows the 1x1
    ``conv_head``.  Its output is exactly the feature map that the global average pool
    feeds to the linear classifier, so Grad-CAM's channel weights (spatially averaged
    gradients) are the classifier weights and the map is the original CAM; it is the
    last (and most class-specific) convolutional stage, the usual Grad-CAM layer.  The
    resolution is the input size / 32 (7x7 at 224 px), which is coarse: ``'last_block'``
    (same resolution, 320 channels before the head) and dotted module names are accepted.

Hygiene
    :func:`compute_cams` always runs inside the library's context manager, so its module
    hooks are removed even on error.  For the duration of the call the parameters are
    frozen (``requires_grad=False``) and the target layer's output is made the entry point
    of the gradient, so the backward pass only runs from the logits back to the target
    layer (several times cheaper than a full backward) and no parameter ``.grad`` is
    written; modes (train/eval per module), ``requires_grad`` flags and existing ``.grad``
    tensors are restored afterwards.

Quantitative checks
    :func:`structure_map` (particle boundaries and dark crack-like lines),
    :func:`energy_on_mask` (share of the CAM's energy on a mask, against its area share),
    :func:`deletion_curve` / :func:`deletion_auc` (does the class probability fall faster
    when the most-attended pixels are blurred away first than when random pixels are?),
    aggregated by :func:`cam_quant_table`; :func:`explain_items` does all of it for a batch.

Outputs
    :func:`overlay` / :func:`save_overlay` (heat map over the bar-free micrograph at its own
    resolution), :func:`cam_files` (the ``semcathode cam`` command), :func:`cam_grid`
    (figure) and :func:`write_gallery` (static HTML page, misclassified first).
"""

from __future__ import annotations

import html
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence, runtime_checkable
from urllib.parse import quote

import numpy as np
import pandas as pd
import torch
from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from .._files import atomic_save, atomic_write_text
from ..io.walk import find_images
from .explorer import _truthy

__all__ = [
    "CAM_METHODS",
    "ModelLike",
    "find_target_layer",
    "compute_cams",
    "overlay",
    "stitch_tiles",
    "save_overlay",
    "cam_files",
    "make_cam_fn",
    "MicrographCam",
    "micrograph_cam",
    "structure_map",
    "energy_on_mask",
    "deletion_curve",
    "deletion_auc",
    "cam_quant_table",
    "explain_items",
    "cam_grid",
    "write_gallery",
]

_log = logging.getLogger(__name__)

#: method name -> pytorch-grad-cam class.  ``eigencam`` is class-agnostic (first principal
#: component of the activations; ``targets`` are ignored); the others follow a class logit.
CAM_METHODS: dict[str, type] = {
    "gradcam": GradCAM,
    "gradcampp": GradCAMPlusPlus,
    "eigencam": EigenCAM,
    "layercam": LayerCAM,
    "hirescam": HiResCAM,
    "xgradcam": XGradCAM,
}

#: Image files picked up when :func:`cam_files` expands a folder (the readers' own list).

_QUANT_COLUMNS = ("arm", "label", "energy_share", "area_share", "ratio", "auc_cam", "auc_random")


@runtime_checkable
class ModelLike(Protocol):
    """What :func:`cam_files` needs from a loaded model (e.g. ``semcathode.models.load_model``).

    Attributes
    ----------
    model : torch.nn.Module
        The classifier: normalised ``(N, 3, S, S)`` float input -> logits ``(N, n_classes)``.
    classes : list of str
        Class names, in logit order.
    """

    model: nn.Module
    classes: list[str]

    def load_array(self, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
        """Return (grey bar-free float image ``(H, W)`` in [0, 1], uint8 frame at the model's scale)."""
        ...

    def normalise(self, arr: np.ndarray) -> torch.Tensor:
        """uint8 ``(T, S, S)`` tiles -> normalised ``(T, 3, S, S)`` input."""
        ...


# --------------------------------------------------------------------------- target layer


def _efficientnet_like(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The outermost sub-module that looks like a timm EfficientNet (``blocks``, ``conv_head``, ``bn2``)."""
    for name, m in model.named_modules():
        if all(isinstance(getattr(m, a, None), nn.Module) for a in ("blocks", "conv_head", "bn2")):
            return name, m
    return None


def _candidates(model: nn.Module, k: int = 12) -> list[str]:
    """Names of the last ``k`` convolution / normalisation modules: plausible target layers."""
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.GroupNorm)
    names = [n for n, m in model.named_modules() if n and isinstance(m, kinds)]
    return names[-k:]


def find_target_layer(model: nn.Module, which: str = "last") -> nn.Module:
    """Pick the layer whose activations a CAM is computed on.

    Parameters
    ----------
    model : nn.Module
        A timm EfficientNet, or any module containing one (fastai ``TimmBody``,
        ``nn.Sequential``, ...), or any model when ``which`` is a module name.
    which : str
        ``'last'`` (default): the EfficientNet's ``bn2`` (BN + activation after
        ``conv_head``: the feature map the classifier pools; see the module docstring);
        ``'conv_head'``: the 1x1 head convolution before BN/activation; ``'last_block'``:
        the last MBConv stage ``blocks[-1]``; ``'last_conv'``: the last ``nn.Conv2d`` of any
        model; otherwise a dotted module name, looked up in ``model`` and then in the
        EfficientNet found inside it (so ``'bn2'`` also works for a wrapped model).

    Returns
    -------
    nn.Module

    Raises
    ------
    ValueError
        No EfficientNet-like module for the named roles, or an unknown module name; the
        message lists candidate layer names.
    """
    found = _efficientnet_like(model)
    if which in ("last", "conv_head", "last_block") and found is not None:
        _, eff = found
        if which == "conv_head":
            return eff.conv_head
        if which == "last_block":
            return eff.blocks[-1]
        act2 = getattr(eff, "act2", None)  # older timm: separate activation after bn2
        if isinstance(act2, nn.Module) and not isinstance(act2, nn.Identity):
            return act2
        return eff.bn2
    if which == "last_conv":
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        if convs:
            return convs[-1]
    elif which not in ("last", "conv_head", "last_block"):
        for root in [model] + ([found[1]] if found is not None else []):
            try:
                return root.get_submodule(which)
            except AttributeError:
                pass
    raise ValueError(
        f"cannot find target layer {which!r} in {type(model).__name__}: "
        + ("no EfficientNet-like sub-module (with blocks, conv_head, bn2); " if found is None else "")
        + "pass which='last_conv' or a dotted module name, e.g. one of: "
        + ", ".join(_candidates(model))
    )


def _as_layers(model: nn.Module, target_layer: Any) -> list[nn.Module]:
    if target_layer is None:
        return [find_target_layer(model)]
    if isinstance(target_layer, str):
        return [find_target_layer(model, target_layer)]
    if isinstance(target_layer, nn.Module):
        return [target_layer]
    layers = list(target_layer)
    if not layers or not all(isinstance(m, nn.Module) for m in layers):
        raise TypeError("target_layer must be None, a module name, a module or a list of modules")
    return layers


# --------------------------------------------------------------------------- computing CAMs


def _method_key(method: str) -> str:
    key = str(method).lower().replace("++", "pp").replace("-", "").replace("_", "").replace("+", "p")
    if key not in CAM_METHODS:
        raise ValueError(f"unknown CAM method {method!r}; known: {', '.join(CAM_METHODS)}")
    return key


def _method_class(method: str) -> type:
    return CAM_METHODS[_method_key(method)]


def _as_batch(inputs: torch.Tensor) -> torch.Tensor:
    if not isinstance(inputs, torch.Tensor):
        inputs = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    if inputs.ndim == 3:
        inputs = inputs.unsqueeze(0)
    if inputs.ndim != 4:
        raise ValueError(f"inputs must be (N, C, H, W) (or one (C, H, W)), got shape {tuple(inputs.shape)}")
    return inputs


def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def _targets_list(targets: Sequence[int] | int | None, n: int) -> list[int] | None:
    if targets is None:
        return None
    if isinstance(targets, (int, np.integer)):
        return [int(targets)] * n
    t = [int(v) for v in np.asarray(targets).ravel()]
    if len(t) != n:
        raise ValueError(f"got {len(t)} targets for {n} inputs")
    return t


@contextmanager
def _kept_modes(model: nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode; restore every module's own mode on exit."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _grad_entry_hook(module: nn.Module, args: Any, output: Any) -> Any:
    # Parameters are frozen during a CAM call, so nothing upstream requires grad: restart the
    # graph at this layer's output, so the gradient is computed from here on only.  The clone
    # makes it a non-leaf, which a following in-place op (ReLU(inplace=True)) may modify.
    if isinstance(output, torch.Tensor) and output.is_floating_point() and not output.requires_grad:
        return output.detach().requires_grad_(True).clone()
    return None


@contextmanager
def _cam_session(model: nn.Module, layers: Sequence[nn.Module]) -> Iterator[None]:
    """Frozen parameters, gradient entry at the target layers, grad mode on; all undone on exit."""
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    handles = []
    try:
        with _kept_modes(model):
            for p in params:
                p.requires_grad_(False)
            for layer in layers:
                handles.append(layer.register_forward_hook(_grad_entry_hook))
            with torch.inference_mode(False), torch.enable_grad():
                yield
    finally:
        for h in handles:
            h.remove()
        for p, flag, g in zip(params, flags, grads):
            p.requires_grad_(flag)
            p.grad = g


def compute_cams(
    model: nn.Module,
    inputs: torch.Tensor,
    method: str = "gradcam",
    targets: Sequence[int] | int | None = None,
    target_layer: nn.Module | Sequence[nn.Module] | str | None = None,
    batch_size: int = 8,
) -> np.ndarray:
    """One class activation map per input, at the input resolution.

    Parameters
    ----------
    model : nn.Module
        Classifier returning logits ``(N, n_classes)``.
    inputs : torch.Tensor
        Normalised ``(N, C, H, W)`` (or one ``(C, H, W)``); moved to the model's device.
    method : str
        A key of :data:`CAM_METHODS` (``'gradcam++'``/``'grad-cam'`` spellings accepted).
    targets : sequence of int, int or None
        Class index per input (or one for all); None explains the predicted class.
        Ignored by ``eigencam``.
    target_layer : module, list of modules, str or None
        None: :func:`find_target_layer` ``(model)``; a str is passed to it as ``which``.
    batch_size : int
        Inputs per forward/backward pass.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, H, W)`` in ``[0, 1]`` (each map min-max normalised by the library;
        an all-zero map means no positive evidence at that layer).
    """
    cls = _method_class(method)
    x = _as_batch(inputs)
    n, _, h, w = x.shape
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    tg = _targets_list(targets, n)
    layers = _as_layers(model, target_layer)
    if n == 0:
        return np.zeros((0, h, w), np.float32)
    device = _device(model)
    out: list[np.ndarray] = []
    with _cam_session(model, layers):
        with cls(model=model, target_layers=layers) as cam:
            for start in range(0, n, batch_size):
                xb = x[start : start + batch_size].to(device).clone()
                tb = None if tg is None else [ClassifierOutputTarget(t) for t in tg[start : start + batch_size]]
                try:
                    res = cam(input_tensor=xb, targets=tb)
                except IndexError as exc:  # the library's __exit__ would swallow it
                    raise ValueError(f"CAM failed (target class index out of range?): {exc}") from exc
                out.append(np.asarray(res, np.float32).reshape(-1, h, w))
    cams = np.concatenate(out, axis=0)
    return np.clip(np.nan_to_num(cams, nan=0.0), 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- images


def _resize(arr: np.ndarray, shape: tuple[int, int], order: int = 1) -> np.ndarray:
    """Resize a 2-D float map to ``shape`` (bilinear; anti-aliased when shrinking)."""
    from skimage.transform import resize

    arr = np.asarray(arr, np.float32)
    shape = (int(shape[0]), int(shape[1]))
    if arr.shape == shape:
        return arr
    shrink = shape[0] < arr.shape[0] or shape[1] < arr.shape[1]
    return resize(arr, shape, order=order, mode="edge", anti_aliasing=bool(shrink and order > 0),
                  preserve_range=True).astype(np.float32)


def _grey01(image: np.ndarray) -> np.ndarray:
    """A float grey image in [0, 1] from grey/RGB, float or integer input."""
    img = np.asarray(image)
    if img.ndim == 3:
        img = img[..., :3].mean(axis=-1) if img.shape[-1] >= 3 else img[..., 0]
    return _unit(img)


def _unit(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if np.issubdtype(img.dtype, np.integer):
        return img.astype(np.float32) / float(np.iinfo(img.dtype).max)
    if img.dtype == bool:
        return img.astype(np.float32)
    return np.clip(np.nan_to_num(img.astype(np.float32)), 0.0, 1.0)


def overlay(image: np.ndarray, cam: np.ndarray, opacity: float = 0.45, cmap: str = "jet") -> np.ndarray:
    """Blend a CAM heat map over a micrograph, at the micrograph's own resolution.

    Parameters
    ----------
    image : numpy.ndarray
        Grey ``(H, W)`` or RGB(A) ``(H, W, 3|4)``; float in [0, 1] or integer.
    cam : numpy.ndarray
        ``(h, w)`` map in [0, 1], any resolution (resized bilinearly to ``(H, W)``).
    opacity : float
        Weight of the heat map, in [0, 1].
    cmap : str
        Matplotlib colour map name.

    Returns
    -------
    numpy.ndarray
        uint8 RGB ``(H, W, 3)``.
    """
    import matplotlib

    if not 0.0 <= float(opacity) <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        rgb = np.repeat(_unit(img)[..., None], 3, axis=-1)
    elif img.ndim == 3 and img.shape[-1] in (3, 4):
        rgb = _unit(img[..., :3])
    else:
        raise ValueError(f"image must be (H, W) or (H, W, 3|4), got shape {img.shape}")
    cam = np.asarray(cam, np.float32)
    if cam.ndim != 2:
        raise ValueError(f"cam must be 2-D, got shape {cam.shape}")
    cam = np.clip(np.nan_to_num(_resize(cam, rgb.shape[:2])), 0.0, 1.0)
    heat = matplotlib.colormaps[cmap](cam)[..., :3].astype(np.float32)
    out = (1.0 - opacity) * rgb + opacity * heat
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def stitch_tiles(
    cams: np.ndarray,
    positions: Sequence[tuple[int, int]],
    frame_shape: tuple[int, int],
    tile_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Put tile-mode CAMs back into the frame, averaging where tiles overlap.

    Parameters
    ----------
    cams : numpy.ndarray
        ``(T, h, w)`` CAMs, one per tile.
    positions : list of (row, col)
        Top-left corner of each tile in the frame (pixels); tiles may overhang the frame.
    frame_shape : (H, W)
        Shape of the frame (the bar-free micrograph).
    tile_shape : (th, tw) or None
        Size of a tile in frame pixels when it differs from the CAM's (tiles resampled to
        the network input); None: the CAM's own shape.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``; 0 where no tile falls.  Each tile's CAM is normalised on its
        own, so values compare within a tile better than across tiles.
    """
    cams = np.asarray(cams, np.float32)
    if cams.ndim == 2:
        cams = cams[None]
    if len(positions) != len(cams):
        raise ValueError(f"{len(cams)} CAMs but {len(positions)} positions")
    fh, fw = int(frame_shape[0]), int(frame_shape[1])
    acc = np.zeros((fh, fw), np.float64)
    cnt = np.zeros((fh, fw), np.int32)
    for cam, (r, c) in zip(cams, positions):
        if tile_shape is not None:
            cam = _resize(cam, tile_shape)
        r, c = int(r), int(c)
        th, tw = cam.shape
        r0, c0, r1, c1 = max(r, 0), max(c, 0), min(r + th, fh), min(c + tw, fw)
        if r1 <= r0 or c1 <= c0:
            continue
        acc[r0:r1, c0:c1] += cam[r0 - r : r1 - r, c0 - c : c1 - c]
        cnt[r0:r1, c0:c1] += 1
    out = np.zeros((fh, fw), np.float64)
    np.divide(acc, cnt, out=out, where=cnt > 0)
    return out.astype(np.float32)


def _image_writer(rgb: np.ndarray, fmt: str) -> Callable[[str], Any]:
    from PIL import Image

    kwargs = {"quality": 88} if fmt == "JPEG" else {}
    return lambda tmp: Image.fromarray(rgb).save(tmp, format=fmt, **kwargs)


def save_overlay(path: str | Path, image: np.ndarray, cam: np.ndarray, opacity: float = 0.45,
                 max_side: int | None = None) -> Path:
    """Write :func:`overlay` ``(image, cam, opacity)`` as PNG (or JPEG for ``.jpg``), atomically.

    Parameters
    ----------
    max_side : int, optional
        Downscale the micrograph (and the CAM with it) so that its longer side is at most this
        many pixels (for reports); None keeps the micrograph's own resolution.

    Returns
    -------
    Path
        ``path`` (written through a temporary file in the same folder and ``os.replace``).
    """
    grey = _grey01(image)
    if max_side and max(grey.shape) > max_side:
        f = max_side / max(grey.shape)
        grey = _resize(grey, (max(1, round(grey.shape[0] * f)), max(1, round(grey.shape[1] * f))))
    fmt = "JPEG" if Path(path).suffix.lower() in (".jpg", ".jpeg") else "PNG"
    return atomic_save(path, _image_writer(overlay(grey, cam, opacity=opacity), fmt))


def _class_index(classes: Sequence[str], target: str | int | None) -> int | None:
    if target is None:
        return None
    names = [str(c) for c in classes]
    if str(target) in names:
        return names.index(str(target))
    if isinstance(target, (int, np.integer)) or str(target).lstrip("-").isdigit():
        t = int(target)
        if 0 <= t < len(names):
            return t
    raise ValueError(f"unknown target class {target!r}; classes: {', '.join(names)}")


def cam_files(
    model_like: ModelLike,
    paths: Sequence[str | Path],
    out_dir: str | Path,
    method: str = "gradcam",
    target: str | None = None,
    opacity: float = 0.45,
) -> list[Path]:
    """CAM overlays for image files (the ``semcathode cam`` command).

    Parameters
    ----------
    model_like : ModelLike
        ``.model``, ``.classes`` and ``.preprocess_path(path) -> (grey bar-free image, input)``.
    paths : sequence of str or Path
        Images and/or folders (searched recursively for :data:`semcathode.io.SUPPORTED_EXTENSIONS`, hidden files
        and anything under ``out_dir`` skipped).
    out_dir : str or Path
        Output folder, created if needed.
    method : str
        A key of :data:`CAM_METHODS`.
    target : str or None
        Class to explain (name, or index); None: each image's predicted class.
    opacity : float
        Heat-map weight of the overlay.

    Returns
    -------
    list of Path
        ``<out_dir>/<stem>_<method>.png`` per image, overlaid on the bar-free micrograph at
        its own resolution (``-2``, ``-3``... appended when stems repeat).  Unreadable
        images (``SEMReadError``, or no pixel size for a scale model) are skipped with a logged
        warning.  Every tile of the model's grid is explained for the micrograph's class and
        the CAMs are stitched (:func:`micrograph_cam`).
    """
    from ..io.read import SEMReadError

    method = _method_key(method)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_index = _class_index(model_like.classes, target)
    layer = find_target_layer(model_like.model)
    written: list[Path] = []
    used: set[str] = set()
    for p in find_images(paths, exclude=out):
        try:
            grey, arr = model_like.load_array(p)
        except (SEMReadError, ValueError) as exc:
            _log.warning("skipping %s: %s", p, exc)
            continue
        cam = micrograph_cam(model_like, grey, arr, method=method, target=t_index, target_layer=layer).cam
        name, k = f"{p.stem}_{method}", 1
        while name in used:
            k += 1
            name = f"{p.stem}-{k}_{method}"
        used.add(name)
        written.append(save_overlay(out / f"{name}.png", grey, cam, opacity=opacity))
    return written


@dataclass
class MicrographCam:
    """A whole micrograph's CAM (:func:`micrograph_cam`).

    Attributes
    ----------
    cam : ndarray
        float32 ``(H, W)`` at the bar-free micrograph's own resolution, stitched from the tiles.
    target : int
        Class explained.
    probs : ndarray
        The micrograph's aggregated class probabilities.
    inputs : torch.Tensor
        Normalised tiles ``(T, 3, S, S)``.
    tile_cams : ndarray
        ``(T, S, S)`` per-tile CAMs at network resolution.
    tiles : ndarray
        uint8 ``(T, S, S)`` tiles of the scaled frame (for structure maps at the model's scale).
    """

    cam: np.ndarray
    target: int
    probs: np.ndarray
    inputs: torch.Tensor
    tile_cams: np.ndarray
    tiles: np.ndarray


def micrograph_cam(model_like: ModelLike, grey: np.ndarray, arr: np.ndarray, method: str = "gradcam",
                   target: int | None = None, target_layer: nn.Module | str | None = None,
                   batch_size: int = 8) -> MicrographCam:
    """CAM of a whole micrograph at particle scale: one CAM per tile of the model's tile grid,
    stitched over the scaled frame (overlaps averaged) and resampled to the micrograph.

    Parameters
    ----------
    model_like : ModelLike
        A loaded model with ``params`` (size, tile_stride), ``normalise`` and ``predict_arrays``.
    grey : ndarray
        The bar-free micrograph (its shape is the output's).
    arr : ndarray
        uint8 frame at the model's scale (from ``load_array`` or the pre-processing cache).
    method : str
        A key of :data:`CAM_METHODS`.
    target : int or None
        Class index to explain; None: the micrograph's aggregated prediction.
    target_layer, batch_size
        As for :func:`compute_cams`.

    Returns
    -------
    MicrographCam
    """
    from ..data.preprocess import cut_tiles

    params = model_like.params
    tiles, positions = cut_tiles(np.asarray(arr), params.size, params.tile_stride)
    x = model_like.normalise(tiles)
    probs = model_like.predict_arrays([arr]).probs()[0]
    t = int(probs.argmax()) if target is None else int(target)
    cams = compute_cams(model_like.model, x, method=method, targets=t, target_layer=target_layer,
                        batch_size=batch_size)
    stitched = stitch_tiles(cams, positions, np.asarray(arr).shape, tile_shape=(params.size, params.size))
    return MicrographCam(_resize(stitched, grey.shape), t, probs, x, cams, tiles)


def make_cam_fn(
    model: nn.Module | ModelLike,
    load: Callable[[pd.Series], tuple[np.ndarray, Any]] | None = None,
    classes: Sequence[str] | None = None,
    target_layer: nn.Module | str | None = None,
) -> Callable[[pd.Series, str, str | None], tuple[np.ndarray, np.ndarray]]:
    """A ``cam_fn(row, method, target_class) -> (grey image, cam)`` for :mod:`semcathode.explain.explorer`.

    Parameters
    ----------
    model : nn.Module or ModelLike
        A loaded model (then ``load`` returns ``(grey, frame at the model's scale)``, default
        ``model.load_array(row['path'])``, and the CAM is the stitched :func:`micrograph_cam`;
        ``classes`` defaults to ``model.classes``), or a bare classifier (then ``load`` returns
        ``(grey, normalised input (1, 3, S, S))``).
    load : callable or None
    classes : sequence of str or None
        Class names (to turn ``target_class`` into an index).
    target_layer : module, str or None
        As for :func:`compute_cams`.

    Returns
    -------
    callable
    """
    if isinstance(model, ModelLike):
        classes = list(classes if classes is not None else model.classes)
        load = load or (lambda row: model.load_array(row["path"]))
        layers = _as_layers(model.model, target_layer)

        def cam_fn(row: pd.Series, method: str, target_class: str | None) -> tuple[np.ndarray, np.ndarray]:
            grey, arr = load(row)
            t = _class_index(classes, target_class)
            return grey, micrograph_cam(model, grey, arr, method=method, target=t, target_layer=layers).cam

        return cam_fn
    if load is None or classes is None:
        raise ValueError("give load and classes (or a loaded model with load_array and classes)")
    layers = _as_layers(model, target_layer)

    def bare_cam_fn(row: pd.Series, method: str, target_class: str | None) -> tuple[np.ndarray, np.ndarray]:
        grey, x = load(row)
        t = _class_index(classes, target_class)
        cam = compute_cams(model, x, method=method, targets=None if t is None else [t], target_layer=layers)[0]
        return grey, cam

    return bare_cam_fn


# --------------------------------------------------------------------------- quantitative checks


def structure_map(
    image: np.ndarray,
    quantile: float = 0.8,
    sigma: float = 1.0,
    ridge_sigmas: Sequence[float] = (1.0, 2.0, 3.0),
) -> np.ndarray:
    """Particle boundaries and dark crack-like lines of a grey micrograph.

    The union of two maps, each thresholded at its own ``quantile``: the Scharr edge
    magnitude of the image smoothed with a Gaussian of ``sigma`` px (particle outlines,
    bright SE rims) and the Sato tubeness filter with ``black_ridges=True`` at
    ``ridge_sigmas`` px (thin dark lines: cracks, opened grain boundaries, gaps).  With
    the default 0.8 each map marks its top 20 % of pixels, so the union covers 20-40 % of
    the image.  A flat map contributes nothing.

    Parameters
    ----------
    image : numpy.ndarray
        Grey ``(H, W)`` (RGB is averaged), bar-free; resize it to the CAM first.
    quantile : float
        In (0, 1).
    sigma, ridge_sigmas : float
        Scales in pixels.

    Returns
    -------
    numpy.ndarray
        bool ``(H, W)``.
    """
    from scipy import ndimage
    from skimage.filters import sato, scharr

    if not 0.0 < quantile < 1.0:
        raise ValueError("quantile must be in (0, 1)")
    img = _grey01(image).astype(np.float64)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {img.shape}")
    mask = np.zeros(img.shape, bool)
    edge = scharr(ndimage.gaussian_filter(img, sigma) if sigma > 0 else img)
    ridge = sato(img, sigmas=list(ridge_sigmas), black_ridges=True, mode="reflect")
    for m in (edge, ridge):
        m = np.nan_to_num(m)
        if np.ptp(m) > 1e-12:
            mask |= m > np.quantile(m, quantile)
    return mask


def energy_on_mask(cam: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """How much of a CAM's energy falls on a mask, relative to the mask's area.

    Parameters
    ----------
    cam : numpy.ndarray
        Non-negative map ``(H, W)`` (negative values are clipped to 0).
    mask : numpy.ndarray
        bool ``(H, W)`` (or resized, nearest, to the CAM's shape).

    Returns
    -------
    dict
        ``energy_share`` = sum(cam[mask]) / sum(cam); ``area_share`` = mask.mean();
        ``ratio`` = energy_share / area_share (1: what a uniform map gives; > 1: the CAM
        concentrates on the mask).  NaN when the CAM or the mask is empty.
    """
    cam = np.clip(np.nan_to_num(np.asarray(cam, np.float64)), 0.0, None)
    mask = np.asarray(mask, bool)
    if mask.shape != cam.shape:
        mask = _resize(mask.astype(np.float32), cam.shape, order=0) > 0.5
    total = float(cam.sum())
    area = float(mask.mean()) if mask.size else float("nan")
    energy = float(cam[mask].sum()) / total if total > 0 else float("nan")
    ratio = energy / area if area > 0 else float("nan")
    return {"energy_share": energy, "area_share": area, "ratio": ratio}


def deletion_curve(
    model: nn.Module,
    input: torch.Tensor,
    cam: np.ndarray,
    target: int,
    steps: int = 8,
    order: str = "cam",
    seed: int = 0,
    blur_sigma: float = 5.0,
) -> np.ndarray:
    """Class probability as pixels are progressively replaced by a blurred input.

    Parameters
    ----------
    model : nn.Module
        The classifier (evaluated in eval mode; its modes are restored).
    input : torch.Tensor
        One normalised input ``(1, C, H, W)`` or ``(C, H, W)``.
    cam : numpy.ndarray
        The CAM ``(h, w)`` (resized to ``(H, W)``).
    target : int
        Class whose softmax probability is tracked.
    steps : int
        The fractions ``0, 1/steps, ..., 1`` of the pixels are deleted.
    order : {'cam', 'random'}
        Most-attended pixels first (ties broken at random) or a random order.
    seed : int
        Seed of the random order / tie breaking.
    blur_sigma : float
        Gaussian blur (input pixels) of the replacement image.

    Returns
    -------
    numpy.ndarray
        float64 ``(steps + 1,)`` probabilities; the first is the unperturbed input's, the
        last the fully blurred input's (the same for both orders).
    """
    from scipy import ndimage

    if steps < 1:
        raise ValueError("steps must be >= 1")
    if order not in ("cam", "random"):
        raise ValueError(f"order must be 'cam' or 'random', got {order!r}")
    x = _as_batch(input)
    if x.shape[0] != 1:
        raise ValueError("deletion_curve takes one input")
    _, c, h, w = x.shape
    x0 = x[0].detach().to("cpu", torch.float32).numpy()
    cam = np.nan_to_num(_resize(np.asarray(cam, np.float32), (h, w))).ravel()
    rng = np.random.default_rng(seed)
    if order == "cam":
        ranking = np.lexsort((rng.random(h * w), -cam))  # last key is the primary one
    else:
        ranking = rng.permutation(h * w)
    rank = np.empty(h * w, np.int64)
    rank[ranking] = np.arange(h * w)
    blurred = ndimage.gaussian_filter(x0, sigma=(0.0, blur_sigma, blur_sigma), mode="reflect")
    counts = np.rint(np.linspace(0.0, 1.0, steps + 1) * h * w).astype(np.int64)
    deleted = (rank[None, :] < counts[:, None]).reshape(steps + 1, 1, h, w)
    batch = np.where(deleted, blurred[None], x0[None]).astype(np.float32)
    device = _device(model)
    probs: list[np.ndarray] = []
    with _kept_modes(model), torch.no_grad():
        for start in range(0, steps + 1, 16):
            logits = model(torch.from_numpy(batch[start : start + 16]).to(device))
            probs.append(torch.softmax(logits.float(), dim=1)[:, int(target)].cpu().numpy())
    return np.concatenate(probs).astype(np.float64)


def deletion_auc(curve: Sequence[float]) -> float:
    """Area under a deletion curve, its points spread evenly over [0, 1] (trapezoid rule).

    Lower is better for a faithful CAM: the probability falls early when the
    most-attended pixels go first.
    """
    y = np.asarray(curve, np.float64)
    if y.size < 2:
        raise ValueError("a deletion curve needs at least 2 points")
    return float(np.trapezoid(y, np.linspace(0.0, 1.0, y.size)))


def cam_quant_table(records: pd.DataFrame | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Aggregate per-image CAM checks per (arm, class).

    Parameters
    ----------
    records : DataFrame or list of dict
        One row per explained image with columns ``arm`` (model/arm name), ``label`` (true
        class name), ``energy_share``, ``area_share``, ``ratio`` (from
        :func:`energy_on_mask` on the :func:`structure_map`), ``auc_cam`` and ``auc_random``
        (:func:`deletion_auc` of the cam- and random-order deletion curves); other columns
        are ignored.  :func:`explain_items` returns such records.

    Returns
    -------
    DataFrame
        Columns ``arm, label, n, energy_share, area_share, ratio, auc_cam, auc_random,
        auc_gap`` (means; ``auc_gap = auc_random - auc_cam``, > 0 when deleting by the CAM
        hurts the class faster than random deletion).  Per arm, the classes in order of
        appearance then an ``'(all)'`` row over all its images.
    """
    df = pd.DataFrame(list(records) if not isinstance(records, pd.DataFrame) else records)
    cols = ["arm", "label", "n", "energy_share", "area_share", "ratio", "auc_cam", "auc_random", "auc_gap"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    missing = [c for c in _QUANT_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"records lack columns {missing}")
    df = df.assign(arm=df["arm"].astype(str), label=df["label"].astype(str))
    metrics = list(_QUANT_COLUMNS[2:])
    df[metrics] = df[metrics].astype(float)
    rows = []
    for arm, g in df.groupby("arm", sort=False):
        parts = [(lab, gg) for lab, gg in g.groupby("label", sort=False)] + [("(all)", g)]
        for lab, gg in parts:
            row = {"arm": arm, "label": lab, "n": len(gg)}
            row.update({m: float(gg[m].mean()) for m in metrics})
            row["auc_gap"] = row["auc_random"] - row["auc_cam"]
            rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def explain_items(
    model: nn.Module,
    inputs: torch.Tensor,
    images: Sequence[np.ndarray] | None,
    labels: Sequence[int | str],
    classes: Sequence[str],
    method: str = "gradcam",
    arm: str = "",
    steps: int = 8,
    target: str = "pred",
    target_layer: nn.Module | str | None = None,
    quantile: float = 0.8,
    seed: int = 0,
    batch_size: int = 8,
    targets: Sequence[int] | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """CAMs for a batch and the per-image quantitative records (for notebook 05).

    Parameters
    ----------
    model : nn.Module
        The classifier.
    inputs : torch.Tensor
        Normalised ``(N, 3, S, S)``.
    images : sequence of numpy.ndarray or None
        Grey bar-free images (any size; resized, not cropped, to the CAM for the structure
        map, so the input must show the whole image); None: the channel mean of ``inputs``.
    labels : sequence of int or str
        True classes (indices or names).
    classes : sequence of str
        Class names in logit order.
    method, target_layer, batch_size
        As for :func:`compute_cams`.
    arm : str
        Recorded in each row.
    steps : int
        Deletion-curve steps.
    target : {'pred', 'label'}
        Explain the predicted or the true class.
    targets : sequence of int, optional
        Explicit class indices to explain (overrides ``target``; e.g. the whole micrograph's
        prediction for each of its tiles).
    quantile : float
        Of :func:`structure_map`.
    seed : int
        Random-order deletion uses ``seed + i`` for image ``i``.

    Returns
    -------
    cams : numpy.ndarray
        float32 ``(N, S, S)``.
    records : DataFrame
        Per image: ``arm, index, label, pred, target, correct, prob_target, method,
        energy_share, area_share, ratio, auc_cam, auc_random`` (input of
        :func:`cam_quant_table`).
    """
    if target not in ("pred", "label"):
        raise ValueError("target must be 'pred' or 'label'")
    x = _as_batch(inputs)
    n = x.shape[0]
    names = [str(c) for c in classes]
    lab_idx = [_class_index(names, v) for v in labels]
    if len(lab_idx) != n:
        raise ValueError(f"{len(lab_idx)} labels for {n} inputs")
    if images is not None and len(images) != n:
        raise ValueError(f"{len(images)} images for {n} inputs")
    device = _device(model)
    with _kept_modes(model), torch.no_grad():
        probs = torch.cat([torch.softmax(model(x[s : s + batch_size].to(device)).float(), 1).cpu()
                           for s in range(0, n, batch_size)]) if n else torch.zeros((0, len(names)))
    preds = probs.argmax(1).numpy()
    if targets is not None:
        tg = [int(v) for v in targets]
    else:
        tg = [int(p) for p in preds] if target == "pred" else [int(v) for v in lab_idx]
    cams = compute_cams(model, x, method=method, targets=tg, target_layer=target_layer, batch_size=batch_size)
    rows = []
    for i in range(n):
        cam = cams[i]
        grey = x[i].detach().float().mean(0).cpu().numpy() if images is None else _grey01(images[i])
        if images is None:  # normalised input: rescale to [0, 1] for the filters
            grey = (grey - grey.min()) / max(float(np.ptp(grey)), 1e-12)
        smap = structure_map(_resize(grey, cam.shape), quantile=quantile)
        e = energy_on_mask(cam, smap)
        auc_c = deletion_auc(deletion_curve(model, x[i : i + 1], cam, tg[i], steps=steps, order="cam", seed=seed + i))
        auc_r = deletion_auc(deletion_curve(model, x[i : i + 1], cam, tg[i], steps=steps, order="random",
                                            seed=seed + i))
        rows.append({
            "arm": arm, "index": i, "label": names[lab_idx[i]], "pred": names[int(preds[i])],
            "target": names[tg[i]], "correct": bool(lab_idx[i] == int(preds[i])),
            "prob_target": float(probs[i, tg[i]]), "method": method, **e,
            "auc_cam": auc_c, "auc_random": auc_r,
        })
    return cams, pd.DataFrame(rows, columns=[
        "arm", "index", "label", "pred", "target", "correct", "prob_target", "method",
        "energy_share", "area_share", "ratio", "auc_cam", "auc_random"])


# --------------------------------------------------------------------------- figures and gallery


def cam_grid(
    images: Sequence[np.ndarray],
    cams: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncol: int = 4,
    opacity: float = 0.45,
):
    """A grid of overlays (one panel per image) for the report.

    Parameters
    ----------
    images, cams : sequences of numpy.ndarray
        Grey micrographs and their CAMs (any resolutions; overlays at the image's).
    titles : sequence of str or None
        Panel titles.
    ncol : int
        Panels per row.
    opacity : float
        Heat-map weight.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    n = len(images)
    if len(cams) != n or (titles is not None and len(titles) != n):
        raise ValueError("images, cams and titles must have the same length")
    ncol = max(1, min(int(ncol), max(n, 1)))
    nrow = max(1, int(np.ceil(n / ncol)))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 3.2 * nrow), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(overlay(images[k], cams[k], opacity=opacity))
            if titles is not None:
                ax.set_title(str(titles[k]), fontsize=8)
    fig.tight_layout()
    return fig


def write_gallery(out_dir: str | Path, records: pd.DataFrame, title: str = "Grad-CAM gallery") -> Path:
    """A static HTML gallery of overlay PNGs, misclassified first.

    Parameters
    ----------
    out_dir : str or Path
        Folder of the page; overlay paths are made relative to it.
    records : DataFrame
        One row per overlay: ``overlay_path`` (relative to ``out_dir``, or absolute),
        ``label``, ``pred``, and optionally ``correct`` (default ``label == pred``),
        ``arm``, ``domain``, ``probs`` (free text, e.g. top-3 probabilities).
    title : str
        Page title.

    Returns
    -------
    Path
        ``out_dir/gallery.html``, written atomically; all text is HTML-escaped.
    """
    out = Path(out_dir)
    if "overlay_path" not in records.columns:
        raise ValueError("records need an overlay_path column")
    df = records.copy()
    for col in ("label", "pred", "arm", "domain", "probs"):
        if col not in df.columns:
            df[col] = ""
    if "correct" in df.columns:
        correct = [_truthy(v) for v in df["correct"]]
    else:
        correct = [str(a) == str(b) for a, b in zip(df["label"], df["pred"])]
    df["_correct"] = correct
    df = df.sort_values("_correct", kind="stable")

    def text(v: Any) -> str:
        return "" if v is None or (isinstance(v, float) and v != v) else html.escape(str(v))

    cards = []
    for _, r in df.iterrows():
        p = Path(str(r["overlay_path"]))
        if p.is_absolute():
            p = Path(os.path.relpath(p, out.resolve()))
        src = html.escape(quote(p.as_posix(), safe="/-_.~"), quote=True)
        ok = bool(r["_correct"])
        cards.append(
            f'<figure class="{"ok" if ok else "bad"}"><a href="{src}"><img src="{src}" loading="lazy" '
            f'alt="{text(r["label"])}"></a><figcaption><b>{"correct" if ok else "MISCLASSIFIED"}</b><br>'
            f"true: {text(r['label'])}<br>pred: {text(r['pred'])}<br>"
            f"arm: {text(r['arm'])} &middot; domain: {text(r['domain'])}<br>"
            f"<small>{text(r['probs'])}</small></figcaption></figure>"
        )
    n_bad = int((~df["_correct"]).sum())
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:1em}"
        "figure{display:inline-block;vertical-align:top;width:260px;margin:6px;padding:4px;border:3px solid #ccc}"
        "figure.bad{border-color:#c0392b}figure.ok{border-color:#27ae60}"
        "img{width:100%}figcaption{font-size:12px}"
        "</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f"<p>{len(df)} overlays, {n_bad} misclassified (shown first).</p>\n"
        + "\n".join(cards)
        + "\n</body></html>\n"
    )
    return atomic_write_text(out / "gallery.html", page)
