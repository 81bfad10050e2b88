import json

import numpy as np
import pandas as pd
import pytest

from semcathode.manifest import index_folder
from semcathode.preprocess import PreprocessCache, PreprocessParams, build_items, load_bar_free, preprocess_image


@pytest.fixture(scope="module")
def manifest(synthetic_root):
    return index_folder(synthetic_root).head(6)


def test_resize_and_tiles_shapes():
    img = np.random.default_rng(0).random((96, 160)).astype(np.float32)
    r = preprocess_image(img, PreprocessParams("resize", 64))
    assert r.shape == (64, 64) and r.dtype == np.uint8
    t = preprocess_image(img, PreprocessParams("tiles", 32))
    assert t.shape == (3 * 5, 32, 32)
    t2 = preprocess_image(img, PreprocessParams("tiles", 32, tile_scale_um=2.0), pixel_size_um=1.0)
    assert t2.shape[0] == 1 * 2  # 48 x 80 at half resolution -> 1 x 2 tiles
    with pytest.raises(ValueError, match="pixel size"):
        preprocess_image(img, PreprocessParams("tiles", 32, tile_scale_um=2.0))


def test_bar_is_removed_and_shift_applied(manifest):
    row = manifest.iloc[0].copy()
    img = load_bar_free(row)
    assert img.shape[0] == row["bar_row"]
    row["shift"] = json.dumps({"brightness": 0.2})
    shifted = load_bar_free(row)
    assert shifted.mean() > img.mean() + 0.1


def test_cache_hit_miss_and_keying(manifest, tmp_path):
    cache = PreprocessCache(tmp_path / "c")
    p = PreprocessParams("resize", 48)
    row = manifest.iloc[0]
    a = cache.get(row, p)
    path = cache.path(row, p)
    assert path.exists()
    mtime = path.stat().st_mtime_ns
    b = cache.get(row, p)
    assert np.array_equal(a, b) and path.stat().st_mtime_ns == mtime  # hit: not rewritten
    assert cache.path(row, PreprocessParams("resize", 32)) != path  # params in the key
    r2 = row.copy()
    r2["shift"] = json.dumps({"gamma": 1.5})
    assert cache.path(r2, p) != path  # shift in the key
    path.write_bytes(b"garbage")  # a corrupt entry is rebuilt
    assert np.array_equal(cache.get(row, p), a)


def test_build_items_tiles_keep_image_id(manifest, tmp_path):
    items = build_items(manifest, PreprocessParams("tiles", 32), PreprocessCache(tmp_path))
    assert items["image_id"].nunique() == len(manifest)
    assert (items.groupby("image_id")["tile"].apply(lambda s: list(s) == list(range(len(s))))).all()
    res = build_items(manifest, PreprocessParams("resize", 32), PreprocessCache(tmp_path))
    assert len(res) == len(manifest) and (res["tile"] == -1).all()
