"""Tests for semcathode.data._synthetic_micrograph (one synthetic SEM micrograph)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.morphology import black_tophat, disk

from semcathode.data._synthetic_micrograph import default_bar_height, make_micrograph

COMPS = ("NCM333", "NCM622", "NCM811")
STATES = ("pristine", "formation", "cycled")


def _granulometry_radius(img: np.ndarray) -> int:
    """Radius of the disc whose opening removes half the (Otsu) foreground area."""
    a = ndimage.gaussian_filter(img.astype(np.float64) / 255.0, 2.0)
    fg = a > threshold_otsu(a)
    total = fg.sum()
    depth = ndimage.distance_transform_edt(fg)
    for r in range(1, 60):
        # opening by a disc of radius r == union of the discs that fit inside fg
        core = depth > r
        if not core.any():
            return r
        opened = ndimage.distance_transform_edt(~core) <= r
        if (opened & fg).sum() < 0.5 * total:
            return r
    return 60


def _thin_dark_fraction(img: np.ndarray) -> float:
    """Fraction of pixels on thin dark lines (black top-hat with a small disc)."""
    a = ndimage.gaussian_filter(img.astype(np.float64) / 255.0, 0.7)
    return float((black_tophat(a, disk(2)) > 0.15).mean())



# ------------------------------------------------------------------ make_micrograph


def test_shape_dtype_and_default_size():
    img = make_micrograph("NCM622", "formation", seed=0)
    assert img.shape == (240, 320) and img.dtype == np.uint8
    img = make_micrograph("NCM811", "cycled", seed=0, size=(128, 128))
    assert img.shape == (128, 128) and img.dtype == np.uint8


def test_determinism():
    a = make_micrograph("NCM333", "cycled", seed=5)
    b = make_micrograph("NCM333", "cycled", seed=5)
    c = make_micrograph("NCM333", "cycled", seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # the class is part of the seed: same seed, other class -> other image
    assert not np.array_equal(a, make_micrograph("NCM333", "pristine", seed=5))


def test_unknown_class_raises():
    with pytest.raises(ValueError, match="NCM999"):
        make_micrograph("NCM999", "pristine", 0)
    with pytest.raises(ValueError, match="aged"):
        make_micrograph("NCM333", "aged", 0)
    # short composition names are accepted
    np.testing.assert_array_equal(make_micrograph("333", "pristine", 1),
                                  make_micrograph("NCM333", "pristine", 1))


def test_data_bar_present_and_absent():
    H, W = 240, 320
    hb = default_bar_height(H)
    assert hb == 16 and default_bar_height(960) == 64
    img = make_micrograph("NCM622", "pristine", 1, size=(H, W))
    band = img[-hb:]
    above = img[: H - hb]
    assert np.median(band) < 30  # black band
    assert band.max() > 200  # white text/scale bar
    assert (band > 200).mean() > 0.02
    # a long white horizontal line (scale bar) somewhere in the band
    assert max(np.convolve((row > 200).astype(int), np.ones(W // 5, int), "valid").max()
               for row in band) == W // 5
    assert np.median(above[-hb:]) > 60  # the micrograph itself is not a dark band
    # the bar layout does not depend on the class (no label leak)
    other = make_micrograph("NCM811", "cycled", 9, size=(H, W))
    np.testing.assert_array_equal(band, other[-hb:])

    nobar = make_micrograph("NCM622", "pristine", 1, size=(H, W), bar=False)
    assert nobar.shape == (H, W)
    assert np.median(nobar[-hb:]) > 60
    assert abs(float(nobar[-hb:].mean()) - float(nobar.mean())) < 25


def test_custom_bar_height():
    img = make_micrograph("NCM622", "pristine", 1, size=(240, 320), bar_height=30)
    assert np.median(img[-30:]) < 30
    assert np.median(img[-40:-30]) > 60


def test_brightness_offset_shifts_micrograph_only():
    a = make_micrograph("NCM622", "pristine", 2).astype(float)
    b = make_micrograph("NCM622", "pristine", 2, brightness=0.1).astype(float)
    hb = default_bar_height(240)
    assert b[:-hb].mean() - a[:-hb].mean() == pytest.approx(25.5, abs=3)
    np.testing.assert_array_equal(a[-hb:], b[-hb:])


def test_particle_size_ordered_by_composition():
    sizes = {}
    for comp in COMPS:
        sizes[comp] = np.mean([
            _granulometry_radius(make_micrograph(comp, st, seed, bar=False))
            for st in ("pristine", "formation") for seed in range(2)
        ])
    assert sizes["NCM333"] > 1.2 * sizes["NCM622"], sizes
    assert sizes["NCM622"] > 1.2 * sizes["NCM811"], sizes


def test_cycled_has_more_thin_dark_lines():
    for comp in COMPS:
        pri = np.mean([_thin_dark_fraction(make_micrograph(comp, "pristine", s, bar=False))
                       for s in range(3)])
        cyc = np.mean([_thin_dark_fraction(make_micrograph(comp, "cycled", s, bar=False))
                       for s in range(3)])
        assert cyc > 1.3 * pri, (comp, pri, cyc)
    # formation is in between for the coarse composition
    frm = np.mean([_thin_dark_fraction(make_micrograph("NCM333", "formation", s, bar=False))
                   for s in range(3)])
    pri = np.mean([_thin_dark_fraction(make_micrograph("NCM333", "pristine", s, bar=False))
                   for s in range(3)])
    assert frm > pri


def test_grey_statistics_class_independent():
    means = {(c, s): make_micrograph(c, s, 3, bar=False).mean() for c in COMPS for s in STATES}
    assert max(means.values()) - min(means.values()) < 5
