"""A linear head on a mid-level block: the frozen-feature probe as a whole, exportable network.

Measured at the native 0.26 µm/px, a logistic regression on the pooled output of EfficientNet's
block 5, frozen at its ImageNet weights, generalises to the end of every imaging session better
than any top trained on the trunk (README, native scale). :func:`linear_head` turns a timm
EfficientNet into that model, using timm's own ``prune_intermediate_layers``: the blocks after
the chosen stage, the head convolution and its BatchNorm go, the pooled output of the stage is
standardised per channel (:class:`FeatureScale`, statistics of the training features, stored as
buffers) and read by a new linear classifier. The result is still a timm ``EfficientNet``, so
tiling, prediction, export and Grad-CAM treat it like any other.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["HEAD_LAYERS", "FeatureScale", "linear_head", "head_layer_of"]

#: Block stages a linear head can read (``blocks.5`` = the output of EfficientNet's sixth stage).
HEAD_LAYERS: tuple[str, ...] = ("blocks.3", "blocks.4", "blocks.5")


class FeatureScale(nn.Module):
    """Per-channel standardisation ``(x - mean) / std`` of ``(N, C, h, w)`` maps, fixed (buffers).

    It commutes with global average pooling, so standardising the maps standardises the pooled
    features the classifier reads.

    Parameters
    ----------
    channels : int

    Examples
    --------
    >>> import torch
    >>> fs = FeatureScale(2)
    >>> fs.fit(torch.tensor([[1.0, 10.0], [3.0, 30.0]]))
    >>> fs(torch.tensor([[1.0, 10.0]]).view(1, 2, 1, 1)).flatten().tolist()
    [-1.0, -1.0]
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.view(1, -1, 1, 1).to(x.dtype)) / self.std.view(1, -1, 1, 1).to(x.dtype)

    @torch.no_grad()
    def fit(self, features: torch.Tensor, floor: float = 0.01) -> None:
        """Set the statistics from pooled features ``(N, C)``: population std, floored at ``floor`` times the
        median channel's (a channel nearly constant on the training tiles is not blown up on new ones)."""
        f = torch.as_tensor(features, dtype=torch.float32)
        std = f.std(0, unbiased=False)
        self.mean.copy_(f.mean(0))
        self.std.copy_(std.clamp_min(float(floor * std.median()) + 1e-6))


def _stage(layer: str) -> int:
    if layer not in HEAD_LAYERS:
        raise ValueError(f"linear head layer {layer!r}: must be one of {', '.join(HEAD_LAYERS)}")
    return int(layer.split(".")[1])


def linear_head(net: nn.Module, layer: str = "blocks.5", num_classes: int | None = None) -> nn.Module:
    """Cut a timm EfficientNet after block stage ``layer`` and give it a standardised linear head.

    Parameters
    ----------
    net : nn.Module
        A timm EfficientNet (changed in place).
    layer : str
        One of :data:`HEAD_LAYERS`.
    num_classes : int, optional
        Classifier outputs (default: the network's own; 0 = pooled features, no classifier).

    Returns
    -------
    nn.Module
        ``net``: stem, ``blocks[:k + 1]``, ``bn2`` = :class:`FeatureScale`, average pooling and a
        ``Linear(C_k, num_classes)`` (``net.num_features`` = ``C_k``).

    Examples
    --------
    >>> import timm, torch
    >>> net = linear_head(timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=3), "blocks.5")
    >>> len(net.blocks), net.num_features, tuple(net(torch.randn(1, 3, 64, 64)).shape)
    (6, 192, (1, 3))
    >>> head_layer_of(net)
    'blocks.5'
    """
    k = _stage(layer)
    n = int(getattr(net, "num_classes", 0)) if num_classes is None else int(num_classes)
    if not hasattr(net, "prune_intermediate_layers") or len(getattr(net, "blocks", ())) <= k:
        raise ValueError(f"linear head at {layer}: the network is not a timm EfficientNet with that stage")
    net.prune_intermediate_layers(indices=[k + 1], prune_head=True, extra_blocks=True)  # keeps blocks[:k + 1]
    net.bn2 = FeatureScale(int(net.num_features))
    net.reset_classifier(n, "avg")
    if isinstance(net.get_classifier(), nn.Linear):  # small start, as for the conv head (logits near 0)
        nn.init.normal_(net.classifier.weight, std=0.01)
        nn.init.zeros_(net.classifier.bias)
    return net


def head_layer_of(net: nn.Module) -> str | None:
    """The block stage a :func:`linear_head` network reads (``blocks.k``), or ``None`` for timm's own head."""
    if isinstance(getattr(net, "bn2", None), FeatureScale):
        return f"blocks.{len(net.blocks) - 1}"
    return None
