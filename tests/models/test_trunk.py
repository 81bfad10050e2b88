"""The trunk/top split and the trunk-activation cache (issue 18)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import timm
import torch

from semcathode.data._preprocess import PreprocessCache, PreprocessParams
from semcathode.data._tiles import cut_tiles
from semcathode.models._forward import normalise_batch
from semcathode.models._trunk import TrunkCache, TrunkSpec, split_network, trunk_digest, view_of

MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


def _net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=3).eval()


def _item(tmp_path, name: str, seed: int = 0, shape=(80, 112)) -> dict:
    rng = np.random.default_rng(seed)
    p = tmp_path / "pre" / f"{name}.npy"
    p.parent.mkdir(parents=True, exist_ok=True)
    np.save(p, rng.integers(0, 256, shape, dtype=np.uint8))
    return {"cache_path": str(p), "image_id": name}


def _spec(trunk, **kw) -> TrunkSpec:
    base = TrunkSpec(backbone="efficientnet_lite0", depth=trunk.depth, digest=trunk_digest(trunk), size=64,
                     tile_stride=1.0, mean=MEAN, std=STD)
    return replace(base, **kw)


def test_split_network_shares_modules_and_composes_to_the_network():
    net = _net()
    trunk, top = split_network(net, 5)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(top(trunk(x)), net(x), atol=1e-5)
    # training the top changes the network itself (no copy)
    with torch.no_grad():
        top.classifier.weight.add_(1.0)
        assert torch.allclose(top(trunk(x)), net(x), atol=1e-5)
    own = {id(p) for p in net.parameters()}
    assert {id(p) for p in trunk.parameters()} | {id(p) for p in top.parameters()} == own
    assert not ({id(p) for p in trunk.parameters()} & {id(p) for p in top.parameters()})
    with pytest.raises(ValueError, match="outside 0..7"):
        split_network(net, 8)


def test_cached_path_equals_the_pixel_path(tmp_path):
    net = _net()
    trunk, top = split_network(net, 5)
    items = __import__("pandas").DataFrame([_item(tmp_path, "a", 0), _item(tmp_path, "b", 1, (64, 150))])
    cache = TrunkCache(tmp_path / "trunk")
    spec = _spec(trunk)
    paths = cache.build(items, trunk, spec, views=("full", "half"), log=None)
    assert not any(m.training for m in net.modules())  # build left the shared modules in eval mode
    assert all(p.exists() for ps in paths.values() for p in ps)
    for _, row in items.iterrows():
        for view in ("full", "half"):
            maps = cache.load(row, spec, view)
            assert maps.dtype == np.float16 and maps.shape[1:] == (112, 4, 4)
            tiles, _ = cut_tiles(view_of(np.load(row["cache_path"]), view), 64, 1.0)
            with torch.no_grad():
                from_pixels = net(normalise_batch(tiles, "dataset", MEAN, STD))
                from_cache = top(torch.from_numpy(np.asarray(maps, dtype=np.float32)))
            assert from_cache.shape == from_pixels.shape
            assert torch.allclose(from_cache, from_pixels, atol=2e-2, rtol=1e-2)  # float16 maps


def test_cache_keys_change_with_what_changes_the_maps(tmp_path):
    trunk, _ = split_network(_net(0), 5)
    item = _item(tmp_path, "a")
    cache = TrunkCache(tmp_path / "trunk")
    spec = _spec(trunk)
    k = cache.key(item, spec, "full")
    other_trunk, _ = split_network(_net(1), 5)
    changed = {
        "weights": cache.key(item, _spec(other_trunk), "full"),
        "depth": cache.key(item, replace(spec, depth=4), "full"),
        "tile": cache.key(item, replace(spec, size=96), "full"),
        "grid": cache.key(item, replace(spec, tile_stride=0.5), "full"),
        "view": cache.key(item, spec, "half"),
        "normalisation": cache.key(item, replace(spec, normalize="per_image"), "full"),
        "backbone": cache.key(item, replace(spec, backbone="efficientnet_b0"), "full"),
    }
    assert all(v != k for v in changed.values()), changed
    assert cache.key(dict(item), _spec(trunk), "full") == k  # same inputs, same key
    # scale, pixel size and the target's acquisition shift reach the key through the
    # pre-processing entry the item points at
    pre = PreprocessCache(tmp_path / "pp")
    row = {"sha256": "ab" * 32, "bar_row": 90, "shift": "", "pixel_size_um": 0.26}
    p = PreprocessParams(mode="scale", size=64, scale_um=0.26)
    base = pre.path(row, p)
    variants = [pre.path({**row, "shift": '{"brightness": 0.1}'}, p), pre.path(row, replace(p, scale_um=0.5)),
                pre.path({**row, "pixel_size_um": 0.3}, p)]
    keys = {cache.key({"cache_path": str(v)}, spec, "full") for v in [base, *variants]}
    assert len(keys) == 4
    with pytest.raises(ValueError, match="unknown trunk view"):
        cache.key(item, spec, "quarter")


def test_build_computes_each_entry_once_and_refuses_other_weights(tmp_path, monkeypatch):
    trunk, _ = split_network(_net(), 5)
    items = __import__("pandas").DataFrame([_item(tmp_path, "a")])
    cache = TrunkCache(tmp_path / "trunk")
    spec = _spec(trunk)
    lines: list[str] = []
    cache.build(items, trunk, spec, log=lines.append)
    assert lines and "tiles/s" in lines[-1] and "ETA" in lines[-1]
    calls = []
    monkeypatch.setattr(TrunkCache, "_forward", staticmethod(lambda *a: calls.append(1)))
    cache.build(items, trunk, spec, log=None)  # everything cached: no forward pass
    assert not calls
    other, _ = split_network(_net(1), 5)
    with pytest.raises(ValueError, match="do not match"):
        cache.build(items, other, spec, log=None)


def test_training_rows_keep_a_fixed_subset_of_their_tiles(tmp_path):
    net = _net()
    trunk, top = split_network(net, 5)
    pd = __import__("pandas")
    rows = [{**_item(tmp_path, "a", 0, (128, 320)), "split": "train"},   # a 2 x 5 grid of 64-px tiles
            {**_item(tmp_path, "b", 1, (128, 320)), "split": "test"}]
    items = pd.DataFrame(rows)
    spec = _spec(trunk)
    full, kept = TrunkCache(tmp_path / "t"), TrunkCache(tmp_path / "t", train_tiles=3)
    assert kept.kept(rows[0]) == 3 and kept.kept(rows[1]) == 0 and full.kept(rows[0]) == 0
    assert kept.key(rows[0], spec, "full") != full.key(rows[0], spec, "full")  # the subset is part of the key
    assert kept.key(rows[1], spec, "full") == full.key(rows[1], spec, "full")  # evaluation rows: unchanged
    kept.build(items, trunk, spec, views=("full", "half"), log=None)
    all_tiles, _ = cut_tiles(np.load(rows[0]["cache_path"]), 64, 1.0)
    sub = kept.tiles(rows[0], spec, "full")
    assert len(all_tiles) == 10 and sub.shape == (3, 64, 64)
    picked = [int(np.flatnonzero((all_tiles == t).all(axis=(1, 2)))[0]) for t in sub]
    assert picked == sorted(set(picked))  # distinct tiles of the grid, in grid order
    assert np.array_equal(TrunkCache(tmp_path / "u", train_tiles=3).tiles(rows[0], spec, "full"), sub)  # fixed
    half = kept.tiles(rows[0], spec, "half")
    halves, _ = cut_tiles(view_of(np.load(rows[0]["cache_path"]), "half"), 64, 1.0)
    assert np.array_equal(half, halves[picked])  # the same tiles in every view
    assert kept.load(rows[0], spec, "full").shape[0] == 3 and kept.load(rows[1], spec, "full").shape[0] == 10
    with torch.no_grad():  # the kept maps are those tiles' maps
        got = top(torch.from_numpy(np.asarray(kept.load(rows[0], spec, "full"), dtype=np.float32)))
        want = net(normalise_batch(sub, "dataset", MEAN, STD))
    assert torch.allclose(got, want, atol=2e-2, rtol=1e-2)


def test_layer_features_from_the_cache_equal_those_from_pixels(tmp_path):
    """Familiarity layers: stages inside the trunk are read from the cache's pooled stage outputs, the
    trunk's output from the cached maps, later blocks and the final features from the top; together they
    equal the pixel path's taps (to float16 tolerance)."""
    from semcathode.models._forward import predict_arrays
    from semcathode.models._top import CachedTiles, cached_outputs

    pd = __import__("pandas")
    net = _net()
    trunk, top = split_network(net, 5)
    items = pd.DataFrame([_item(tmp_path, "a", 0, (128, 192)), _item(tmp_path, "b", 1, (64, 64))])
    cache, spec = TrunkCache(tmp_path / "t"), _spec(trunk)
    cache.build(items, trunk, spec, log=None)
    layers = ["blocks.2", "blocks.4", "blocks.5", "blocks.6", "final"]
    got = cached_outputs(top, CachedTiles(items, (), cache, spec, tiles_per_epoch=0), layers=layers).layer_features
    want = predict_arrays(net, [np.load(p) for p in items["cache_path"]], 64, "dataset", MEAN, STD,
                          layers=layers).layer_features
    assert sorted(got) == sorted(want) == sorted(layers)
    for name in layers:
        assert got[name].shape == want[name].shape == (2, {"blocks.2": 40, "blocks.4": 112, "blocks.5": 192, "blocks.6": 320,
                                                          "final": 1280}[name])
        assert np.allclose(got[name], want[name], atol=2e-2, rtol=1e-2), name
    with pytest.raises(ValueError, match="blocks.9"):  # not a stage of the network
        cached_outputs(top, CachedTiles(items, (), cache, spec, tiles_per_epoch=0), layers=["blocks.9"])
    entry = cache.path(items.iloc[0], spec, "full")
    assert TrunkCache.stages_path(entry).is_file()  # beside the maps: the pooled output of every trunk stage
    stages = cache.load_stages(items.iloc[0], spec, "full")
    assert sorted(stages) == [f"blocks.{j}" for j in range(5)]
    assert np.allclose(stages["blocks.4"], np.asarray(cache.load(items.iloc[0], spec, "full"), np.float32).mean((2, 3)),
                       atol=1e-2)  # the last stage's pooled output is the pooled cached maps
    with pytest.raises(ValueError, match="not modules of the network"):
        predict_arrays(net, [np.load(items["cache_path"][0])], 64, "dataset", MEAN, STD, layers=["blocks.9"])


