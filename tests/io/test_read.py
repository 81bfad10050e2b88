"""Tests for semcathode.io._read: pixels of every supported format, guards and read errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from conftest import texture as _texture, write_jpeg as _write_jpeg
from conftest import SEM_TIFF as SEMTIFF, needs_semtiff
from semcathode.io._metadata import read_metadata
from semcathode.io._read import SUPPORTED_EXTENSIONS, SEMReadError, read_image, read_sem, to_unit



# --------------------------------------------------------------------------- helpers


# --------------------------------------------------------------------------- formats


def test_16bit_tiff_scaled_by_dtype_range(tmp_path: Path) -> None:
    raw = np.zeros((80, 90), np.uint16)
    raw[:, 30:60] = 1000
    raw[:, 60:] = 65535
    raw[0, 0] = 32768
    p = tmp_path / "sixteen.tif"
    tifffile.imwrite(p, raw)
    img, bits = read_image(p)
    assert bits == 16
    assert img.dtype == np.float32 and img.shape == raw.shape
    np.testing.assert_allclose(img, raw.astype(np.float64) / 65535.0, atol=1e-6)
    assert img.max() == pytest.approx(1.0)


def test_8bit_grey_tiff_and_multipage_first_page(tmp_path: Path) -> None:
    first = np.full((70, 70), 51, np.uint8)
    second = np.full((70, 70), 204, np.uint8)
    p = tmp_path / "pages.tiff"
    with tifffile.TiffWriter(p) as tw:
        tw.write(first)
        tw.write(second)
    img, bits = read_image(p)
    assert bits == 8
    np.testing.assert_allclose(img, 0.2, atol=1e-6)


def test_palette_tiff_palette_applied(tmp_path: Path) -> None:
    cmap = np.zeros((3, 256), np.uint16)
    cmap[:, 1] = (65535, 0, 0)  # red
    cmap[:, 2] = (0, 65535, 0)  # green
    cmap[:, 3] = (0, 0, 65535)  # blue
    cmap[:, 4] = (65535, 65535, 65535)  # white
    cmap[:, 5] = (13107, 13107, 13107)  # grey 0.2
    idx = np.zeros((70, 72), np.uint8)
    for k in range(1, 6):
        idx[:, 12 * k : 12 * (k + 1)] = k
    p = tmp_path / "palette.tif"
    tifffile.imwrite(p, idx, photometric="palette", colormap=cmap)
    img, bits = read_image(p)
    assert bits == 8
    luma = np.array([0.299, 0.587, 0.114])
    expected = {0: 0.0, 1: luma[0], 2: luma[1], 3: luma[2], 4: 1.0, 5: 0.2}
    for k, value in expected.items():
        col = 12 * k + 5 if k else 5
        assert img[10, col] == pytest.approx(value, abs=1e-4), k
    # the indices themselves (0..5 of 255) would be almost black: the palette was applied
    assert img.max() == pytest.approx(1.0, abs=1e-4)


def test_rgb_png_luminance_and_grey_as_rgb(tmp_path: Path) -> None:
    rgb = np.zeros((70, 70, 3), np.uint8)
    rgb[:, :20] = (255, 0, 0)
    rgb[:, 20:40] = (0, 0, 255)
    rgb[:, 40:] = (120, 120, 120)  # grey stored as RGB
    p = tmp_path / "colour.png"
    Image.fromarray(rgb, "RGB").save(p)
    img, bits = read_image(p)
    assert bits == 8
    assert img[5, 5] == pytest.approx(0.299, abs=1e-4)
    assert img[5, 25] == pytest.approx(0.114, abs=1e-4)
    assert img[5, 50] == pytest.approx(120 / 255, abs=1e-5)


def test_rgba_png_alpha_dropped(tmp_path: Path) -> None:
    rgba = np.zeros((70, 70, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, :35, 3] = 0  # fully transparent half
    rgba[:, 35:, 3] = 255
    p = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(p)
    img, bits = read_image(p)
    assert bits == 8 and img.shape == (70, 70)
    np.testing.assert_allclose(img, 200 / 255, atol=1e-5)


def test_16bit_png(tmp_path: Path) -> None:
    raw = (np.arange(70 * 70).reshape(70, 70) * 13).astype(np.uint16)
    p = tmp_path / "sixteen.png"
    Image.fromarray(raw).save(p)
    img, bits = read_image(p)
    assert bits == 16
    np.testing.assert_allclose(img, raw / 65535.0, atol=1e-6)


def test_grey_jpeg_roundtrip(tmp_path: Path) -> None:
    arr = _texture(96, 128, seed=5)
    p = tmp_path / "grey.JPG"  # extension case must not matter
    _write_jpeg(p, arr, quality=98)
    img, bits = read_image(p)
    assert bits == 8
    assert np.abs(img - arr).mean() < 0.01


def test_float_tiff_outside_unit_range_is_min_max_scaled(tmp_path: Path) -> None:
    raw = np.linspace(-5.0, 15.0, 70 * 70, dtype=np.float32).reshape(70, 70)
    p = tmp_path / "float.tif"
    tifffile.imwrite(p, raw)
    img, _ = read_image(p)
    assert img.min() == pytest.approx(0.0) and img.max() == pytest.approx(1.0)
    np.testing.assert_allclose(img, (raw + 5.0) / 20.0, atol=1e-6)


def test_to_unit_scales_integers_by_range_and_keeps_unit_floats() -> None:
    np.testing.assert_allclose(to_unit(np.array([0, 32768, 65535], np.uint16)), [0.0, 32768 / 65535, 1.0], atol=1e-7)
    assert to_unit(np.array([True, False])).tolist() == [1.0, 0.0]
    assert to_unit(np.array([0.25, 0.5], np.float64)).dtype == np.float32
    np.testing.assert_allclose(to_unit(np.array([-1.0, 1.0])), [0.0, 1.0])  # min-max outside [0, 1]


# --------------------------------------------------------------------------- errors


def test_zero_byte_file_raises(tmp_path: Path) -> None:
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(SEMReadError, match="empty") as info:
        read_sem(p)
    assert str(p) in str(info.value)


def test_truncated_jpeg_raises(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    _write_jpeg(good, _texture(256, 256, seed=7), quality=90)
    data = good.read_bytes()
    bad = tmp_path / "half.jpg"
    bad.write_bytes(data[: len(data) // 2])
    read_sem(good)  # the intact file reads
    with pytest.raises(SEMReadError) as info:
        read_sem(bad)
    assert str(bad) in str(info.value)


def test_unsupported_extension_raises(tmp_path: Path) -> None:
    p = tmp_path / "image.gif"
    Image.fromarray(np.zeros((80, 80), np.uint8)).save(p)  # a valid GIF, still refused
    with pytest.raises(SEMReadError, match="unsupported") as info:
        read_sem(p)
    assert str(p) in str(info.value)


def test_bmp_is_read_as_the_scan_promises(tmp_path: Path) -> None:
    """The folder scan picks up .bmp, so the reader must read it (one extension list)."""
    from semcathode.data import index_folder

    p = tmp_path / "image.bmp"
    Image.fromarray(np.full((80, 90), 128, np.uint8)).save(p)
    sem = read_sem(p)
    assert sem.image.shape == (80, 90) and sem.image.mean() == pytest.approx(128 / 255)
    assert ".bmp" in SUPPORTED_EXTENSIONS
    (tmp_path / "NCM333_pristine").mkdir()
    Image.fromarray(np.full((80, 90), 128, np.uint8)).save(tmp_path / "NCM333_pristine" / "a.bmp")
    assert len(index_folder(tmp_path, skip_bad=True)) == 1  # the scan indexes what the reader reads


def test_missing_file_raises(tmp_path: Path) -> None:
    p = tmp_path / "nope.tif"
    with pytest.raises(SEMReadError, match="does not exist") as info:
        read_sem(p)
    assert str(p) in str(info.value)
    with pytest.raises(SEMReadError):
        read_metadata(p)


def test_corrupt_tiff_raises(tmp_path: Path) -> None:
    p = tmp_path / "garbage.tif"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(SEMReadError) as info:
        read_sem(p)
    assert str(p) in str(info.value)


def test_too_small_image_raises(tmp_path: Path) -> None:
    p = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((40, 200), np.uint8)).save(p)
    with pytest.raises(SEMReadError, match="min_size") as info:
        read_sem(p)
    assert str(p) in str(info.value)
    assert read_sem(p, min_size=32).image.shape == (40, 200)


def test_semreaderror_is_valueerror() -> None:
    err = SEMReadError("/x/y.tif", "broken")
    assert isinstance(err, ValueError)
    assert "/x/y.tif" in str(err) and "broken" in str(err)


# --------------------------------------------------------------------------- real data: vendor TIFFs


@pytest.mark.realdata
@needs_semtiff
def test_fei_8_and_16_bit_agree() -> None:
    a = read_sem(SEMTIFF / "FEI-Helios-Ebeam-8bits.tif").image
    b = read_sem(SEMTIFF / "FEI-Helios-Ebeam-16bits.tif").image
    assert a.shape == b.shape
    assert np.abs(a - b).max() < 0.01
