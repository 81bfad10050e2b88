"""Tests for semcathode.io._databar: finding and cutting off the instrument's data bar."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from conftest import texture as _texture, write_jpeg as _write_jpeg
from conftest import KAIST, SEM_TIFF as SEMTIFF, needs_kaist_images as needs_kaist, needs_semtiff
from semcathode.io._databar import BarCrop, crop_data_bar, find_data_bar
from semcathode.io._metadata import SEMMetadata
from semcathode.io._read import SEMImage, read_sem



#: From the dataset README: 1280x960 frames whose bottom 64 rows (896-959) are the data bar.
KAIST_BAR_TOP = 896
KAIST_N_IMAGES = 770


def _kaist_images() -> list[Path]:
    return sorted((KAIST / "images").glob("*/*.jpg"))


# --------------------------------------------------------------------------- helpers


def _with_bar(img: np.ndarray, top: int, fill: float, ink: float, seed: int = 1) -> np.ndarray:
    """Paste a data bar of flat ``fill`` with ``ink`` "glyphs" and a scale bar from ``top``."""
    out = img.copy()
    h, w = out.shape
    out[top:] = fill
    rng = np.random.default_rng(seed)
    bar_h = h - top
    # two text lines of random glyph blocks, leaving a margin at the top of the bar
    for line_start in (top + bar_h // 5, top + bar_h // 2 + 2):
        line_h = max(2, bar_h // 5)
        x = 10
        while x < w - 20:
            gw = int(rng.integers(3, 9))
            if rng.random() < 0.7:
                mask = rng.random((line_h, gw)) < 0.5
                block = out[line_start : line_start + line_h, x : x + gw]
                block[mask[: block.shape[0], : block.shape[1]]] = ink
            x += gw + int(rng.integers(2, 12))
    out[h - bar_h // 4, w // 2 : w - 20] = ink  # scale bar
    return out


def _dark_clipped(h: int, w: int, seed: int = 3) -> np.ndarray:
    """A dark, contrast-clipped micrograph: about half the pixels are 0."""
    t = _texture(h, w, seed=seed, lo=0.0, hi=1.0)
    return np.clip((t - 0.5) * 1.6, 0, 1).astype(np.float32)


# --------------------------------------------------------------------------- data bar (synthetic)


@pytest.mark.parametrize(
    ("h", "w", "top", "fill", "ink"),
    [
        (960, 1280, 896, 0.0, 1.0),  # black bar, white text (SNE-like)
        (768, 1024, 691, 1.0, 0.0),  # white bar, black text (Zeiss-like)
        (500, 700, 430, 0.0, 1.0),
        (600, 600, 560, 1.0, 0.0),
        (1200, 900, 1000, 0.0, 1.0),
    ],
)
def test_detects_synthetic_bars_of_any_height(h, w, top, fill, ink) -> None:
    img = _with_bar(_texture(h, w, seed=h), top, fill, ink)
    crop = find_data_bar(img)
    assert crop.method == "detected"
    assert abs(crop.row - top) <= 1
    cropped, crop2 = crop_data_bar(img)
    assert crop2 == crop and cropped.shape == (crop.row, w)


def test_detects_bar_below_dark_clipped_micrograph() -> None:
    img = _with_bar(_dark_clipped(960, 1280), 896, 0.0, 1.0)
    crop = find_data_bar(img, method="detect")
    assert crop.method == "detected" and abs(crop.row - 896) <= 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: _texture(960, 1280, seed=11),
        lambda: _dark_clipped(960, 1280, seed=12),
        lambda: np.zeros((400, 500), np.float32),  # uniform black frame
        lambda: np.ones((400, 500), np.float32),
    ],
    ids=["texture", "dark-clipped", "black", "white"],
)
def test_no_bar_no_detection_and_fallbacks(make) -> None:
    img = make()
    h = img.shape[0]
    assert find_data_bar(img, method="detect") == BarCrop(h, "none")
    auto = find_data_bar(img, method="auto", fraction=0.1)
    assert auto == BarCrop(h - round(0.1 * h), "fraction")
    assert find_data_bar(img, method="none") == BarCrop(h, "none")


@pytest.mark.parametrize("kind", ["dark-clipped", "plain-black"])
def test_sharp_dark_region_without_text_is_not_a_bar(kind: str) -> None:
    """A sample ending on a dark background (cross-sections) must not pass for a bar."""
    h, w = 960, 1280
    img = _texture(h, w, seed=21)
    top = 860
    img[top:] = _dark_clipped(h, w, seed=22)[top:] if kind == "dark-clipped" else 0.0
    assert find_data_bar(img, method="detect") == BarCrop(h, "none")


def test_bar_methods_forced_and_metadata() -> None:
    img = _with_bar(_texture(480, 640, seed=4), 440, 0.0, 1.0)
    meta = SEMMetadata(bar_top=400)
    assert find_data_bar(img, meta) == BarCrop(400, "metadata")
    assert find_data_bar(img, meta, method="detect").method == "detected"
    assert find_data_bar(img, SEMMetadata(), method="metadata") == BarCrop(480, "none")
    assert find_data_bar(img, meta, method="fraction", fraction=0.25) == BarCrop(360, "fraction")
    with pytest.raises(ValueError):
        find_data_bar(img, method="magic")
    # integer and colour inputs are accepted and give the same answer
    as_u8 = (img * 255).round().astype(np.uint8)
    assert abs(find_data_bar(as_u8).row - 440) <= 1
    as_rgb = np.repeat(as_u8[..., None], 3, axis=2)
    cropped, crop = crop_data_bar(as_rgb)
    assert abs(crop.row - 440) <= 1 and cropped.shape == (crop.row, 640, 3)


def test_bar_detection_through_jpeg(tmp_path: Path) -> None:
    img = _with_bar(_texture(600, 800, seed=9), 550, 0.0, 1.0)
    p = tmp_path / "bar.jpg"
    _write_jpeg(p, img, quality=75)
    sem = read_sem(p)
    assert isinstance(sem, SEMImage)
    crop = find_data_bar(sem.image, sem.meta)
    assert crop.method == "detected" and abs(crop.row - 550) <= 2


# --------------------------------------------------------------------------- real data: KAIST


@pytest.mark.realdata
@needs_kaist
def test_kaist_bar_row_on_every_image() -> None:
    files = _kaist_images()
    assert len(files) == KAIST_N_IMAGES
    assert any("NCM523_formation" in str(f) for f in files)  # the other bar layout is covered
    bad = []
    t_detect = 0.0
    t0 = time.perf_counter()
    for f in files:
        sem = read_sem(f)
        assert sem.image.shape == (960, 1280)
        t1 = time.perf_counter()
        crop = find_data_bar(sem.image, sem.meta)
        t_detect += time.perf_counter() - t1
        if crop.method != "detected" or abs(crop.row - KAIST_BAR_TOP) > 2:
            bad.append((f.parent.name, f.name, crop))
    total = time.perf_counter() - t0
    assert not bad, f"{len(bad)} images with a wrong bar crop, e.g. {bad[:5]}"
    assert t_detect < 20.0, f"bar detection took {t_detect:.1f}s for {len(files)} images"
    print(f"770 KAIST images: read+detect {total:.1f}s, detection alone {t_detect:.2f}s")


@pytest.mark.realdata
@needs_kaist
def test_kaist_bar_follows_cropping_and_resizing() -> None:
    """The detector is not tied to row 896: cut rows off the top, or halve the frame."""
    files = _kaist_images()
    picks = [f for f in files if f.parent.name in ("NCM811_cycled", "NCM523_cycled")][::10]
    assert picks
    for f in picks:
        img = read_sem(f).image
        for cut in (37, 250):
            crop = find_data_bar(img[cut:], method="detect")
            assert abs(crop.row - (KAIST_BAR_TOP - cut)) <= 2, (f.name, cut, crop)
        half = np.asarray(
            Image.fromarray((img * 255).astype(np.uint8)).resize((640, 480), Image.BILINEAR),
            dtype=np.float32,
        ) / 255.0
        crop = find_data_bar(half, method="detect")
        assert abs(crop.row - KAIST_BAR_TOP // 2) <= 2, (f.name, "half", crop)


# --------------------------------------------------------------------------- real data: vendor TIFFs


@pytest.mark.realdata
@needs_semtiff
def test_zeiss_palette_image_and_white_bar_removed() -> None:
    path = SEMTIFF / "test_tiff_Zeiss_SEM_1k.tif"
    sem = read_sem(path)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        idx = page.asarray()
        cmap = page.colormap
    assert int(page.photometric) == 3  # palette
    np.testing.assert_allclose(sem.image, cmap[0][idx] / 65535.0, atol=1e-4)

    img = sem.image
    white_rows = np.flatnonzero((img > 0.9).mean(axis=1) > 0.9)
    first_white = int(white_rows.min())
    assert first_white > img.shape[0] * 0.75  # the white bar is at the bottom
    cropped, crop = crop_data_bar(img, sem.meta)
    assert crop.method == "detected"
    assert first_white - 3 <= crop.row <= first_white  # keeps (almost) all micrograph rows
    # bar rows are >= 99 % white (or black: its frame line); the bright sample edge in the
    # micrograph reaches ~56 % white, so 0.9 separates them
    kept_white = (cropped > 0.9).mean(axis=1) > 0.9
    kept_black = (cropped < 0.1).mean(axis=1) > 0.9
    assert not kept_white.any() and not kept_black.any()
