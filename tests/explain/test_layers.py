"""Target layers of a CAM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

timm = pytest.importorskip("timm")
pytest.importorskip("pytorch_grad_cam")

from semcathode.explain._layers import (  # noqa: E402
    find_target_layer,
)
from semcathode.explain._compute import compute_cams  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_find_target_layer_bare_and_wrapped(effnet):
    assert find_target_layer(effnet) is effnet.bn2
    assert find_target_layer(effnet, "conv_head") is effnet.conv_head
    assert find_target_layer(effnet, "last_block") is effnet.blocks[-1]
    assert find_target_layer(effnet, "blocks.5") is effnet.blocks[5]

    seq = nn.Sequential(nn.Identity(), effnet)
    assert find_target_layer(seq) is effnet.bn2
    assert find_target_layer(seq, "bn2") is effnet.bn2  # resolved inside the EfficientNet
    assert find_target_layer(seq, "1.conv_head") is effnet.conv_head

    class Wrapper(nn.Module):  # e.g. a normalising front end around the backbone
        def __init__(self, body: nn.Module) -> None:
            super().__init__()
            self.body = nn.ModuleDict({"net": body})

        def forward(self, x):
            return self.body["net"](x)

    wrapped = Wrapper(effnet)
    assert find_target_layer(wrapped) is effnet.bn2
    x = torch.randn(2, 3, 64, 64)
    np.testing.assert_allclose(compute_cams(wrapped, x), compute_cams(effnet, x), atol=1e-5)

    cnn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 8, 3))
    with pytest.raises(ValueError, match=r"no EfficientNet-like.*0, 1, 3"):
        find_target_layer(cnn)
    assert find_target_layer(cnn, "last_conv") is cnn[3]
    with pytest.raises(ValueError, match="cannot find target layer 'nope'"):
        find_target_layer(effnet, "nope")
