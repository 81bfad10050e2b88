"""Tests for semcathode.io._metadata: SNE sidecars, Zeiss and FEI TIFF tags."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from conftest import texture as _texture, write_jpeg as _write_jpeg
from conftest import KAIST, SEM_TIFF as SEMTIFF, needs_kaist_images as needs_kaist, needs_semtiff
from semcathode.io._databar import BarCrop, find_data_bar
from semcathode.io._metadata import SEMMetadata, read_metadata
from semcathode.io._read import read_sem



def _kaist_images() -> list[Path]:
    return sorted((KAIST / "images").glob("*/*.jpg"))


# --------------------------------------------------------------------------- helpers


# ------------------------------------------------------------------- SNE sidecar (synthetic)

_SIDECAR = (
    "[Image Info]\r\n"
    "Model : SNE-4500M Plus\r\n"
    "Date : 2020-01-31 {pm} 3:04:05\r\n"
    "Acceleated Voltage :  15 kV\r\n"
    "Magnification : x1,000 \r\n"
    "Detector Mode : BSE\r\n"
    "[   - Image Process]\r\n"
    "Brightness : 90\r\n"
    "Contrast : -12\r\n"
    "[   - Detector]\r\n"
    "Detector : 177\r\n"
    "[Active Scan]\r\n"
    "Frame Size : 480,480\r\n"
    "Pixel Size : 0.7\r\n"
)


@pytest.mark.parametrize("encoding", ["utf-8", "cp949"])
def test_sne_sidecar_parsed_and_pixel_size_rescaled(tmp_path: Path, encoding: str) -> None:
    img = tmp_path / "frame.jpg"
    _write_jpeg(img, _texture(720, 960, seed=2))
    (tmp_path / "frame.jpg.txt").write_bytes(_SIDECAR.format(pm="오후").encode(encoding))
    meta = read_metadata(img)
    assert meta.source == "sne-sidecar"
    assert meta.instrument == "SNE-4500M Plus"
    assert meta.acq_date == "2020-01-31"
    assert meta.voltage_kv == pytest.approx(15.0)
    assert meta.magnification == pytest.approx(1000.0)
    assert meta.detector == "BSE"  # 'Detector Mode', not the '[Detector]' gain value
    assert meta.brightness == pytest.approx(90.0)
    assert meta.contrast == pytest.approx(-12.0)
    assert meta.pixel_size_um == pytest.approx(0.7 * 480 / 960)
    assert read_metadata(img, width=480).pixel_size_um == pytest.approx(0.7)
    assert meta.bar_top is None


def test_no_metadata_gives_none(tmp_path: Path) -> None:
    p = tmp_path / "plain.png"
    Image.fromarray(np.zeros((80, 80), np.uint8)).save(p)
    meta = read_sem(p).meta
    assert meta.source == "none"
    assert all(v is None for k, v in meta.to_dict().items() if k != "source")


def test_metadata_to_dict_roundtrip() -> None:
    meta = SEMMetadata(pixel_size_um=0.5, detector="SED", source="sne-sidecar")
    d = meta.to_dict()
    assert d["pixel_size_um"] == 0.5 and d["detector"] == "SED" and d["source"] == "sne-sidecar"
    assert SEMMetadata(**d) == meta


# --------------------------------------------------------------------------- real data: KAIST


@pytest.mark.realdata
@needs_kaist
def test_kaist_sidecar_metadata() -> None:
    files = _kaist_images()
    f = next(p for p in files if p.parent.name == "NCM811_cycled")
    text = Path(f"{f}.txt").read_bytes().decode("utf-8", errors="replace")
    raw = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            raw.setdefault(k.strip(), v.strip())
    meta = read_sem(f).meta
    assert meta.source == "sne-sidecar"
    # 'Pixel Size' refers to the 480-px scan frame; the saved frame is 1280 px wide
    assert meta.pixel_size_um == pytest.approx(float(raw["Pixel Size"]) * 480 / 1280, rel=1e-6)
    assert meta.pixel_size_um == pytest.approx(0.2625, abs=1e-4)
    assert meta.acq_date == raw["Date"][:10] == "2019-12-03"
    assert meta.brightness == float(raw["Brightness"])
    assert meta.contrast == float(raw["Contrast"])
    assert meta.magnification == pytest.approx(500.0)
    assert meta.voltage_kv == pytest.approx(20.0)
    assert meta.detector == "SED"
    assert meta.instrument == raw["Model"]


@pytest.mark.realdata
@needs_kaist
def test_kaist_dates_match_manifest_and_missing_sidecar() -> None:
    with open(KAIST / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    no_sidecar = [r for r in rows if not r["sidecar"]]
    assert len(no_sidecar) == 1
    for r in rows[::7] + no_sidecar:
        meta = read_metadata(KAIST / r["file"])
        if r["sidecar"]:
            assert meta.acq_date == r["acq_date"], r["file"]
            assert meta.pixel_size_um == pytest.approx(0.2625, abs=1e-4)
        else:
            assert meta.source == "none"
            assert all(v is None for k, v in meta.to_dict().items() if k != "source")


# --------------------------------------------------------------------------- real data: vendor TIFFs


@pytest.mark.realdata
@needs_semtiff
def test_zeiss_cz_sem_metadata() -> None:
    sem = read_sem(SEMTIFF / "test_tiff_Zeiss_SEM_1k.tif")
    m = sem.meta
    assert m.source == "zeiss-cz-sem"
    assert m.pixel_size_um == pytest.approx(2.615, abs=1e-3)
    assert m.magnification == pytest.approx(105.0)  # "Mag = 105 X" printed in the bar
    assert m.voltage_kv == pytest.approx(25.0)  # "EHT = 25.00 kV"
    assert m.detector == "HE-SE2"
    assert m.acq_date == "2015-12-23"
    assert sem.image.shape == (768, 1024) and sem.bit_depth == 8

    m2 = read_metadata(SEMTIFF / "test_tiff_Zeiss_SEM_512pix.tif")
    assert m2.pixel_size_um == pytest.approx(0.005825, rel=1e-4)  # 5.825 nm
    assert m2.magnification == pytest.approx(50_000.0)  # '50.00 K X'
    assert m2.voltage_kv == pytest.approx(5.0)


@pytest.mark.realdata
@needs_semtiff
@pytest.mark.parametrize("name", ["FEI-Helios-Ebeam-8bits.tif", "FEI-Helios-Ebeam-16bits.tif"])
def test_fei_metadata_and_bar_from_metadata(name: str) -> None:
    path = SEMTIFF / name
    sem = read_sem(path)
    with tifffile.TiffFile(path) as tif:
        fei = tif.fei_metadata
        raw = tif.pages.first.asarray()
    m = sem.meta
    assert m.source == "fei"
    assert m.pixel_size_um == pytest.approx(3.3724, rel=1e-4)
    assert m.voltage_kv == pytest.approx(5.0)
    assert m.detector == "ETD"
    assert m.acq_date == "2016-06-13"
    h = sem.image.shape[0]
    assert m.bar_top == h - fei["PrivateFei"]["DatabarHeight"]
    assert find_data_bar(sem.image, m) == BarCrop(m.bar_top, "metadata")
    expected_bits = 16 if "16bits" in name else 8
    assert sem.bit_depth == expected_bits
    assert raw.dtype == (np.uint16 if expected_bits == 16 else np.uint8)
    np.testing.assert_allclose(sem.image, raw / float(2**expected_bits - 1), atol=1e-6)
