"""Grad-CAM: shapes, target layers, hook hygiene, a planted-signal check, outputs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

timm = pytest.importorskip("timm")
pytest.importorskip("pytorch_grad_cam")

from semcathode.explain.cam import (  # noqa: E402
    CAM_METHODS,
    ModelLike,
    cam_files,
    cam_grid,
    cam_quant_table,
    compute_cams,
    deletion_auc,
    deletion_curve,
    energy_on_mask,
    explain_items,
    find_target_layer,
    make_cam_fn,
    overlay,
    save_overlay,
    stitch_tiles,
    structure_map,
    write_gallery,
)
from semcathode.models.export import ExportedModel  # noqa: E402
from semcathode.data.synthetic import make_blob_dataset  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

METHODS = ["gradcam", "gradcampp", "eigencam", "layercam", "hirescam", "xgradcam"]




@pytest.fixture(scope="module")
def effnet() -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model("tf_efficientnet_lite0", num_classes=2, pretrained=False).eval()


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


# --------------------------------------------------------------------------- CAMs on EfficientNet


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


# --------------------------------------------------------------------------- planted signal


class TinyCNN(nn.Module):
    """GAP classifier with a 16x16 last stage (at 64 px).

    The planted-signal test uses this rather than an EfficientNet: at 64 px an
    EfficientNet's last stage is 2x2, too coarse to localise a blob, and 128-px
    EfficientNet training is too slow for a CPU test.
    """

    def __init__(self) -> None:
        super().__init__()

        def block(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU())

        self.features = nn.Sequential(block(3, 16), nn.MaxPool2d(2), block(16, 32), nn.MaxPool2d(2), block(32, 32))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _blob_inputs(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy((images - 0.35) / 0.12).float()[:, None].repeat(1, 3, 1, 1)


@pytest.fixture(scope="module")
def planted():
    """A TinyCNN trained on blob images; held-out test images, labels and blob masks."""
    torch.manual_seed(0)
    images, labels, masks = make_blob_dataset(560, size=64, seed=1)
    x, y = _blob_inputs(images), torch.from_numpy(labels)
    tr, va, te = slice(0, 320), slice(320, 400), slice(400, 560)
    net = TinyCNN()
    epochs, steps = 10, 10
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)
    g = torch.Generator().manual_seed(0)
    best = (-1.0, None)
    for _epoch in range(epochs):
        net.train()
        perm = torch.randperm(320, generator=g)
        for s in range(0, 320, 32):
            idx = perm[s : s + 32]
            loss = nn.functional.cross_entropy(net(x[tr][idx]), y[tr][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad():
            acc = (net(x[va]).argmax(1) == y[va]).float().mean().item()
        if acc >= best[0]:  # keep the best (latest on ties) by validation accuracy
            best = (acc, {k: v.clone() for k, v in net.state_dict().items()})
    net.load_state_dict(best[1])
    net.eval()
    return net, images[te], x[te], labels[te], masks[te]


def test_planted_signal_model_learns(planted):
    net, _, x, labels, _ = planted
    with torch.no_grad():
        acc = (net(x).argmax(1).numpy() == labels).mean()
    assert acc > 0.9


def test_planted_signal_cam_on_blob(planted):
    net, _, x, labels, masks = planted
    pos = np.flatnonzero(labels == 1)
    cams = compute_cams(net, x[pos], method="gradcam", targets=[1] * len(pos), target_layer=net.features[4])
    stats = pd.DataFrame([energy_on_mask(c, masks[i]) for c, i in zip(cams, pos)])
    # a map that ignores the blob (uniform or random) gives ratio ~1 and energy_share ~area_share (~0.08)
    rng = np.random.default_rng(0)
    rand = pd.DataFrame([energy_on_mask(rng.random((64, 64)), masks[i]) for i in pos])
    assert rand["ratio"].mean() < 1.3 and rand["energy_share"].mean() < 0.15
    assert stats["area_share"].mean() < 0.15
    assert stats["ratio"].mean() > 3.0
    assert stats["energy_share"].mean() > 0.3
    assert (stats["ratio"] > 2.0).mean() > 0.9

    auc_cam, auc_rand = [], []
    for k, (c, i) in enumerate(zip(cams[:24], pos[:24])):
        curve_c = deletion_curve(net, x[i], c, 1, steps=8, order="cam", seed=k)
        curve_r = deletion_curve(net, x[i], c, 1, steps=8, order="random", seed=k)
        assert curve_c.shape == (9,) and np.all((curve_c >= 0) & (curve_c <= 1))
        assert curve_c[0] == pytest.approx(curve_r[0], abs=1e-6)  # nothing deleted
        assert curve_c[-1] == pytest.approx(curve_r[-1], abs=1e-6)  # everything blurred
        auc_cam.append(deletion_auc(curve_c))
        auc_rand.append(deletion_auc(curve_r))
    assert np.mean(auc_cam) < np.mean(auc_rand) - 0.1


def test_explain_items_and_quant_table(planted):
    net, images, x, labels, _ = planted
    sel = np.r_[np.flatnonzero(labels == 1)[:3], np.flatnonzero(labels == 0)[:3]]
    cams, rec = explain_items(net, x[sel], list(images[sel]), labels[sel], ["none", "blob"],
                              arm="tiny", steps=4, target_layer=net.features[4])
    assert cams.shape == (6, 64, 64)
    assert len(rec) == 6 and set(rec["label"]) == {"none", "blob"}
    assert rec[["energy_share", "area_share", "ratio", "auc_cam", "auc_random"]].notna().all().all()
    assert rec["area_share"].between(0.15, 0.45).all()
    cams2, rec2 = explain_items(net, x[sel], None, labels[sel], ["none", "blob"], arm="tiny2", steps=4,
                                target="label", target_layer=net.features[4])
    assert (rec2["target"] == rec2["label"]).all()
    table = cam_quant_table(pd.concat([rec, rec2]))
    assert list(table.columns) == ["arm", "label", "n", "energy_share", "area_share", "ratio",
                                   "auc_cam", "auc_random", "auc_gap"]
    assert len(table) == 6  # 2 arms x (2 classes + '(all)')
    allrow = table[(table["arm"] == "tiny") & (table["label"] == "(all)")].iloc[0]
    assert allrow["n"] == 6
    assert allrow["ratio"] == pytest.approx(rec["ratio"].mean())


def test_cam_quant_table_from_dicts():
    recs = [
        {"arm": "a", "label": "x", "energy_share": 0.5, "area_share": 0.25, "ratio": 2.0, "auc_cam": 0.2,
         "auc_random": 0.6},
        {"arm": "a", "label": "x", "energy_share": 0.3, "area_share": 0.25, "ratio": 1.2, "auc_cam": 0.4,
         "auc_random": 0.6},
        {"arm": "a", "label": "y", "energy_share": 0.2, "area_share": 0.2, "ratio": 1.0, "auc_cam": 0.5,
         "auc_random": 0.5},
    ]
    t = cam_quant_table(recs).set_index(["arm", "label"])
    assert t.loc[("a", "x"), "n"] == 2
    assert t.loc[("a", "x"), "energy_share"] == pytest.approx(0.4)
    assert t.loc[("a", "x"), "auc_gap"] == pytest.approx(0.3)
    assert t.loc[("a", "(all)"), "n"] == 3
    assert cam_quant_table([]).empty
    with pytest.raises(ValueError, match="lack columns"):
        cam_quant_table([{"arm": "a", "label": "x"}])


# --------------------------------------------------------------------------- quantitative helpers


def test_energy_on_mask():
    mask = np.zeros((10, 10), bool)
    mask[:5] = True
    e = energy_on_mask(np.ones((10, 10)), mask)
    assert e["area_share"] == pytest.approx(0.5) and e["ratio"] == pytest.approx(1.0)
    e = energy_on_mask(mask.astype(float), mask)
    assert e["energy_share"] == pytest.approx(1.0) and e["ratio"] == pytest.approx(2.0)
    assert np.isnan(energy_on_mask(np.zeros((10, 10)), mask)["energy_share"])
    big = np.zeros((20, 20), bool)
    big[:10] = True  # resized (nearest) to the CAM's shape
    assert energy_on_mask(np.ones((10, 10)), big)["area_share"] == pytest.approx(0.5)


def test_structure_map_finds_lines_and_edges():
    yy, xx = np.mgrid[0:96, 0:96]
    img = np.full((96, 96), 0.3)
    img[(yy - 48) ** 2 + (xx - 30) ** 2 < 15**2] = 0.7  # a bright particle
    img[:, 75:77] = 0.05  # a dark crack
    img += 0.01 * np.random.default_rng(0).standard_normal(img.shape)
    m = structure_map(img)
    assert m.dtype == bool and m.shape == img.shape
    assert 0.15 < m.mean() < 0.45
    assert m[20:80, 74:78].mean() > 0.8  # the crack
    ring = np.abs(np.hypot(yy - 48, xx - 30) - 15) < 1.5
    assert m[ring].mean() > 0.8  # the particle outline
    assert m[40:56, 22:38].mean() < 0.25  # the flat inside: only texture noise (a fixed share is marked)
    assert not structure_map(np.full((32, 32), 0.5)).any()


def test_deletion_auc():
    assert deletion_auc([1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert deletion_auc(np.linspace(1, 0, 9)) == pytest.approx(0.5)


# --------------------------------------------------------------------------- images and files


def test_overlay_at_image_resolution():
    img = np.linspace(0, 1, 100 * 150, dtype=np.float32).reshape(100, 150)
    cam = np.random.default_rng(0).random((7, 7)).astype(np.float32)
    out = overlay(img, cam)
    assert out.shape == (100, 150, 3) and out.dtype == np.uint8
    plain = overlay(img, cam, opacity=0.0)
    np.testing.assert_array_equal(plain[..., 0], np.rint(img * 255).astype(np.uint8))
    rgb = np.zeros((40, 60, 3), np.uint8)
    assert overlay(rgb, cam, opacity=1.0).shape == (40, 60, 3)
    with pytest.raises(ValueError):
        overlay(img, cam, opacity=1.5)


def test_stitch_tiles_reassembles():
    frame = np.random.default_rng(0).random((10, 14)).astype(np.float32)
    positions = [(0, 0), (0, 6), (4, 0), (4, 6), (2, 3)]
    tiles = np.stack([frame[r : r + 6, c : c + 8] for r, c in positions])
    np.testing.assert_allclose(stitch_tiles(tiles, positions, frame.shape), frame, atol=1e-6)
    # overlap is averaged; uncovered pixels are 0; overhanging tiles are clipped
    out = stitch_tiles(np.stack([np.zeros((4, 4)), np.ones((4, 4))]), [(0, 0), (0, 2)], (5, 8))
    np.testing.assert_allclose(out[0, :6], [0, 0, 0.5, 0.5, 1, 1])
    assert out[4].sum() == 0 and out[:, 6:].sum() == 0
    edge = stitch_tiles(np.ones((1, 4, 4)), [(-2, 6)], (5, 8))
    assert edge[:2, 6:].sum() == 4 and edge.sum() == 4
    # CAMs at network resolution, tiles bigger in the frame
    up = stitch_tiles(np.ones((2, 3, 4)), [(0, 0), (0, 8)], (6, 16), tile_shape=(6, 8))
    np.testing.assert_allclose(up, 1.0)


def test_save_overlay_is_atomic_png(tmp_path):
    from PIL import Image

    p = save_overlay(tmp_path / "sub" / "o.png", np.full((30, 40), 0.5, np.float32), np.eye(5))
    assert p == tmp_path / "sub" / "o.png"
    with Image.open(p) as im:
        assert im.size == (40, 30) and im.mode == "RGB"
    assert [f.name for f in p.parent.iterdir()] == ["o.png"]


def test_write_gallery_misclassified_first(tmp_path):
    recs = pd.DataFrame({
        "overlay_path": ["a.png", "b.png", "c d.png", "e.png"],
        "label": ["NCM333 pristine", "x", "<b>bad</b>", "y"],
        "pred": ["NCM333 pristine", "x", "z", "q"],
        "correct": [True, True, False, False],
        "arm": ["ft"] * 4,
        "domain": ["kaist"] * 4,
        "probs": ["p=0.9", "p=0.8", "p=0.4", "p=0.3"],
    })
    page = write_gallery(tmp_path, recs, title="T & T")
    assert page == tmp_path / "gallery.html"
    text = page.read_text()
    srcs = re.findall(r'<img src="([^"]+)"', text)
    assert srcs == ["c%20d.png", "e.png", "a.png", "b.png"]
    assert "<b>bad</b>" not in text and "&lt;b&gt;bad&lt;/b&gt;" in text
    assert "<title>T &amp; T</title>" in text
    assert "2 misclassified" in text
    assert sorted(f.name for f in tmp_path.iterdir()) == ["gallery.html"]
    # without a correct column, label != pred decides; absolute paths become relative
    recs2 = recs.drop(columns="correct").assign(overlay_path=[str(tmp_path / "x" / f) for f in recs.overlay_path])
    srcs2 = re.findall(r'<img src="([^"]+)"', write_gallery(tmp_path, recs2).read_text())
    assert srcs2[0] == "x/c%20d.png" and srcs2[-1] == "x/b.png"


def test_cam_grid():
    import matplotlib.pyplot as plt

    imgs = [np.random.default_rng(i).random((30, 40)) for i in range(5)]
    fig = cam_grid(imgs, [np.eye(4)] * 5, [f"t{i}" for i in range(5)], ncol=3)
    assert len(fig.axes) == 6
    assert fig.axes[0].get_title() == "t0"
    plt.close(fig)


class StubModel(ExportedModel):
    """A loaded model as ``semcathode.models.export.load_model`` gives (tiny EfficientNet, resize mode) that
    records the files it reads."""

    def __init__(self, mode: str = "resize", size: int = 64, stride: float = 1.0) -> None:
        torch.manual_seed(0)
        net = timm.create_model("tf_efficientnet_lite0", num_classes=3, pretrained=False).eval()
        meta = {"preprocess": {"mode": mode, "size": size, "scale_um": 0.0, "tile_stride": stride},
                "normalize": "dataset", "mean": [0.45] * 3, "std": [0.25] * 3}
        super().__init__(net, ["NCM333 pristine", "NCM622 cycled", "NCM811 formation"], meta)
        self.calls: list[Path] = []

    def load_array(self, path, pixel_size_um=None):
        self.calls.append(Path(path))
        return super().load_array(path, pixel_size_um)


def test_cam_files_one_png_per_image(tmp_path):
    from PIL import Image

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    shapes = {}
    for name in ("sub/one.png", "two.tif", "three.jpg"):
        img = (rng.random((96, 128)) * 255).astype(np.uint8)
        Image.fromarray(img).save(src / name)
        shapes[Path(name).stem] = img.shape
    (src / "notes.txt").write_text("not an image")
    other = tmp_path / "elsewhere"
    other.mkdir()
    Image.fromarray((rng.random((80, 100)) * 255).astype(np.uint8)).save(other / "one.png")  # same stem

    stub = StubModel()
    assert isinstance(stub, ModelLike)
    out = src / "cams"  # inside an input folder: its PNGs must not be picked up on a re-run
    paths = cam_files(stub, [src, other / "one.png"], out, method="gradcam")
    assert [p.name for p in paths] == ["one_gradcam.png", "three_gradcam.png", "two_gradcam.png",
                                       "one-2_gradcam.png"]
    assert all(p.parent == out for p in paths)
    for p, call in zip(paths, list(stub.calls)):
        grey, _ = stub.load_array(call)
        with Image.open(p) as im:
            assert im.size == (grey.shape[1], grey.shape[0])  # the bar-free micrograph's own size
    again = cam_files(stub, [src], out, method="eigencam", target="NCM622 cycled")
    assert len(again) == 3 and all(p.name.endswith("_eigencam.png") for p in again)
    with pytest.raises(ValueError, match="unknown target class"):
        cam_files(stub, [src], out, target="NCM999")


def test_cam_files_scale_mode_stitches_tiles(tmp_path):
    from PIL import Image

    Image.fromarray((np.random.default_rng(1).random((96, 128)) * 255).astype(np.uint8)).save(tmp_path / "t.png")
    stub = StubModel(mode="scale", size=32, stride=0.5)
    grey, x = stub.preprocess_path(tmp_path / "t.png")
    assert x.shape[0] > 1
    (p,) = cam_files(stub, [tmp_path / "t.png"], tmp_path / "out", method="gradcam++")
    assert p.name == "t_gradcampp.png"
    with Image.open(p) as im:
        assert im.size == (grey.shape[1], grey.shape[0])


def test_micrograph_cam_is_the_stitched_tile_cams(tmp_path):
    from semcathode.explain.cam import micrograph_cam
    from semcathode.data.preprocess import tile_grid

    stub = StubModel(mode="scale", size=32, stride=1.0)
    rng = np.random.default_rng(3)
    grey = rng.random((64, 96)).astype(np.float32)
    arr = (grey * 255).astype(np.uint8)
    mc = micrograph_cam(stub, grey, arr, method="gradcam")
    assert len(tile_grid(arr.shape, 32, 1.0)) == len(mc.inputs) == 6
    assert mc.cam.shape == grey.shape
    # same resolution and non-overlapping tiles: the stitched map holds each tile's CAM in place
    from semcathode.explain.cam import _resize

    np.testing.assert_allclose(mc.cam[32:64, 64:96], _resize(mc.tile_cams[5], (32, 32)), atol=1e-5)
    assert mc.target == int(mc.probs.argmax())


def test_make_cam_fn_for_explorer():
    stub = StubModel()
    rng = np.random.default_rng(0)

    def load(row):
        grey = rng.random((70, 90)).astype(np.float32)
        return grey, torch.randn(1, 3, 64, 64)

    fn = make_cam_fn(stub.model, load=load, classes=stub.classes)
    grey, cam = fn(pd.Series({"path": "x"}), "gradcam", "NCM811 formation")
    assert grey.shape == (70, 90) and cam.shape == (64, 64)
    grey, cam = fn(pd.Series({"path": "x"}), "layercam", None)
    assert cam.shape == (64, 64)
