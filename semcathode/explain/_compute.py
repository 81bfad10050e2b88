"""Class activation maps of a classifier, computed with pytorch-grad-cam.

Everything here wraps `pytorch-grad-cam <https://github.com/jacobgil/pytorch-grad-cam>`_
(import name ``pytorch_grad_cam``); the methods are listed in :data:`CAM_METHODS`.

Hygiene
    :func:`compute_cams` always runs inside the library's context manager, so its module
    hooks are removed even on error.  For the duration of the call the parameters are
    frozen (``requires_grad=False``) and the target layer's output is made the entry point
    of the gradient, so the backward pass only runs from the logits back to the target
    layer (several times cheaper than a full backward) and no parameter ``.grad`` is
    written; modes (train/eval per module), ``requires_grad`` flags and existing ``.grad``
    tensors are restored afterwards.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from ._layers import _as_layers

__all__ = ["CAM_METHODS", "cam_method_key", "compute_cams"]

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


def cam_method_key(method: str) -> str:
    """The key of :data:`CAM_METHODS` a method name means (case, ``-``, ``_`` and ``+`` ignored).

    Parameters
    ----------
    method : str
        E.g. ``"GradCAM++"``, ``"gradcam_pp"`` or ``"layercam"``.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        No such method (the message lists the known ones).

    Examples
    --------
    >>> cam_method_key("GradCAM++"), cam_method_key("grad-cam")
    ('gradcampp', 'gradcam')
    """
    key = str(method).lower().replace("++", "pp").replace("-", "").replace("_", "").replace("+", "p")
    if key not in CAM_METHODS:
        raise ValueError(f"unknown CAM method {method!r}; known: {', '.join(CAM_METHODS)}")
    return key


def _method_class(method: str) -> type:
    return CAM_METHODS[cam_method_key(method)]


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


def _class_index(classes: Sequence[str], target: str | int | None) -> int | None:
    """Index of a class given by name or index (None stays None); ValueError if unknown."""
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
