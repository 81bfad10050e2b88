"""Hostile image and metadata files get a clear answer before they cost memory (issue 17, io).

Each test builds its input in ``tmp_path``: headers that promise gigabytes (sparse or compressed
files of a few KB on disk), sidecars of 1.5 GB (sparse), decimal commas, float images at the
float32 limits, files that make tifffile log, and metadata values of 50 MB. Memory is measured
with :mod:`tracemalloc` (numpy reports its buffers to it).
"""

from __future__ import annotations

import logging
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from semcathode.io import metadata as smeta
from semcathode.io.metadata import SEMMetadataWarning, read_metadata
from semcathode.io.read import SEMReadError, read_image, read_sem
from semcathode.pipeline.cli import main

CLASSES3 = ["NCM333_pristine", "NCM333_formation", "NCM333_cycled"]
SNE_HEAD = "[Image Info]\nModel : SNE-4500M Plus\nDate : 2019-09-02\n[Active Scan]\n"


# --------------------------------------------------------------------------- helpers


def _png(path: Path, seed: int, shape: tuple[int, int] = (96, 128)) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


def _sidecar(img: Path, pixel: str = "0.7", frame: str = "480,480", extra: str = "") -> Path:
    side = img.with_name(img.name + ".txt")
    side.write_text(f"{SNE_HEAD}Frame Size : {frame}\nPixel Size : {pixel}\n{extra}", encoding="utf-8")
    return side


def _sparse_tiff(path: Path, shape: tuple[int, ...], dtype, **kwargs) -> Path:
    """An uncompressed TIFF whose pixel data is a hole: the header promises ``shape``, the disk holds KBs."""
    tifffile.imwrite(path, shape=shape, dtype=dtype, **kwargs)
    return path


def _sparse_file(path: Path, head: bytes, size: int) -> Path:
    """``head`` followed by a hole up to ``size`` bytes (no disk used for the hole)."""
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(size)
    return path


