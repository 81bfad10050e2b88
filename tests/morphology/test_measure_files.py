"""Measuring files: bad inputs named, overlays, and the 2x check on real KAIST micrographs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import KAIST, needs_kaist_images
from semcathode.config import MorphologyConfig
from semcathode.data import render_micrograph
from semcathode.morphology import measure_paths, micrograph_measures, segment_particles
from semcathode.morphology._measure import MEASURE_COLUMNS, PARTICLE_COLUMNS
from semcathode.morphology._overlay import outline_mask
from semcathode.morphology._measure_files import read_bar_free


def _write(path: Path, img: np.ndarray, px: float | None) -> Path:
    Image.fromarray(img).save(path)
    if px is not None:  # an SNE-style sidecar, as the KAIST frames have
        w = img.shape[1]
        Path(f"{path}.txt").write_text(f"[Image Info]\r\nModel : SNE-4500M Plus\r\n[Active Scan]\r\n"
                                       f"Frame Size : {w},{img.shape[0]}\r\nPixel Size : {px:g}\r\n")
    return path


@pytest.fixture
def frames(tmp_path):
    a, _ = render_micrograph("NCM622", "pristine", 0, size=(300, 400))
    b, _ = render_micrograph("NCM811", "cycled", 1, size=(300, 400))
    return [_write(tmp_path / "a.png", a, 0.1), _write(tmp_path / "b.png", b, 0.1)]


def test_one_row_per_file_and_one_per_particle(frames, tmp_path):
    m, p = measure_paths(frames, overlay_dir=tmp_path / "ov")
    assert list(m.path) == [str(f) for f in frames] and (m.error == "").all()
    assert set(MEASURE_COLUMNS) <= set(m.columns) and list(p.columns) == ["path", *PARTICLE_COLUMNS]
    assert (m.pixel_size_um == 0.1).all() and (m.pixel_size_source == "file").all()
    assert m.setting_fines_um.eq(3.0).all() and m.threshold_method.isin(["otsu", "local"]).all()
    counts = p.groupby("path").size()
    assert [counts[str(f)] for f in frames] == m.n_particles.tolist()
    for f, ov in zip(frames, m.overlay):
        assert Path(ov).name == f"{f.stem}_outlines.png"
        rgb = np.asarray(Image.open(ov))
        assert rgb.shape[:2] == (300 - 20, 400)  # the data bar cut off, the micrograph's own resolution
        assert (rgb == (255, 60, 30)).all(-1).mean() > 0.01  # outlines drawn


def test_a_file_without_a_pixel_size_is_an_error_naming_it_unless_one_is_given(tmp_path, frames):
    img, _ = render_micrograph("NCM333", "pristine", 2, size=(300, 400))
    bare = _write(tmp_path / "bare.png", img, None)
    m, _ = measure_paths([frames[0], bare])
    assert m.error[0] == "" and str(bare) in m.error[1] and "--pixel-size" in m.error[1]
    assert np.isnan(m.d50_um[1])
    m, _ = measure_paths([bare], pixel_size_um=0.1)
    assert m.error[0] == "" and m.pixel_size_source[0] == "given" and m.d50_um[0] > 0


def test_a_bad_file_gets_one_error_and_the_others_are_measured(tmp_path, frames):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    m, p = measure_paths([frames[0], broken, tmp_path / "missing.png", frames[1]], workers=2)
    assert m.error.eq("").tolist() == [True, False, False, True]
    assert str(broken) in m.error[1] and "missing.png" in m.error[2]
    assert set(p.path) == {str(frames[0]), str(frames[1])}


def test_workers_give_the_same_table(frames):
    a, _ = measure_paths(frames)
    b, _ = measure_paths(frames, workers=2)
    pd.testing.assert_frame_equal(a, b)


def test_overlay_names_stay_apart_for_files_of_the_same_name(tmp_path, frames):
    (tmp_path / "sub").mkdir()
    img, _ = render_micrograph("NCM622", "pristine", 3, size=(300, 400))
    twin = _write(tmp_path / "sub" / "a.png", img, 0.1)
    m, _ = measure_paths([frames[0], twin], overlay_dir=tmp_path / "ov")
    assert [Path(o).name for o in m.overlay] == ["a_outlines.png", "a-2_outlines.png"]


def test_outlines_follow_the_particles():
    """The drawn outlines lie on the true particle edges (segmented at 0.5 µm/px, drawn at 0.1 µm/px)."""
    img, truth = render_micrograph("NCM622", "pristine", 4, size=(400, 500), bar=False, coverage=0.45)
    seg = segment_particles(img, 0.1)
    lines = outline_mask(seg, img.shape) > 0
    from scipy import ndimage as ndi
    inside = truth["labels"] > 0
    edge = inside & ~ndi.binary_erosion(inside)
    off_um = ndi.distance_transform_edt(~edge)[lines] * 0.1  # each outline pixel's distance to a true edge
    assert np.median(off_um) <= 0.5 and np.quantile(off_um, 0.9) <= 1.0  # within one working pixel (0.5 µm)


@needs_kaist_images
def test_real_kaist_d50_survives_a_2x_downsample():
    """Two micrographs per class of the KAIST set, measured as they are and downsampled 2x (pixel size doubled)."""
    cfg = MorphologyConfig()
    files = [sorted((KAIST / "images" / c).glob("*.jpg"))[k] for c in
             ("NCM333_pristine", "NCM622_formation", "NCM811_cycled", "NCM523_pristine") for k in (0, 7)]
    for f in files:
        grey, px, _ = read_bar_free(f)
        h, w = (grey.shape[0] // 2) * 2, (grey.shape[1] // 2) * 2
        half = grey[:h, :w].reshape(h // 2, 2, w // 2, 2).mean((1, 3))
        a = micrograph_measures(segment_particles(grey, px, cfg))
        b = micrograph_measures(segment_particles(half, 2 * px, cfg))
        assert a["n_sized"] > 100, f
        assert b["d50_um"] == pytest.approx(a["d50_um"], rel=0.10), (f.name, a["d50_um"], b["d50_um"])