def test_bfloat16_trunk_is_its_own_cache_entry_and_close_to_float32(tmp_path):
    """model.trunk_dtype = bfloat16: the spec key changes (a float32 entry is never read for it) and the
    maps stay within a few per cent of the float32 ones, so the top's predictions agree."""
    pd = __import__("pandas")
    net = _net()
    trunk, top = split_network(net, 5)
    items = pd.DataFrame([_item(tmp_path, "a", 0, (128, 192))])
    spec32 = _spec(trunk)
    spec16 = replace(spec32, dtype="bfloat16")
    cache = TrunkCache(tmp_path / "t")
    assert spec16.key() != spec32.key() and cache.path(items.iloc[0], spec16, "full") != cache.path(
        items.iloc[0], spec32, "full")
    cache.build(items, trunk, spec32, log=None)
    cache.build(items, trunk, spec16, log=None)
    m32 = np.asarray(cache.load(items.iloc[0], spec32, "full"), dtype=np.float32)
    m16 = np.asarray(cache.load(items.iloc[0], spec16, "full"), dtype=np.float32)
    assert m32.shape == m16.shape and not np.array_equal(m32, m16)
    assert np.abs(m16 - m32).max() <= 0.1 * np.abs(m32).max()
    with torch.no_grad():
        p32 = torch.softmax(top(torch.from_numpy(m32)), 1)
        p16 = torch.softmax(top(torch.from_numpy(m16)), 1)
    assert (p16 - p32).abs().max() < 0.1
