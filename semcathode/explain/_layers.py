"""Which layer a CAM is computed on, and what the CAM code needs from a loaded model.

Target layer
    For a timm EfficientNet the default (:func:`find_target_layer`, ``which='last'``) is
    ``bn2``: the batch-norm + activation (``BatchNormAct2d``) that follows the 1x1
    ``conv_head``.  Its output is exactly the feature map that the global average pool
    feeds to the linear classifier, so Grad-CAM's channel weights (spatially averaged
    gradients) are the classifier weights and the map is the original CAM; it is the
    last (and most class-specific) convolutional stage, the usual Grad-CAM layer.  The
    resolution is the input size / 32 (7x7 at 224 px), which is coarse: ``'last_block'``
    (same resolution, 320 channels before the head) and dotted module names are accepted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

__all__ = ["ModelLike", "find_target_layer"]


@runtime_checkable
class ModelLike(Protocol):
    """What the CAM code needs from a loaded model: a :class:`semcathode.models.ExportedModel`
    (``semcathode.models.load_model``) is one.

    :func:`~semcathode.explain.micrograph_cam` also uses its ``params`` (pre-processing:
    ``size``, ``tile_stride``) and ``predict_arrays``; they are not part of the runtime check.

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
        """Read a micrograph for the model.

        Parameters
        ----------
        path : str or Path
            Image file.

        Returns
        -------
        grey : numpy.ndarray
            Bar-free float image ``(H, W)`` in [0, 1].
        frame : numpy.ndarray
            uint8 frame at the model's scale.
        """
        ...

    def normalise(self, arr: np.ndarray) -> torch.Tensor:
        """The network input of uint8 tiles: :func:`semcathode.models._forward.normalise_batch` with
        the model's own normalisation settings (as ``ExportedModel.normalise`` does).

        Parameters
        ----------
        arr : numpy.ndarray
            uint8 ``(T, S, S)`` tiles.

        Returns
        -------
        torch.Tensor
            Normalised ``(T, 3, S, S)`` input.
        """
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
        The target layer (a sub-module of ``model``).

    Raises
    ------
    ValueError
        No EfficientNet-like module for the named roles, or an unknown module name; the
        message lists candidate layer names.

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 1))
    >>> find_target_layer(net, "last_conv") is net[2]
    True
    >>> find_target_layer(net, "0") is net[0]
    True
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
