"""Training the top on cached trunk maps (issue 18)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import timm
import torch

from semcathode.config._sections import StageConfig
from semcathode.models._learner import fit_stage, seed_everything
from semcathode.models._forward import aggregate_log_probs
from semcathode.models._top import CachedTiles, cached_log_probs, make_top_learner, top_splitter
from semcathode.models._trunk import TrunkCache, TrunkSpec, split_network, trunk_digest

CLASSES = ["smooth", "rough"]


def _items(tmp_path, n_per_class: int = 6) -> pd.DataFrame:
    """Two classes told apart by texture: blurred noise vs fine noise."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    rows = []
    for c, label in enumerate(CLASSES):
        for i in range(n_per_class):
            noise = rng.normal(size=(64, 128))
            img = gaussian_filter(noise, 4.0 if c == 0 else 0.5)
            img = (img - img.min()) / (np.ptp(img) + 1e-9)
            p = tmp_path / "pre" / f"{label}_{i}.npy"
            p.parent.mkdir(parents=True, exist_ok=True)
            np.save(p, (img * 255).astype(np.uint8))
            rows.append({"cache_path": str(p), "label": label})
    return pd.DataFrame(rows)


def _setup(tmp_path):
    torch.manual_seed(0)
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=2, drop_rate=0.0).eval()
    trunk, top = split_network(net, 5)
    spec = TrunkSpec("efficientnet_lite0", 5, trunk_digest(trunk), size=64, tile_stride=1.0)
    cache = TrunkCache(tmp_path / "trunk")
    items = _items(tmp_path)
    cache.build(items, trunk, spec, views=("full", "half"), log=None)
    return net, trunk, top, spec, cache, items


def test_cached_tiles_sample_per_micrograph_and_augment(tmp_path):
    net, trunk, top, spec, cache, items = _setup(tmp_path)
    ds = CachedTiles(items, CLASSES, cache, spec, views=("full", "half"), tiles_per_epoch=3, seed=0)
    assert len(ds) == 3 * len(items)
    assert list(ds.owners()) == [i for i in range(len(items)) for _ in range(3)]
    x, y = ds[0]
    assert tuple(x.shape) == (112, 4, 4) and int(y) == 0
    ev = CachedTiles(items, CLASSES, cache, spec, views=("full",), tiles_per_epoch=0)
    assert len(ev) == 2 * len(items)  # a 64 x 128 frame holds two 64-px tiles
    a, _ = ev[1]
    assert torch.equal(a, torch.from_numpy(np.asarray(cache.load(items.iloc[0], spec, "full")[1], np.float32)))
    assert len(top_splitter(top)) == 3


def test_top_learns_from_the_cache_and_predicts_like_the_network(tmp_path):
    net, trunk, top, spec, cache, items = _setup(tmp_path)
    seed_everything(0)
    train = CachedTiles(items, CLASSES, cache, spec, views=("full", "half"), tiles_per_epoch=4, seed=0)
    valid = CachedTiles(items.head(0), CLASSES, cache, spec, tiles_per_epoch=0)
    learn = make_top_learner(top, train, valid, bs=8)
    hist = fit_stage(learn, StageConfig(epochs=3, freeze_epochs=1, lr=3e-3, validate=False), quiet=True)
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    ev = CachedTiles(items, CLASSES, cache, spec, tiles_per_epoch=0)
    lp, owners, _ = cached_log_probs(top, ev)
    per_image = np.stack([aggregate_log_probs(lp[owners == i]) for i in range(len(items))])
    acc = float((per_image.argmax(1) == ev.y).mean())
    assert acc >= 0.9, acc
    # the trained network (trunk + top) gives the same tile logits from pixels
    from semcathode.models._forward import normalise_batch

    tiles = cache.tiles(items.iloc[0], spec)
    net.eval()
    with torch.no_grad():
        px = torch.log_softmax(net(normalise_batch(tiles, "dataset", spec.mean, spec.std)), 1).numpy()
    assert np.allclose(px, lp[owners == 0], atol=5e-2)


def test_maps_held_in_one_tensor_give_the_same_inputs_and_the_same_fit(tmp_path):
    """The GPU-resident path (``hold_on``), exercised on the CPU: every input, augmentation draw and
    training loss equal the host path's; a CPU never holds them by itself."""
    from semcathode.models._top import fits_on_device

    net, trunk, top, spec, cache, items = _setup(tmp_path)
    host = CachedTiles(items, CLASSES, cache, spec, views=("full", "half"), tiles_per_epoch=3, seed=4)
    held = CachedTiles(items, CLASSES, cache, spec, views=("full", "half"), tiles_per_epoch=3, seed=4).hold_on("cpu")
    assert held.nbytes == host.nbytes > 0
    assert set(held.bank) == {"full", "half"} and held.bank["full"][0].dtype == torch.float16
    for i in range(len(host)):  # same rng draws: same view, tile, flip and turn
        (a, ya), (b, yb) = host[i], held[i]
        assert torch.equal(a, b) and int(ya) == int(yb)
    ev_host = CachedTiles(items, CLASSES, cache, spec, tiles_per_epoch=0)
    ev_held = CachedTiles(items, CLASSES, cache, spec, tiles_per_epoch=0, device="cpu")
    assert torch.equal(torch.stack([ev_host[i][0] for i in range(len(ev_host))]),
                       torch.stack([ev_held[i][0] for i in range(len(ev_held))]))
    try:
        held.hold_on("cpu")
    except ValueError as exc:
        assert "already held" in str(exc)
    else:
        raise AssertionError("holding twice was accepted")
    assert not fits_on_device(1, "cpu")

    losses = []
    for hold in (False, True):
        _, _, top2, _, _, _ = _setup(tmp_path / f"h{hold}")
        seed_everything(0)
        train = CachedTiles(items, CLASSES, cache, spec, views=("full", "half"), tiles_per_epoch=2, seed=0)
        valid = CachedTiles(items, CLASSES, cache, spec, tiles_per_epoch=0)
        if hold:
            train.hold_on("cpu"), valid.hold_on("cpu")
        learn = make_top_learner(top2, train, valid, bs=8)
        hist = fit_stage(learn, StageConfig(epochs=2, freeze_epochs=0, lr=3e-3), quiet=True)
        losses.append(hist[["train_loss", "valid_loss"]].to_numpy(float))
    assert np.allclose(losses[0], losses[1], rtol=1e-5, atol=1e-6), losses