def _peak(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` (its result or the exception it raised) and the traced peak memory."""
    tracemalloc.start()
    try:
        try:
            out = fn(*args, **kwargs)
        except Exception as exc:  # returned for the test to look at
            out = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak


def _recorded(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, rec


def _noisy_tiff(path: Path) -> Path:
    """A valid 8-bit TIFF whose Software tag is not ASCII: tifffile logs a line each time it is opened."""
    tifffile.imwrite(path, np.random.default_rng(1).integers(0, 256, (96, 128), dtype=np.uint8),
                     software="xyzzyqwerty")
    data = path.read_bytes()
    assert data.count(b"xyzzyqwerty") == 1
    path.write_bytes(data.replace(b"xyzzyqwerty", b"x\xff\xfe\x81zzyqwer"))
    return path


# --------------------------------------------------------------------------- size guard in bytes


def test_many_samples_per_pixel_refused_before_decoding(tmp_path, monkeypatch):
    """The issue's file: 3000 x 3000 x 255 samples (2.3 GB decoded, 12 GB peak before)."""
    monkeypatch.setenv("SEMCATHODE_MAX_IMAGE_BYTES", "0")  # refused for its samples, whatever the byte limit
    p = _sparse_tiff(tmp_path / "samples.tif", (3000, 3000, 255), np.uint8,
                     photometric="minisblack", planarconfig="contig")
    err, peak = _peak(read_sem, p)
    assert isinstance(err, SEMReadError), err
    msg = str(err)
    assert str(p) in msg and "255 samples per pixel" in msg and "\n" not in msg
    assert peak < 50_000_000


def test_byte_limit_counts_samples_bit_depth_and_is_the_default(tmp_path, monkeypatch):
    """Under the pixel limit (144 MP < 179 MP) but 4.6 GB decoded (4 x float64): refused by default."""
    monkeypatch.delenv("SEMCATHODE_MAX_IMAGE_BYTES", raising=False)
    monkeypatch.delenv("SEMCATHODE_MAX_IMAGE_PIXELS", raising=False)
    p = _sparse_tiff(tmp_path / "rgba64.tif", (12000, 12000, 4), np.float64, photometric="rgb",
                     planarconfig="contig", extrasamples=["unassalpha"])
    err, peak = _peak(read_sem, p)
    assert isinstance(err, SEMReadError), err
    msg = str(err)
    assert str(p) in msg and "12000x12000 px x 4 samples x 8 bytes" in msg
    assert "SEMCATHODE_MAX_IMAGE_BYTES" in msg and "\n" not in msg
    assert peak < 50_000_000


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_byte_limit_applies_to_every_reader_and_is_configurable(tmp_path, monkeypatch, suffix):
    rng = np.random.default_rng(0)
    grey, rgb = tmp_path / f"grey{suffix}", tmp_path / f"rgb{suffix}"
    g = rng.integers(0, 256, (100, 120), dtype=np.uint8)  # 12,000 bytes decoded
    c = rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)  # 36,000 bytes decoded
    for path, arr in ((grey, g), (rgb, c)):
        if suffix == ".tif":
            tifffile.imwrite(path, arr, compression="zlib")
        else:
            Image.fromarray(arr).save(path)
    assert read_image(grey, max_bytes=20_000)[0].shape == (100, 120)
    with pytest.raises(SEMReadError, match=r"120x100 px x 3 samples x 1 bytes = 36,000 bytes.*limit of 20,000"):
        read_image(rgb, max_bytes=20_000)
    monkeypatch.setenv("SEMCATHODE_MAX_IMAGE_BYTES", "20kB")
    with pytest.raises(SEMReadError, match="SEMCATHODE_MAX_IMAGE_BYTES") as info:
        read_sem(rgb)
    assert str(rgb) in str(info.value)
    monkeypatch.setenv("SEMCATHODE_MAX_IMAGE_BYTES", "1 MiB")
    assert read_sem(rgb).image.shape == (100, 120)
    monkeypatch.setenv("SEMCATHODE_MAX_IMAGE_BYTES", "0")  # 0 = no limit
    assert read_sem(rgb).image.shape == (100, 120)


@pytest.mark.parametrize("name,value", [("SEMCATHODE_MAX_IMAGE_BYTES", "lots"), ("SEMCATHODE_MAX_IMAGE_BYTES", "-1"),
                                        ("SEMCATHODE_MAX_IMAGE_BYTES", "1e999"), ("SEMCATHODE_MAX_IMAGE_BYTES", "4 furlongs"),
                                        ("SEMCATHODE_MAX_IMAGE_PIXELS", "12 MB"),
                                        ("SEMCATHODE_MAX_SIDECAR_BYTES", "big")])
def test_a_bad_limit_setting_is_one_clear_error(tmp_path, monkeypatch, name, value):
    img = _png(tmp_path / "f.png", 0)
    _sidecar(img)
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as info:
        read_sem(img)
    msg = str(info.value)
    assert f"${name}=" in msg and repr(value) in msg and "\n" not in msg
    assert type(info.value).__name__ == "ConfigError"  # the CLI's bad-input error (exit 2)


# --------------------------------------------------------------------------- sidecars are read with a bound


def test_unrelated_large_stem_txt_is_not_read_whole(tmp_path):
    img = _png(tmp_path / "frame.png", 0)
    notes = _sparse_file(tmp_path / "frame.txt", b"lab notes, nothing to do with the instrument\n", int(1.5e9))
    (meta, rec), peak = _peak(_recorded, read_sem, img)
    assert meta.meta.source == "none" and not rec
    assert notes.stat().st_size == int(1.5e9)
    assert peak < 20_000_000  # it used to cost 1.4 GB to look at the first KB


@pytest.mark.parametrize("name", ["frame.png.txt", "frame.txt"])
def test_a_sidecar_too_large_to_be_one_is_skipped_with_a_warning(tmp_path, name):
    img = _png(tmp_path / "frame.png", 0, (480, 480))
    side = _sparse_file(tmp_path / name, f"{SNE_HEAD}Pixel Size : 0.7\n".encode(), int(1.5e9))
    (sem, rec), peak = _peak(_recorded, read_sem, img)
    assert not isinstance(sem, Exception), sem
    msgs = [str(w.message) for w in rec if issubclass(w.category, SEMMetadataWarning)]
    assert len(msgs) == 1 and str(side) in msgs[0] and "too large to be an instrument sidecar" in msgs[0], msgs
    assert "SEMCATHODE_MAX_SIDECAR_BYTES" in msgs[0]
    assert sem.meta.source == "none" and sem.meta.pixel_size_um is None
    assert peak < 20_000_000


def test_sidecar_limit_is_configurable(tmp_path, monkeypatch):
    img = _png(tmp_path / "frame.png", 0, (480, 480))
    _sidecar(img, extra="Comment : " + "x" * 3000 + "\n")  # ~3.1 KB
    monkeypatch.setenv("SEMCATHODE_MAX_SIDECAR_BYTES", "1000")
    with pytest.warns(SEMMetadataWarning, match=r"frame\.png\.txt: 3,\d{3} bytes, too large.*limit 1,000 bytes"):
        assert read_metadata(img).source == "none"
    monkeypatch.setenv("SEMCATHODE_MAX_SIDECAR_BYTES", "1MiB")
    assert read_metadata(img).pixel_size_um == pytest.approx(0.7)


# --------------------------------------------------------------------------- decimal commas


COMMAS = [  # (Pixel Size, µm/px at frame 480 and width 480 or None, words of the one warning)
    ("0,7", 0.7, []),
    ("2,1", 2.1, []),
    ("0,7 um", 0.7, []),
    ("700,5 nm", 0.7005, []),
    ("0,700", 0.7, []),
    ("1,234,5", None, ["'1,234,5'", "ambiguous"]),
    ("1.234,5", None, ["'1.234,5'", "ambiguous"]),
    ("1,234", None, ["'1,234'", "ambiguous"]),
]


@pytest.mark.parametrize("pixel,expected,words", COMMAS, ids=[c[0] for c in COMMAS])
def test_decimal_comma_in_a_sidecar(tmp_path, pixel, expected, words):
    img = _png(tmp_path / "frame.png", 0, (480, 480))
    side = _sidecar(img, pixel)
    meta, rec = _recorded(read_metadata, img)
    msgs = [str(w.message) for w in rec if issubclass(w.category, SEMMetadataWarning)]
    if expected is None:
        assert meta.pixel_size_um is None
        assert len(msgs) == 1 and str(side) in msgs[0], msgs
        for w in words:
            assert w in msgs[0], msgs[0]
    else:
        assert meta.pixel_size_um == pytest.approx(expected)
        assert not msgs, msgs


def test_decimal_comma_in_voltage_and_vendor_tags(tmp_path):
    img = _png(tmp_path / "frame.png", 0, (480, 480))
    _sidecar(img, extra="Accelerated Voltage : 15,5 kV\nMagnification : x1,000\n")
    meta = read_metadata(img)
    assert meta.voltage_kv == pytest.approx(15.5) and meta.magnification == pytest.approx(1000.0)
    where = Path("/data/zeiss.tif")
    z = smeta._zeiss_metadata({"ap_image_pixel_size": ("Image Pixel Size", "5,8 nm", "")}, 100, 100, where)
    assert z.pixel_size_um == pytest.approx(0.0058)
    f = smeta._fei_metadata({"Scan": {"PixelWidth": "2,6e-7"}}, 100, 100, None, Path("/data/fei.tif"))
    assert f.pixel_size_um == pytest.approx(0.26)
    with pytest.warns(SEMMetadataWarning, match=r"zeiss\.tif.*'1\.234,5'.*ambiguous"):
        z = smeta._zeiss_metadata({"ap_image_pixel_size": ("Image Pixel Size", "1.234,5", "nm")}, 100, 100, where)
    assert z.pixel_size_um is None


# --------------------------------------------------------------------------- library noise names the file


def test_float_tiff_at_the_float32_limits_reads_without_numpy_warnings(tmp_path):
    raw = np.zeros((80, 80), np.float32)
    raw[0, 0], raw[0, 1], raw[0, 2] = 3e38, -3e38, np.nan
    p = tmp_path / "extreme.tif"
    tifffile.imwrite(p, raw)
    sem, rec = _recorded(read_sem, p)
    assert np.isfinite(sem.image).all() and sem.image.min() == 0.0 and sem.image.max() == 1.0
    assert sem.image[40, 40] == pytest.approx(0.5)  # 0 lies half way between -3e38 and 3e38
    assert not [w for w in rec if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in rec]
    assert len(rec) == 1 and str(p) in str(rec[0].message) and "NaN or infinite" in str(rec[0].message)


def test_float_tiff_without_a_finite_value_is_refused(tmp_path):
    p = tmp_path / "nan.tif"
    tifffile.imwrite(p, np.full((80, 80), np.nan, np.float32))
    with pytest.raises(SEMReadError, match="NaN or infinite") as info:
        read_sem(p)
    assert str(p) in str(info.value)


class _Catch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_tifffile_log_lines_become_one_warning_naming_the_file(tmp_path):
    p = _noisy_tiff(tmp_path / "noisy.tif")
    catch = _Catch()
    logging.getLogger("tifffile").addHandler(catch)
    try:
        sem, rec = _recorded(read_sem, p)
    finally:
        logging.getLogger("tifffile").removeHandler(catch)
    assert sem.image.shape == (96, 128)
    assert not catch.lines, catch.lines  # nothing reaches the log ...
    msgs = [str(w.message) for w in rec]
    assert len(msgs) == 1, msgs  # ... but one warning, though the file is opened twice
    assert msgs[0].startswith(f"{p}: ") and "coercing invalid ASCII" in msgs[0] and "\n" not in msgs[0]


def test_cli_shows_library_noise_once_as_a_warning_line(tmp_path, capsys):
    root = tmp_path / "data"
    for i, cls in enumerate(CLASSES3):
        for j in range(2):
            _png(root / cls / f"img_{j}.png", seed=10 * i + j)
    noisy = _noisy_tiff(root / "NCM333_cycled" / "noisy.tif")
    code = main(["data", "index", str(root), "--out", str(tmp_path / "m.csv"), "--compositions", "NCM333"])
    err = capsys.readouterr().err
    assert code == 0, err
    lines = [line for line in err.splitlines() if "coercing invalid ASCII" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("warning: ") and str(noisy) in lines[0]


# --------------------------------------------------------------------------- long values are quoted short


def test_a_50_mb_metadata_value_gives_a_short_warning(tmp_path):
    where = Path("/data/zeiss.tif")
    huge = "1" * 50_000_000
    z, rec = _recorded(smeta._zeiss_metadata, {"ap_image_pixel_size": ("Image Pixel Size", huge, "nm")}, 100, 100,
                       where)
    assert z.pixel_size_um is None
    msgs = [str(w.message) for w in rec]
    assert len(msgs) == 1 and "zeiss.tif" in msgs[0] and "50,000,000 characters" in msgs[0], [m[:200] for m in msgs]
    assert len(msgs[0]) < 500
    img = _png(tmp_path / "frame.png", 0, (480, 480))
    _sidecar(img, "7" * 500_000)  # a sidecar under the size limit with a 500 KB value
    meta, rec = _recorded(read_metadata, img)
    msgs = [str(w.message) for w in rec]
    assert meta.pixel_size_um is None and len(msgs) == 1 and len(msgs[0]) < 500, [m[:200] for m in msgs]
    assert "frame.png.txt" in msgs[0] and "500,000 characters" in msgs[0]
