"""Tests for physical-scale input and whole-micrograph prediction (semcathode.data._preprocess, .data,
.predict, .trust, .export): crops, tile grids, aggregation, scale invariance, calibration, familiarity."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from semcathode.data._loaders import crop_array
from semcathode.io._databar import crop_data_bar
from semcathode.io._read import read_sem
from semcathode.data._manifest import index_folder
from semcathode.models._forward import aggregate_log_probs, predict_arrays
from semcathode.models._scores import auroc, expected_calibration_error, fit_temperature, knn_ood_score
from semcathode.data._inputs import crop_items, grid_items
from semcathode.data._preprocess import (
    PreprocessCache,
    PreprocessParams,
    build_items,
    preprocess_image,
    resample_to_scale,
)
from semcathode.data._tiles import cut_tiles, tile_grid

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def manifest(synthetic_root):
    return index_folder(synthetic_root).head(6)


# --------------------------------------------------------------------------- scale and crops


def test_cached_frame_is_at_the_configured_scale(manifest, tmp_path):
    params = PreprocessParams("scale", 32, scale_um=1.4)  # synthetic frames are 0.7 µm/px
    items = build_items(manifest, params, PreprocessCache(tmp_path))
    for r in items.itertuples():
        assert r.pixel_size_um == pytest.approx(0.7)
        assert r.height == round(r.bar_row * 0.7 / 1.4) and r.width == round(160 * 0.7 / 1.4)
        assert r.size == 32


def test_random_crops_stay_inside_the_bar_free_frame(manifest, tmp_path):
    params = PreprocessParams("scale", 32, scale_um=1.4)
    items = build_items(manifest, params, PreprocessCache(tmp_path))
    train = crop_items(items, k=3)
    assert len(train) == 3 * len(items) and (train["crop_y"] == -1).all()
    rng_state = np.random.default_rng(0)
    seen = set()
    for _, row in train.iterrows():
        arr = np.load(row["cache_path"])
        h, w = arr.shape
        assert h < row["bar_row"]  # the cached frame is the bar-free part only, resampled
        crop = crop_array(row, arr)
        assert crop.shape == (32, 32)
        hits = [(y, x) for y in range(h - 31) for x in range(w - 31) if np.array_equal(arr[y : y + 32, x : x + 32], crop)]
        assert hits, "a crop must be a window of the cached frame"
        seen.add(hits[0])
    assert len(seen) > len(items)  # random positions, not one fixed crop
    del rng_state
    fixed = train.iloc[0].copy()
    fixed["crop_y"], fixed["crop_x"] = 10**6, 0
    with pytest.raises(ValueError, match="outside"):
        crop_array(fixed)


def test_tile_grid_covers_the_frame_edge_to_edge():
    for shape, size, stride in [((45, 80), 32, 1.0), ((96, 128), 32, 0.5), ((32, 32), 32, 1.0), ((33, 200), 32, 1.0)]:
        pos = tile_grid(shape, size, stride)
        cover = np.zeros(shape, int)
        for y, x in pos:
            assert 0 <= y <= shape[0] - size and 0 <= x <= shape[1] - size
            cover[y : y + size, x : x + size] += 1
        assert cover.min() >= 1
        ny = math.ceil(max(0, shape[0] - size) / (stride * size)) + 1
        nx = math.ceil(max(0, shape[1] - size) / (stride * size)) + 1
        assert len(pos) == ny * nx


def test_grid_items_list_every_tile(manifest, tmp_path):
    items = build_items(manifest, PreprocessParams("scale", 32, scale_um=1.4), PreprocessCache(tmp_path))
    tiles = grid_items(items)
    for (iid, g), (_, r) in zip(tiles.groupby("image_id", sort=False), items.iterrows()):
        assert list(zip(g["crop_y"], g["crop_x"])) == tile_grid((r.height, r.width), 32)
        assert list(g["tile"]) == list(range(len(g)))
    center = grid_items(items, center_only=True)
    assert len(center) == len(items)


def test_downsampled_copy_with_doubled_pixel_size_gives_the_same_input(manifest, tmp_path):
    """A micrograph and a 2x-downsampled copy that keeps its sidecar (so the pixel size doubles)
    are brought to the same network input."""
    src = Path(manifest["path"].iloc[0])
    with Image.open(src) as im:
        big = im.convert("L").resize((im.width * 2, im.height * 2), Image.Resampling.LANCZOS)
    hi = tmp_path / "hi.png"
    big.save(hi)
    shutil.copy(src.with_name(src.name + ".txt"), hi.with_name("hi.png.txt"))
    lo = tmp_path / "lo.png"
    with Image.open(hi) as im:
        im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS).save(lo)
    shutil.copy(src.with_name(src.name + ".txt"), lo.with_name("lo.png.txt"))  # same sidecar: Frame Size unchanged
    a, b = read_sem(hi), read_sem(lo)
    assert b.meta.pixel_size_um == pytest.approx(2 * a.meta.pixel_size_um, rel=1e-6)
    params = PreprocessParams("scale", 32, scale_um=1.4)
    xa = preprocess_image(crop_data_bar(a.image, a.meta)[0], params, a.meta.pixel_size_um)
    xb = preprocess_image(crop_data_bar(b.image, b.meta)[0], params, b.meta.pixel_size_um)
    # the data bar is found independently in each copy (a few rows apart at most); the frame above it matches
    assert abs(xa.shape[0] - xb.shape[0]) <= 0.05 * xa.shape[0] and xa.shape[1] == xb.shape[1]
    h = min(xa.shape[0], xb.shape[0])
    diff = np.abs(xa[:h].astype(float) - xb[:h].astype(float))
    assert diff.mean() < 4.0  # grey levels out of 255: the same picture, up to resampling noise


def test_missing_pixel_size_is_an_error_naming_the_file(tmp_path):
    p = tmp_path / "no_sidecar.png"
    Image.fromarray((np.random.default_rng(0).random((90, 120)) * 255).astype(np.uint8)).save(p)
    img = read_sem(p)
    assert img.meta.pixel_size_um is None or not np.isfinite(img.meta.pixel_size_um)
    with pytest.raises(ValueError, match="no_sidecar.png.*pixel size"):
        preprocess_image(img.image, PreprocessParams("scale", 32, scale_um=1.0), img.meta.pixel_size_um, name=str(p))
    # an explicit pixel size makes it usable
    out = resample_to_scale(img.image, 0.5, 1.0, min_side=32)
    assert out.shape == (45, 60)


# --------------------------------------------------------------------------- aggregation


class _TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.conv(x).relu().mean(dim=(2, 3)))


def test_aggregation_is_the_mean_of_the_tiles_log_probabilities():
    net = _TinyNet().eval()
    rng = np.random.default_rng(1)
    arrays = [(rng.random((40, 70)) * 255).astype(np.uint8), (rng.random((16, 16)) * 255).astype(np.uint8)]
    mo = predict_arrays(net, arrays, 16, "dataset", [0.5] * 3, [0.25] * 3, stride=1.0)
    for arr, lp, n in zip(arrays, mo.log_probs, mo.n_tiles):
        tiles, _ = cut_tiles(arr, 16)
        assert n == len(tiles)
        x = (torch.from_numpy(tiles.astype(np.float32) / 255.0)[:, None].expand(-1, 3, -1, -1) - 0.5) / 0.25
        with torch.no_grad():
            tile_lp = torch.log_softmax(net(x), 1).numpy()
        mean = tile_lp.mean(0)
        expected = mean - np.log(np.exp(mean).sum())
        np.testing.assert_allclose(lp, expected, atol=1e-5)
    # mean_prob is a different rule, and both stay normalised
    lp = np.log(np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.2, 0.7, 0.1]]))
    a, b = aggregate_log_probs(lp, "mean_log_prob"), aggregate_log_probs(lp, "mean_prob")
    assert np.exp(a).sum() == pytest.approx(1) and np.exp(b).sum() == pytest.approx(1)
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match="aggregation"):
        aggregate_log_probs(lp, "vote")


def test_tile_agreement_counts_tiles_that_vote_for_the_prediction():
    net = _TinyNet().eval()
    arr = (np.random.default_rng(2).random((48, 48)) * 255).astype(np.uint8)
    mo = predict_arrays(net, [arr], 16, "dataset", [0.5] * 3, [0.25] * 3)
    votes = mo.tile_preds[0]
    assert mo.tile_agreement[0] == pytest.approx(float((votes == mo.log_probs[0].argmax()).mean()))


# --------------------------------------------------------------------------- calibration and familiarity


def test_fit_temperature_recovers_the_generating_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 5)) * 3
    true_t = 2.5
    p = np.exp(logits / true_t)
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(5, p=row) for row in p])
    t = fit_temperature(logits, y)
    assert t == pytest.approx(true_t, rel=0.1)
    over = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ece_before = expected_calibration_error(over, y)
    ece_after = expected_calibration_error(p, y)
    assert ece_after < 0.03 < ece_before


def test_knn_ood_score_and_auroc():
    rng = np.random.default_rng(0)
    bank = rng.normal(size=(50, 8)) + np.array([5.0] + [0.0] * 7)
    near = rng.normal(size=(20, 8)) + np.array([5.0] + [0.0] * 7)
    far = rng.normal(size=(20, 8)) + np.array([0.0, 5.0] + [0.0] * 6)
    s_near, s_far = knn_ood_score(bank, near, k=5), knn_ood_score(bank, far, k=5)
    assert s_far.mean() > s_near.mean()
    assert auroc(s_near, s_far) > 0.95
    self_scores = knn_ood_score(bank, bank, k=1, exclude_self=True)
    assert (self_scores > 1e-9).all()  # the row itself is not its own neighbour
    with pytest.raises(ValueError, match="empty"):
        knn_ood_score(np.zeros((0, 8)), near)


def test_a_compiled_network_gives_the_eager_predictions_and_is_used_only_where_it_can_be():
    """``predict_tiles(compiled=)``: torch.compile's graph (really compiled, here on the CPU) for full
    batches that need no layer taps; the eager network for the last, shorter batch and for taps."""
    from semcathode.models._forward import predict_tiles

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 3)).eval()
    graph = torch.compile(net, dynamic=False)
    calls = []

    def spy(x):
        calls.append(len(x))
        return graph(x)

    tiles = np.random.default_rng(0).integers(0, 255, (21, 16, 16), dtype=np.uint8)
    owner = np.repeat(np.arange(7), 3)
    eager = predict_tiles(net, tiles, owner, 7, "dataset", (0.5,) * 3, (0.25,) * 3, bs=8)
    fast = predict_tiles(net, tiles, owner, 7, "dataset", (0.5,) * 3, (0.25,) * 3, bs=8, compiled=spy)
    assert calls == [8, 8]  # the 5-tile remainder ran eagerly: no second graph for another shape
    assert np.allclose(fast.log_probs, eager.log_probs, atol=1e-5)
    calls.clear()
    tapped = predict_tiles(net, tiles, owner, 7, "dataset", (0.5,) * 3, (0.25,) * 3, bs=8, compiled=spy,
                           layers=["1"])
    assert calls == [] and tapped.layer_features["1"].shape == (7, 8)  # a tap needs the eager modules' hooks
    assert np.allclose(tapped.log_probs, eager.log_probs, atol=1e-5)


def test_the_batch_size_does_not_change_the_predictions():
    """Every forward pass batches tiles (4 on a CPU by default, :func:`forward_batch`): the answer per
    micrograph is the same for any batch size."""
    from semcathode.models._forward import forward_batch

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 3)).eval()
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 255, (40, 56), dtype=np.uint8) for _ in range(3)]
    runs = [predict_arrays(net, arrays, 16, "dataset", (0.5,) * 3, (0.25,) * 3, bs=bs)
            for bs in (None, 1, 5, 64)]
    for r in runs[1:]:
        np.testing.assert_allclose(r.log_probs, runs[0].log_probs, atol=1e-6)
        assert [list(t) for t in r.tile_preds] == [list(t) for t in runs[0].tile_preds]
    assert forward_batch("cpu") == 4 and forward_batch("cpu", 1000, size=448) == 16
