"""Tests for semcathode.data._synthetic (synthetic datasets on disk and planted-signal images)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from semcathode.data._synthetic import make_blob_dataset, write_synthetic_dataset
from semcathode.data._synthetic_micrograph import default_bar_height

COMPS = ("NCM333", "NCM622", "NCM811")
STATES = ("pristine", "formation", "cycled")


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# ------------------------------------------------------------- write_synthetic_dataset


def test_write_dataset_layout_and_sidecars(tmp_path):
    df = write_synthetic_dataset(tmp_path, n_per_class=2, size=(96, 128), seed=1)
    assert len(df) == 18
    assert list(df.columns[:5]) == ["path", "label", "composition", "state", "frame"]
    dirs = sorted(p.name for p in tmp_path.iterdir())
    assert dirs == sorted(f"{c}_{s}" for c in COMPS for s in STATES)
    for lab, g in df.groupby("label"):
        files = sorted((tmp_path / lab).glob("*.png"))
        assert len(files) == 2
        assert len(list((tmp_path / lab).glob("*.png.txt"))) == 2
        frames = sorted(g["frame"])
        assert frames[1] == frames[0] + 1  # consecutive stage positions
    first = df.iloc[0]
    assert first["label"] == "NCM333_pristine" and first["frame"] == 1000
    p = tmp_path / "NCM333_pristine" / "synthetic_x500__1000.png"
    assert str(p) == first["path"]
    with Image.open(p) as im:
        assert im.size == (128, 96)
        assert np.asarray(im).dtype == np.uint8
    raw = (tmp_path / "NCM333_pristine" / "synthetic_x500__1000.png.txt").read_bytes()
    assert raw.startswith(b"[Image Info]\r\n")
    text = raw.decode("utf-8")
    assert "\n" not in text.replace("\r\n", "")
    lines = text.split("\r\n")
    for needle in ("Model : SNE-4500M Plus", "Acceleated Voltage :  20 kV",
                   "Magnification : x500 ", "Detector Mode : SED", "Pixel Size : 0.7"):
        assert needle in lines, needle
    assert any(ln.startswith("Date : 2019-") for ln in lines)
    assert any(ln.startswith("Brightness : ") for ln in lines)
    assert any(ln.startswith("Contrast : ") for ln in lines)


def test_write_dataset_dict_counts_and_no_sidecar(tmp_path):
    counts = {"NCM333_pristine": 3, "NCM811_cycled": 1}
    df = write_synthetic_dataset(tmp_path, n_per_class=counts, size=(64, 80), sidecar=False,
                                 fmt="jpg")
    assert df["label"].value_counts().to_dict() == counts
    assert len(list((tmp_path / "NCM333_pristine").glob("*.jpg"))) == 3
    assert len(list((tmp_path / "NCM811_cycled").glob("*.jpg"))) == 1
    assert not list(tmp_path.rglob("*.txt"))
    assert not (tmp_path / "NCM622_formation").exists()
    with pytest.raises(ValueError):
        write_synthetic_dataset(tmp_path / "x", n_per_class={"NCM999_pristine": 1})


def test_write_dataset_deterministic_bytes(tmp_path):
    a = write_synthetic_dataset(tmp_path / "a", n_per_class=1, size=(64, 80), seed=3)
    b = write_synthetic_dataset(tmp_path / "b", n_per_class=1, size=(64, 80), seed=3)
    c = write_synthetic_dataset(tmp_path / "c", n_per_class=1, size=(64, 80), seed=4)
    for pa, pb, pc in zip(a["path"], b["path"], c["path"]):
        assert _sha(pa) == _sha(pb)
        assert _sha(pa + ".txt") == _sha(pb + ".txt")
        assert _sha(pa) != _sha(pc)


def test_session_dates_in_sidecar(tmp_path):
    df = write_synthetic_dataset(tmp_path, n_per_class=2, compositions=("NCM622",),
                                 states=("pristine", "cycled"), size=(64, 80),
                                 session_dates={"pristine": "2020-01-05",
                                                "NCM622_cycled": "2020-03-07 09:30:00"})
    def date_line(path):
        return [ln for ln in open(path + ".txt", encoding="utf-8").read().splitlines()
                if ln.startswith("Date :")][0]
    pri = df[df.state == "pristine"]["path"].tolist()
    cyc = df[df.state == "cycled"]["path"].tolist()
    assert "2020-01-05" in date_line(pri[0])
    assert date_line(cyc[0]) == "Date : 2020-03-07 오전 9:30:00"
    assert date_line(cyc[1]) != date_line(cyc[0])  # later frame, later time


def _micrograph_mean(df, state: str, size=(96, 128)) -> float:
    hb = default_bar_height(size[0])
    vals = [np.asarray(Image.open(p))[:-hb].mean() for p in df[df.state == state]["path"]]
    return float(np.mean(vals))


def test_shortcut_brightness(tmp_path):
    kw = dict(n_per_class=3, size=(96, 128), sidecar=True, seed=2)
    plain = write_synthetic_dataset(tmp_path / "plain", shortcut_brightness=0.0, **kw)
    short = write_synthetic_dataset(tmp_path / "short", shortcut_brightness=0.12, **kw)
    gap_plain = _micrograph_mean(plain, "cycled") - _micrograph_mean(plain, "pristine")
    gap_short = _micrograph_mean(short, "cycled") - _micrograph_mean(short, "pristine")
    assert gap_short > 40  # 2 * 0.12 * 255 ~ 61 grey levels
    assert abs(gap_plain) < 10
    # the brightness alone separates the states in the shortcut dataset
    means = {st: [np.asarray(Image.open(p))[:-7].mean() for p in short[short.state == st]["path"]]
             for st in STATES}
    assert max(means["pristine"]) < min(means["formation"])
    assert max(means["formation"]) < min(means["cycled"])
    # sidecar Brightness knob follows the planted offset
    def knob(path):
        for ln in open(path + ".txt", encoding="utf-8"):
            if ln.startswith("Brightness :"):
                return int(ln.split(":")[1])
    pri = knob(short[short.state == "pristine"]["path"].iloc[0])
    cyc = knob(short[short.state == "cycled"]["path"].iloc[0])
    assert pri < cyc


# ------------------------------------------------------------------ make_blob_dataset


def test_blob_dataset():
    images, labels, masks = make_blob_dataset(20, size=64, seed=0)
    assert images.shape == (20, 64, 64) and images.dtype == np.float32
    assert labels.dtype == np.int64 and masks.dtype == np.bool_ and masks.shape == images.shape
    assert images.min() >= 0 and images.max() <= 1
    assert labels.sum() == 10
    assert not masks[labels == 0].any()
    for img, m in zip(images[labels == 1], masks[labels == 1]):
        assert m.any()
        assert img[m].mean() > img[~m].mean() + 0.15
        sm = ndimage.gaussian_filter(img, 2)
        assert m[np.unravel_index(np.argmax(sm), sm.shape)]  # brightest spot is in the mask
    # negatives have no bright spot
    for img in images[labels == 0]:
        assert ndimage.gaussian_filter(img, 2).max() < 0.55
    a = make_blob_dataset(6, seed=3)
    b = make_blob_dataset(6, seed=3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], make_blob_dataset(6, seed=4)[0])
