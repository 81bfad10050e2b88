"""Whole-micrograph CAMs: tiles stitched back, the explorer's cam_fn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

timm = pytest.importorskip("timm")
pytest.importorskip("pytorch_grad_cam")

from semcathode.explain._micrograph import (  # noqa: E402
    make_cam_fn,
    micrograph_cam,
    stitch_tiles,
)

pytestmark = pytest.mark.usefixtures("one_thread")


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


def test_micrograph_cam_is_the_stitched_tile_cams(tmp_path, stub_model):
    from semcathode.data._tiles import tile_grid

    stub = stub_model(mode="scale", size=32, stride=1.0)
    rng = np.random.default_rng(3)
    grey = rng.random((64, 96)).astype(np.float32)
    arr = (grey * 255).astype(np.uint8)
    mc = micrograph_cam(stub, grey, arr, method="gradcam")
    assert len(tile_grid(arr.shape, 32, 1.0)) == len(mc.inputs) == 6
    assert mc.cam.shape == grey.shape
    # same resolution and non-overlapping tiles: the stitched map holds each tile's CAM in place
    from semcathode.data._preprocess import resize

    np.testing.assert_allclose(mc.cam[32:64, 64:96], resize(mc.tile_cams[5], (32, 32)), atol=1e-5)
    assert mc.target == int(mc.probs.argmax())


def test_make_cam_fn_for_explorer(stub_model):
    stub = stub_model()
    rng = np.random.default_rng(0)

    def load(row):
        grey = rng.random((70, 90)).astype(np.float32)
        return grey, torch.randn(1, 3, 64, 64)

    fn = make_cam_fn(stub.model, load=load, classes=stub.classes)
    grey, cam = fn(pd.Series({"path": "x"}), "gradcam", "NCM811 formation")
    assert grey.shape == (70, 90) and cam.shape == (64, 64)
    grey, cam = fn(pd.Series({"path": "x"}), "layercam", None)
    assert cam.shape == (64, 64)
