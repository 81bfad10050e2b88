import json

import numpy as np
import pytest

from semcathode.data._manifest import index_folder
from semcathode.data._preprocess import PreprocessCache, PreprocessParams, build_items, load_bar_free, preprocess_image


@pytest.fixture(scope="module")
def manifest(synthetic_root):
    return index_folder(synthetic_root).head(6)


def test_resize_and_scale_shapes():
    img = np.random.default_rng(0).random((96, 160)).astype(np.float32)
    r = preprocess_image(img, PreprocessParams("resize", 64))
    assert r.shape == (64, 64) and r.dtype == np.uint8
    native = preprocess_image(img, PreprocessParams("scale", 32, scale_um=0.0))
    assert native.shape == (96, 160)  # scale 0: the frame as it is
    half = preprocess_image(img, PreprocessParams("scale", 32, scale_um=2.0), pixel_size_um=1.0)
    assert half.shape == (48, 80)  # 1 µm/px -> 2 µm/px: half the pixels each way
    small = preprocess_image(img, PreprocessParams("scale", 64, scale_um=4.0), pixel_size_um=1.0)
    assert small.shape == (64, 107)  # never below the input size: enlarged, aspect kept
    with pytest.raises(ValueError, match="pixel size"):
        preprocess_image(img, PreprocessParams("scale", 32, scale_um=2.0))
    with pytest.raises(ValueError, match="mode"):
        preprocess_image(img, PreprocessParams("tiles", 32))


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


def test_build_items_one_row_per_micrograph(manifest, tmp_path):
    items = build_items(manifest, PreprocessParams("scale", 32, scale_um=1.4), PreprocessCache(tmp_path))
    assert list(items["image_id"]) == list(manifest.index)
    assert (items["size"] == 32).all() and (items["height"] >= 32).all() and (items["width"] == 80).all()
    res = build_items(manifest, PreprocessParams("resize", 32), PreprocessCache(tmp_path))
    assert len(res) == len(manifest) and (res["height"] == 32).all() and (res["width"] == 32).all()


def test_scale_cache_key_ignores_the_crop_size(manifest, tmp_path):
    cache = PreprocessCache(tmp_path)
    row = manifest.iloc[0]
    a = cache.path(row, PreprocessParams("scale", 32, scale_um=1.4))
    assert a == cache.path(row, PreprocessParams("scale", 64, scale_um=1.4))  # the cached frame does not depend on it
    assert a != cache.path(row, PreprocessParams("scale", 32, scale_um=0.7))
    r2 = row.copy()
    r2["pixel_size_um"] = 0.35
    assert cache.path(r2, PreprocessParams("scale", 32, scale_um=1.4)) != a  # the pixel size is in the key
