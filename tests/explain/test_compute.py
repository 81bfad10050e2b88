"""CAM computation: shapes, methods, hook hygiene, restored model state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

timm = pytest.importorskip("timm")
pytest.importorskip("pytorch_grad_cam")

from semcathode.explain._compute import (  # noqa: E402
    CAM_METHODS,
    compute_cams,
)

pytestmark = pytest.mark.usefixtures("one_thread")


METHODS = ["gradcam", "gradcampp", "eigencam", "layercam", "hirescam", "xgradcam"]


def _hook_count(model: nn.Module) -> int:
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks)
        n += len(m._backward_hooks) + len(getattr(m, "_backward_pre_hooks", {}))
    import torch.nn.modules.module as mm

    for name in ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                 "_global_backward_pre_hooks"):
        n += len(getattr(mm, name, {}))
    return n


@pytest.mark.parametrize("method", METHODS)
def test_cam_shape_and_range(effnet, method):
    assert method in CAM_METHODS
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    cams = compute_cams(effnet, x, method=method, batch_size=2)
    assert cams.shape == (3, 64, 64)
    assert cams.dtype == np.float32
    assert np.isfinite(cams).all()
    assert cams.min() >= 0.0 and cams.max() <= 1.0


def test_same_maps_as_the_library_used_directly(effnet):
    """The backward shortcut (gradient entry at the target layer) changes no map."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(4)
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(8, 8, 3, padding=1),
                        nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)).eval()
    cases = [(effnet, effnet.bn2, torch.randn(2, 3, 64, 64)),
             (effnet, effnet.blocks[-1], torch.randn(2, 3, 64, 64)),
             (cnn, cnn[2], torch.randn(2, 3, 16, 16))]  # conv followed by an in-place ReLU
    for model, layer, x in cases:
        for method in ("gradcam", "gradcampp", "layercam"):
            ours = compute_cams(model, x, method=method, targets=[1, 0], target_layer=layer)
            with CAM_METHODS[method](model=model, target_layers=[layer]) as cam:
                ref = cam(input_tensor=x, targets=[ClassifierOutputTarget(1), ClassifierOutputTarget(0)])
            model.zero_grad(set_to_none=True)
            np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_predicted_class_is_default_target(effnet):
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        pred = effnet(x).argmax(1).tolist()
    a = compute_cams(effnet, x)
    b = compute_cams(effnet, x, targets=pred)
    np.testing.assert_allclose(a, b, atol=1e-5)
    single = compute_cams(effnet, x[0])  # one (C, H, W) input
    assert single.shape == (1, 64, 64)
    with pytest.raises(ValueError, match="unknown CAM method"):
        compute_cams(effnet, x, method="nope")
    with pytest.raises(ValueError, match="targets"):
        compute_cams(effnet, x, targets=[0, 1])


def test_state_is_restored(effnet):
    torch.manual_seed(3)
    model = timm.create_model("tf_efficientnet_lite0", num_classes=2, pretrained=False)
    model.train()
    model.blocks[0].eval()  # a mixed-mode model must come back exactly as it was
    model.conv_stem.weight.requires_grad_(False)
    model.classifier.weight.grad = torch.ones_like(model.classifier.weight)
    modes = {n: m.training for n, m in model.named_modules()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():  # callers inside no_grad / inference_mode still get CAMs
        compute_cams(model, x, method="gradcam")
    with torch.inference_mode():
        compute_cams(model, torch.randn(2, 3, 64, 64), method="layercam")
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert torch.equal(model.classifier.weight.grad, torch.ones_like(model.classifier.weight))
    assert all(p.grad is None for n, p in model.named_parameters() if n != "classifier.weight")


def test_no_hooks_leak_over_many_calls(effnet):
    before = _hook_count(effnet)
    x = torch.randn(1, 3, 32, 32)
    for i in range(200):
        compute_cams(effnet, x, method=METHODS[i % 4])
    with pytest.raises(ValueError):  # an error inside the CAM must not leak hooks either
        compute_cams(effnet, x, targets=[7])
    assert _hook_count(effnet) == before
