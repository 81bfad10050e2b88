"""Particle measures on hand-made masks and on synthetic micrographs with a known particle layout."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import regionprops_table

from semcathode.config import MorphologyConfig
from semcathode.data import render_micrograph
from semcathode.morphology import micrograph_measures, segment_particles
from semcathode.morphology._measure import particle_table

NATIVE = MorphologyConfig(work_um=0, threshold="otsu")  # hand-made images: their own pixel size, one level


def _discs(shape, discs, bg=0.2, fg=0.8):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.full(shape, bg, np.float32)
    for cy, cx, r in discs:
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] = fg
    return img


@pytest.mark.parametrize("radius_px, px", [(12, 0.5), (25, 0.25), (40, 0.1)])
def test_a_disc_gives_its_diameter_and_circularity_one(radius_px, px):
    img = _discs((200, 200), [(100, 100, radius_px)])
    t = particle_table(segment_particles(img, px, NATIVE))
    assert len(t) == 1
    assert t.diameter_um[0] == pytest.approx(2 * radius_px * px, rel=0.02)
    assert t.area_um2[0] == pytest.approx(np.pi * (radius_px * px) ** 2, rel=0.04)
    assert t.circularity[0] == pytest.approx(1.0, abs=0.05)
    assert t.solidity[0] == pytest.approx(1.0, abs=0.02)
    assert t.eccentricity[0] < 0.1
    assert not t.touches_border[0]


def test_an_ellipse_is_less_circular_and_eccentric():
    yy, xx = np.mgrid[:200, :300]
    img = (0.2 + 0.6 * (((yy - 100) / 30.0) ** 2 + ((xx - 150) / 90.0) ** 2 < 1)).astype(np.float32)
    t = particle_table(segment_particles(img, 0.2, NATIVE))
    assert len(t) == 1
    assert t.eccentricity[0] == pytest.approx(np.sqrt(1 - (30 / 90) ** 2), abs=0.02)
    assert t.circularity[0] < 0.8


def test_a_non_convex_particle_has_solidity_under_one():
    img = np.full((200, 200), 0.2, np.float32)
    img[40:160, 40:70] = 0.8  # an L: half of its hull is empty
    img[130:160, 40:160] = 0.8
    t = particle_table(segment_particles(img, 0.2, NATIVE))
    assert len(t) == 1
    assert 0.45 < t.solidity[0] < 0.7


def test_two_touching_discs_are_split_by_the_watershed():
    img = _discs((200, 300), [(100, 110, 40), (100, 180, 40)])  # centres 70 px apart: they overlap
    seg = segment_particles(img, 0.25, NATIVE)
    t = particle_table(seg)
    assert len(t) == 2
    assert t.diameter_um.to_numpy() == pytest.approx([20.0, 20.0], rel=0.1)
    assert abs(t.centroid_x_um[0] - t.centroid_x_um[1]) == pytest.approx(70 * 0.25, rel=0.1)


def test_lengths_are_in_um_whatever_the_pixel_size():
    a = _discs((400, 400), [(200, 200, 80)])
    small = a[::2, ::2]  # the same field of view at twice the pixel size
    da = particle_table(segment_particles(a, 0.125, NATIVE)).diameter_um[0]
    db = particle_table(segment_particles(small, 0.25, NATIVE)).diameter_um[0]
    assert da == pytest.approx(20.0, rel=0.02) and db == pytest.approx(da, rel=0.03)


def test_border_particles_are_left_out_of_the_size_statistics():
    img = _discs((200, 200), [(100, 100, 20), (100, 0, 40)])  # the second is cut by the left edge
    seg = segment_particles(img, 0.5, NATIVE)
    t = particle_table(seg)
    m = micrograph_measures(seg, t)
    assert m["n_particles"] == 2 and m["n_sized"] == 1
    assert t.touches_border.sum() == 1
    assert m["d50_um"] == pytest.approx(20.0, rel=0.03)
    assert m["per_1000um2"] == pytest.approx(2 / (100 * 100) * 1000)


def test_fines_share_counts_particles_under_the_threshold():
    img = _discs((300, 300), [(60, 60, 20), (60, 200, 20), (200, 60, 3), (200, 200, 4)])
    cfg = MorphologyConfig(work_um=0, threshold="otsu", min_diameter_um=1.0, fines_um=3.0)
    m = micrograph_measures(segment_particles(img, 0.25, cfg))
    assert m["n_sized"] == 4
    assert m["fines_share"] == pytest.approx(0.5)  # the two of 1.5 and 2 µm


def test_empty_and_flat_micrographs_give_no_particles_not_an_error():
    m = micrograph_measures(segment_particles(np.full((64, 64), 0.5, np.float32), 0.5))
    assert m["n_particles"] == 0 and np.isnan(m["d50_um"]) and m["area_fraction"] == 0


@pytest.mark.parametrize("bad, match", [(np.zeros((4, 4)), "8 x 8"), (np.zeros((2, 3, 4, 5)), "grey"),
                                        (np.full((32, 32), np.nan), "NaN")])
def test_bad_images_are_refused_with_the_reason(bad, match):
    with pytest.raises(ValueError, match=match):
        segment_particles(bad, 0.5)


@pytest.mark.parametrize("px", [0.0, -1.0, float("nan")])
def test_a_bad_pixel_size_is_refused(px):
    with pytest.raises(ValueError, match="pixel size"):
        segment_particles(np.zeros((32, 32)), px)


def test_the_threshold_choice_is_stated_and_follows_the_illumination():
    rng = np.random.default_rng(0)
    img = _discs((400, 400), [(y, x, 12) for y in range(40, 400, 60) for x in range(40, 400, 60)])
    img = img + 0.02 * rng.standard_normal(img.shape).astype(np.float32)
    even = segment_particles(img, 0.5)
    ramp = np.linspace(0.0, 0.6, 400, dtype=np.float32)[None, :]
    uneven = segment_particles(np.clip(img * 0.6 + ramp, 0, 1), 0.5)
    assert even.threshold_method == "otsu" and uneven.threshold_method == "local"
    assert uneven.unevenness > even.unevenness
    assert uneven.n_particles == even.n_particles == 36  # the local threshold still finds every disc
    row = uneven.stated()
    assert row["threshold_method"] == "local" and row["setting_local_block_um"] == 20.0


# ----------------------------------------------------------------------- synthetic ground truth

def _truth(labels: np.ndarray, px: float, min_d: float, margin: int) -> tuple[np.ndarray, int]:
    """As the measures define them: the diameters (µm) of the visible particles not cut by the border
    (more than ``margin`` px, one working pixel, from it) and the count of every visible particle,
    each at least ``min_d`` across."""
    t = regionprops_table(labels, properties=("label", "equivalent_diameter_area", "bbox"))
    d = t["equivalent_diameter_area"] * px
    h, w = labels.shape
    inner = ((t["bbox-0"] > margin) & (t["bbox-1"] > margin) & (t["bbox-2"] < h - margin)
             & (t["bbox-3"] < w - margin) & (d >= min_d))
    return d[inner], int((d >= min_d).sum())


@pytest.mark.parametrize("composition", ["NCM333", "NCM622", "NCM811"])
@pytest.mark.parametrize("noise", [0.03, 0.10])
def test_synthetic_particles_are_measured_within_10_percent(composition, noise):
    """Three particle sizes (D50 about 15, 9 and 6 µm) and two noise levels; three micrographs each,
    pooled. The layout is a layer of touching particles (coverage 0.45); the measures run with the
    default settings (segmented at 0.5 µm/px)."""
    px, cfg = 0.1, MorphologyConfig()
    true_d, true_n, got_d, got_n = [], 0, [], 0
    for seed in range(3):
        img, truth = render_micrograph(composition, "pristine", seed, size=(600, 800), bar=False, noise=noise,
                                       coverage=0.45)
        d, n = _truth(truth["labels"], px, cfg.min_diameter_um, round(cfg.work_um / px))
        true_d.append(d)
        true_n += n
        seg = segment_particles(img, px, cfg)
        t = particle_table(seg)
        got_d.append(t.diameter_um[~t.touches_border.astype(bool)].to_numpy())
        got_n += micrograph_measures(seg, t)["n_particles"]
    d50_true, d50 = np.median(np.concatenate(true_d)), np.median(np.concatenate(got_d))
    assert d50 == pytest.approx(d50_true, rel=0.10), (d50, d50_true)
    assert got_n == pytest.approx(true_n, rel=0.10), (got_n, true_n)


def test_synthetic_sizes_order_by_composition():
    d50 = {}
    for comp in ("NCM333", "NCM622", "NCM811"):
        img, _ = render_micrograph(comp, "pristine", 0, size=(480, 640), bar=False)
        d50[comp] = micrograph_measures(segment_particles(img, 0.1))["d50_um"]
    assert d50["NCM333"] > d50["NCM622"] > d50["NCM811"]


def test_half_resolution_gives_the_same_d50():
    img, _ = render_micrograph("NCM622", "pristine", 1, size=(600, 800), bar=False, coverage=0.45)
    img = img.astype(np.float32) / 255
    half = img.reshape(300, 2, 400, 2).mean((1, 3))
    a = micrograph_measures(segment_particles(img, 0.1))["d50_um"]
    b = micrograph_measures(segment_particles(half, 0.2))["d50_um"]
    assert b == pytest.approx(a, rel=0.10)


def test_the_one_pass_measures_equal_regionprops():
    """Perimeter, eccentricity, intensities and centroids are computed for every label at once: the same
    numbers as scikit-image's region-by-region ``regionprops``."""
    img, _ = render_micrograph("NCM811", "cycled", 0, size=(400, 500), bar=False)
    seg = segment_particles(img, 0.2)
    t = particle_table(seg)
    r = regionprops_table(seg.labels, intensity_image=seg.image, spacing=(seg.pixel_size_um,) * 2,
                          properties=("label", "perimeter_crofton", "eccentricity", "intensity_mean",
                                      "intensity_std", "centroid"))
    assert len(t) == len(r["label"]) > 50
    np.testing.assert_allclose(t.perimeter_um, r["perimeter_crofton"], rtol=1e-9)
    np.testing.assert_allclose(t.eccentricity, r["eccentricity"], atol=1e-6)
    np.testing.assert_allclose(t.intensity_mean, r["intensity_mean"], atol=1e-6)
    np.testing.assert_allclose(t.intensity_std, r["intensity_std"], atol=1e-5)
    np.testing.assert_allclose(t.centroid_y_um, r["centroid-0"], atol=1e-9)
