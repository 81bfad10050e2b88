"""Overlays of a CAM on its micrograph."""

from __future__ import annotations

import numpy as np
import pytest

from semcathode.explain._overlays import overlay, save_overlay


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


def test_save_overlay_is_atomic_png(tmp_path):
    from PIL import Image

    p = save_overlay(tmp_path / "sub" / "o.png", np.full((30, 40), 0.5, np.float32), np.eye(5))
    assert p == tmp_path / "sub" / "o.png"
    with Image.open(p) as im:
        assert im.size == (40, 30) and im.mode == "RGB"
    assert [f.name for f in p.parent.iterdir()] == ["o.png"]
