"""The linear head on a block stage (issue 18: the frozen-feature probe as the model)."""

from __future__ import annotations

import pytest
import timm
import torch

from semcathode.config._sections import CHOICES
from semcathode.models._head import HEAD_LAYERS, FeatureScale, head_layer_of, linear_head
from semcathode.models._trunk import split_network


def _net(n=3):
    torch.manual_seed(0)
    return timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=n).eval()


def test_choices_follow_the_head_layers():
    assert CHOICES["head_layer"] == HEAD_LAYERS


@pytest.mark.parametrize("layer, stages, width", [("blocks.3", 4, 80), ("blocks.4", 5, 112), ("blocks.5", 6, 192)])
def test_linear_head_reads_the_standardised_pooled_stage(layer, stages, width):
    """The cut network's logits are the classifier applied to the stage's pooled output, standardised."""
    full = _net()
    net = linear_head(_net(), layer)
    assert len(net.blocks) == stages and net.num_features == width and head_layer_of(net) == layer
    assert head_layer_of(full) is None
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        stage = full.blocks[:stages](full.bn1(full.conv_stem(x))).mean(dim=(2, 3))  # the same ImageNet-free weights
        net.bn2.fit(torch.randn(10, width) * 3 + 1)
        want = net.classifier((stage - net.bn2.mean) / net.bn2.std)
        assert torch.allclose(net(x), want, atol=1e-4)


def test_feature_scale_commutes_with_pooling_so_the_top_is_pointwise():
    net = linear_head(_net(), "blocks.5")
    net.bn2.fit(torch.randn(20, 192))
    trunk, top = split_network(net, 6)
    assert top.pointwise and not split_network(_net(), 6)[1].pointwise
    maps = torch.randn(3, 192, 2, 2)
    with torch.no_grad():
        assert torch.allclose(top(maps), top(maps.mean(dim=(2, 3), keepdim=True)), atol=1e-5)


def test_feature_scale_floors_a_constant_channel():
    """A channel constant on the training tiles gets a std floor tied to the others: a new tile's value
    there is not multiplied by a million."""
    fs = FeatureScale(3)
    fs.fit(torch.tensor([[1.0, 5.0, 0.0], [3.0, 5.0, 2.0]]))
    assert torch.allclose(fs.std[[0, 2]], torch.ones(2)) and 0.009 < float(fs.std[1]) < 0.011
    assert float(fs(torch.tensor([1.0, 6.0, 0.0]).view(1, 3, 1, 1)).abs().max()) < 200


def test_linear_head_refuses_an_unknown_stage():
    with pytest.raises(ValueError, match="blocks.6"):
        linear_head(_net(), "blocks.6")
