"""Quantitative CAM checks: structure map, energy on a mask, deletion curves, the planted-signal check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

timm = pytest.importorskip("timm")
pytest.importorskip("pytorch_grad_cam")

from semcathode.explain._measures import (  # noqa: E402
    cam_quant_table,
    deletion_auc,
    deletion_curve,
    energy_on_mask,
    explain_items,
    structure_map,
)
from semcathode.explain._compute import compute_cams  # noqa: E402
from semcathode.data._synthetic import make_blob_dataset  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


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


def test_a_folded_forward_model_gives_the_same_records_and_leaves_the_cam_model_alone(planted):
    """The forward-only passes (probabilities, deletion curves) may run on a BatchNorm-folded copy:
    the records agree with the model's own to float rounding, and the CAM still hooks the original."""
    import copy

    from semcathode.models._export import fold_batchnorm

    net, images, x, labels, _ = planted
    sel = np.r_[np.flatnonzero(labels == 1)[:2], np.flatnonzero(labels == 0)[:2]]
    fast = fold_batchnorm(copy.deepcopy(net).eval()).to(memory_format=torch.channels_last)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    kw = dict(arm="tiny", steps=4, target_layer=net.features[4])
    cams, rec = explain_items(net, x[sel], list(images[sel]), labels[sel], ["none", "blob"], **kw)
    cams_f, rec_f = explain_items(net, x[sel], list(images[sel]), labels[sel], ["none", "blob"], forward_model=fast, **kw)
    np.testing.assert_array_equal(cams, cams_f)
    assert (rec["pred"] == rec_f["pred"]).all()
    cols = ["prob_target", "auc_cam", "auc_random"]
    np.testing.assert_allclose(rec[cols].to_numpy(float), rec_f[cols].to_numpy(float), atol=1e-5)
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
