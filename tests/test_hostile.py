"""Hostile input gets a clear answer (issues 12 and 17): the corpus of bad inputs, kept as tests.

One parametrised test per command over its bad inputs. Each asserts that the output names the
file (or key) and the problem, that the exit code is 2 for bad input (1 when a batch did its
good files and some failed), that no traceback is shown, and that nothing already written is
lost. The model used by ``predict``/``cam`` is a tiny untrained EfficientNet-Lite0 written
directly as safetensors + JSON (no training needed).

Round 2 (issue 17) follows, one section per class of failure, each test built on synthetic inputs
made in the test: no path from the command line reaches a delete, no markup reaches the HTML,
``--out`` never destroys what it points at, one run per output folder (a lock), and every
resource is bounded before the work starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import pickle
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import tracemalloc
import types
import typing
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from semcathode._files import atomic_write_csv, atomic_write_json, atomic_write_text
from semcathode.config._run import load_config
from semcathode.config._sections import ConfigError
from semcathode.data._manifest import index_folder, read_manifest, write_manifest
from semcathode.data._schema import Schema, default_schema
from semcathode.io import _metadata as smeta, _read as sio
from semcathode.io._metadata import SEMMetadataWarning, read_metadata
from semcathode.io._read import SEMReadError, read_image, read_sem
from semcathode.pipeline._console import list_bad, safe
from semcathode.pipeline._cli import main
from semcathode.pipeline._notebooks import NOTEBOOK_NAMES, notebook_spec
from semcathode.pipeline._run import run_pipeline
from semcathode.report._index import write_index
from semcathode.report._outputs import NotebookOutputs

CLASSES3 = ["NCM333_pristine", "NCM333_formation", "NCM333_cycled"]
SENTINEL = "previous,content\n1,2\n"


# --------------------------------------------------------------------------- helpers


def _png(path: Path, seed: int, shape: tuple[int, int] = (96, 128)) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


def _sidecar(img: Path, pixel: str = "0.7", frame: str | None = None) -> Path:
    frame = frame if frame is not None else f"{Image.open(img).size[0]},{Image.open(img).size[1]}"
    side = img.with_name(img.name + ".txt")
    side.write_text(f"[Image Info]\nModel : SNE-4500M Plus\nDate : 2019-09-02\n[Active Scan]\n"
                    f"Frame Size : {frame}\nPixel Size : {pixel}\n", encoding="utf-8")
    return side


def _tree(root: Path, n: int = 2) -> Path:
    """Three NCM333 class folders with ``n`` distinct images each (sidecar: 0.7 µm/px)."""
    for i, cls in enumerate(CLASSES3):
        for j in range(n):
            _sidecar(_png(root / cls / f"img_{j}.png", seed=10 * i + j))
    return root


def _assert_pixel_size_read(meta, rec, side, expected, words) -> None:
    """The pixel size read from a sidecar: ``expected`` and no warning, or unknown (None) with one
    warning naming the sidecar and holding every one of ``words``."""
    msgs = [str(w.message) for w in rec if issubclass(w.category, SEMMetadataWarning)]
    if expected is None:
        assert meta.pixel_size_um is None
        assert len(msgs) == 1 and str(side) in msgs[0], msgs
        for w in words:
            assert w in msgs[0], msgs[0]
    else:
        assert meta.pixel_size_um == pytest.approx(expected)
        assert not msgs, msgs


def _big_tiff(path: Path, side: int = 20000, tile: int = 1024) -> Path:
    """A zlib TIFF of side x side zero pixels, ~0.4 MB on disk, written tile by tile (no big array)."""
    zeros = np.zeros((tile, tile), np.uint8)
    n = ((side + tile - 1) // tile) ** 2
    tifffile.imwrite(path, (zeros for _ in range(n)), shape=(side, side), dtype=np.uint8, tile=(tile, tile),
                     compression="zlib")
    return path


def _non_utf8(folder: Path, stem: bytes = b"img_\xff\xfe") -> Path:
    """A path whose name is not valid UTF-8 (skip where the file system refuses it)."""
    name = os.fsdecode(stem + b".png")
    p = folder / name
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
        p.unlink()
    except (OSError, UnicodeError):
        pytest.skip("this file system does not accept non-UTF-8 file names")
    return p


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _assert_clean_error(code: int, err: str, expected: int, needles: list[str]) -> None:
    assert code == expected, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, f"{needle!r} not in:\n{err}"
    if expected == 2:
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: "), err


@pytest.fixture(scope="module")
def big_tiff(tmp_path_factory) -> Path:
    return _big_tiff(tmp_path_factory.mktemp("big") / "huge.tif")


# --------------------------------------------------------------------------- read_sem / metadata


SIDECARS = [  # (pixel, frame, expected µm/px at width 480 or None, words in the warning)
    ("1e999", "480,480", None, ["1e999"]),
    ("1e-300", "480,480", None, ["1e-300", "plausible"]),
    ("0.7", "-480,480", None, ["-480,480", "Frame Size"]),
    ("0.7", "0,0", None, ["'0,0'", "Frame Size"]),
    ("0.7", "1e999,480", None, ["1e999,480"]),
    ("0.7 mm", "480,480", None, ["0.7 mm", "plausible"]),
    ("-0.7", "480,480", None, ["-0.7", "not positive"]),
    ("0.7 furlong", "480,480", None, ["furlong", "unknown unit"]),
    ("abc", "480,480", None, ["abc"]),
    ("0.7", "480,480", 0.7, []),
    ("0.7 um", "480,480", 0.7, []),
    ("0.7 µm", "480,480", 0.7, []),
    ("700 nm", "480,480", 0.7, []),
    ("0.0007 mm", "480,480", 0.7, []),
    ("0.7", "960,960", 1.4, []),
]


@pytest.mark.parametrize("pixel,frame,expected,words", SIDECARS, ids=[f"{p}|{f}" for p, f, _, _ in SIDECARS])
def test_sidecar_pixel_size_checked_where_it_enters(tmp_path, pixel, frame, expected, words):
    img = _png(tmp_path / "frame.png", 0, (480, 480))
    side = _sidecar(img, pixel, frame)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        meta = read_sem(img).meta
    _assert_pixel_size_read(meta, rec, side, expected, words)


def test_infinite_or_negative_pixel_sizes_never_leave_io(tmp_path):
    img = _png(tmp_path / "f.png", 0, (100, 100))
    lo, hi = smeta.PIXEL_SIZE_RANGE_UM
    for pixel in ["1e999", "-1e999", "1e308", "1e-320", "0", "nan", "inf", "5e2", "0.7e-6 mm"]:
        for frame in ["480", "-1", "1e999", "0.000001", "1e300"]:
            _sidecar(img, pixel, frame)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                px = read_metadata(img).pixel_size_um
            assert px is None or (np.isfinite(px) and lo <= px <= hi), (pixel, frame, px)
    _sidecar(img, "0.7")
    (img.with_name(img.name + ".txt")).write_text("Magnification : x1e999\nPixel Size : 0.7\nFrame Size : 100\n")
    assert read_metadata(img).magnification is None


def test_vendor_tiff_pixel_sizes_checked():
    where = Path("/data/zeiss.tif")
    with pytest.warns(SEMMetadataWarning, match=r"zeiss\.tif.*inf.*not a finite length"):
        z = smeta._zeiss_metadata({"ap_image_pixel_size": ("Image Pixel Size", 1e999, "nm")}, 100, 100, where)
    assert z.pixel_size_um is None
    with pytest.warns(SEMMetadataWarning, match="plausible"):
        z = smeta._zeiss_metadata({"ap_image_pixel_size": ("Image Pixel Size", -5.0, "nm")}, 100, 100, where)
    assert z.pixel_size_um is None
    ok = smeta._zeiss_metadata({"ap_image_pixel_size": ("Image Pixel Size", 5.0, "nm")}, 100, 100, where)
    assert ok.pixel_size_um == pytest.approx(0.005)
    with pytest.warns(SEMMetadataWarning, match=r"fei\.tif.*PixelWidth"):
        f = smeta._fei_metadata({"Scan": {"PixelWidth": -2.6e-7}}, 100, 100, None, Path("/data/fei.tif"))
    assert f.pixel_size_um is None


def test_read_sem_refuses_a_tiff_bomb_before_decoding(big_tiff):
    assert big_tiff.stat().st_size < 2_000_000  # a small file ...
    tracemalloc.start()
    try:
        with pytest.raises(SEMReadError) as info:
            read_sem(big_tiff)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    msg = str(info.value)
    assert str(big_tiff) in msg and "20000x20000" in msg and "limit" in msg and "\n" not in msg
    assert peak < 50_000_000  # ... that would decode to 400 MB (1.6 GB as float32)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_size_limit_applies_to_every_reader_and_is_configurable(tmp_path, monkeypatch, suffix):
    p = tmp_path / f"frame{suffix}"
    arr = np.random.default_rng(0).integers(0, 256, (100, 120), dtype=np.uint8)
    if suffix == ".tif":
        tifffile.imwrite(p, arr, compression="zlib")
    else:
        Image.fromarray(arr).save(p)
    with pytest.raises(SEMReadError, match=r"120x100 px.*limit of 11,999"):
        read_sem(p, max_pixels=11_999)
    assert read_sem(p, max_pixels=12_000).image.shape == (100, 120)
    monkeypatch.setenv("SEMCATHODE_MAX_IMAGE_PIXELS", "5000")
    with pytest.raises(SEMReadError, match="SEMCATHODE_MAX_IMAGE_PIXELS"):
        read_sem(p)
    monkeypatch.setenv("SEMCATHODE_MAX_IMAGE_PIXELS", "0")  # 0 = no limit
    assert read_sem(p).image.shape == (100, 120)
    monkeypatch.delenv("SEMCATHODE_MAX_IMAGE_PIXELS")
    monkeypatch.setattr(sio, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(SEMReadError, match="limit of 100 pixels"):
        read_sem(p)


# --------------------------------------------------------------------------- data index


def _case_corrupt(root, tmp, big):
    (root / "NCM333_pristine" / "broken.png").write_bytes(b"not an image at all")
    return [], 2, ["broken.png", "cannot decode"]


def _case_huge_tiff(root, tmp, big):
    shutil.copy(big, root / "NCM333_cycled" / "huge.tif")
    return [], 2, ["huge.tif", "20000x20000", "limit"]


def _case_empty_labels(root, tmp, big):
    (tmp / "labels.csv").write_text("")
    return ["--labels-csv", str(tmp / "labels.csv")], 2, ["labels.csv", "empty"]


def _case_header_only_labels(root, tmp, big):
    (tmp / "labels.csv").write_text("path,label\n")
    return ["--labels-csv", str(tmp / "labels.csv")], 2, ["labels.csv", "no rows"]


def _case_binary_labels(root, tmp, big):
    (tmp / "labels.csv").write_bytes(b"PK\x03\x04\x00\x00\x14\x00binary\xff\xfe" * 20)
    return ["--labels-csv", str(tmp / "labels.csv")], 2, ["labels.csv", "binary"]


def _case_missing_labels(root, tmp, big):
    return ["--labels-csv", str(tmp / "nope.csv")], 2, ["nope.csv", "does not exist"]


def _case_labels_wrong_columns(root, tmp, big):
    (tmp / "labels.csv").write_text("file,class\na.png,NCM333_pristine\n")
    return ["--labels-csv", str(tmp / "labels.csv")], 2, ["labels.csv", "'path' and 'label'"]


def _case_out_is_dir(root, tmp, big):
    (tmp / "outdir").mkdir()
    return ["--out", str(tmp / "outdir")], 2, ["outdir", "is a directory"]


def _case_missing_root(root, tmp, big):
    shutil.rmtree(root)
    return [], 2, [str(root), "does not exist"]


def _case_broken_symlink_class(root, tmp, big):
    shutil.rmtree(root / "NCM333_cycled")
    (root / "NCM333_cycled").symlink_to(tmp / "gone")
    return [], 2, ["NCM333_cycled", "broken symbolic link"]


def _case_same_image_two_classes(root, tmp, big):
    src = root / "NCM333_pristine" / "img_0.png"
    shutil.copy(src, root / "NCM333_formation" / "copy.png")
    return [], 2, ["same image", "img_0.png", "copy.png", "NCM333_pristine", "NCM333_formation"]


def _case_unknown_label(root, tmp, big):
    _png(root / "NCM999_weird" / "x.png", 99)
    return [], 2, ["NCM999_weird", "unknown label"]


def _case_too_small(root, tmp, big):
    _png(root / "NCM333_pristine" / "tiny.png", 98, (20, 20))
    return [], 2, ["tiny.png", "smaller than min_size"]


INDEX_BAD = [_case_corrupt, _case_huge_tiff, _case_empty_labels, _case_header_only_labels, _case_binary_labels,
             _case_missing_labels, _case_labels_wrong_columns, _case_out_is_dir, _case_missing_root,
             _case_broken_symlink_class, _case_same_image_two_classes, _case_unknown_label, _case_too_small]


@pytest.mark.parametrize("case", INDEX_BAD, ids=[c.__name__[6:] for c in INDEX_BAD])
def test_data_index_bad_input(tmp_path, capsys, big_tiff, case):
    root = _tree(tmp_path / "data")
    out = tmp_path / "manifest.csv"
    out.write_text(SENTINEL)
    extra, expected, needles = case(root, tmp_path, big_tiff)
    argv = ["data", "index", str(root), "--out", str(out), "--compositions", "NCM333", *extra]
    if "--out" in extra:
        argv = ["data", "index", str(root), "--compositions", "NCM333", *extra]
    code, _, err = _run(argv, capsys)
    _assert_clean_error(code, err, expected, needles)
    assert out.read_text() == SENTINEL  # nothing already written is lost
    assert not out.with_name("manifest.skipped.csv").exists()


def test_data_index_non_utf8_file_name(tmp_path, capsys):
    """Must show: a non-UTF-8 file name is indexed and written; the manifest path opens the file."""
    root = _tree(tmp_path / "data")
    odd = _png(_non_utf8(root / "NCM333_pristine"), 77)
    out = tmp_path / "m.csv"
    code, stdout, err = _run(["data", "index", str(root), "--out", str(out), "--compositions", "NCM333"], capsys)
    assert code == 0, err
    assert "indexed 7 images" in stdout and "Traceback" not in err
    df = read_manifest(out)
    hit = [p for p in df["path"] if Path(p).name == odd.name]
    assert len(hit) == 1 and Path(hit[0]).is_file()  # the bytes round-trip
    assert (out.stat().st_mode & 0o777) == 0o644 & ~_umask()


def test_data_index_symlinked_class_folder_is_followed(tmp_path, capsys):
    root = _tree(tmp_path / "data")
    real = tmp_path / "elsewhere" / "cycled_images"
    shutil.move(root / "NCM333_cycled", real)
    (root / "NCM333_cycled").symlink_to(real, target_is_directory=True)
    out = tmp_path / "m.csv"
    code, stdout, err = _run(["data", "index", str(root), "--out", str(out), "--compositions", "NCM333"], capsys)
    assert code == 0, err
    df = pd.read_csv(out)
    assert (df["label"] == "NCM333_cycled").sum() == 2
    # a link back to an ancestor is no endless loop
    (real / "loop").symlink_to(root, target_is_directory=True)
    with pytest.warns(UserWarning, match="already scanned"):
        df2 = index_folder(root, schema=Schema(compositions=("NCM333",)), skip_bad=True)
    assert len(df2) == 6
    assert any("already scanned" in s["reason"] for s in df2.attrs["skipped"])


def test_data_index_bmp_and_sidecar_warning(tmp_path, capsys):
    root = _tree(tmp_path / "data")
    bmp = root / "NCM333_formation" / "frame.bmp"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (96, 128), dtype=np.uint8)).save(bmp)
    bad_px = _png(root / "NCM333_cycled" / "odd.png", 55)
    _sidecar(bad_px, "1e999")
    out = tmp_path / "m.csv"
    code, _, err = _run(["data", "index", str(root), "--out", str(out), "--compositions", "NCM333"], capsys)
    assert code == 0, err
    df = pd.read_csv(out)
    assert df["path"].str.endswith("frame.bmp").sum() == 1  # scanned and read
    row = df[df["path"].str.endswith("odd.png")].iloc[0]
    assert np.isnan(row["pixel_size_um"])
    assert "warning: " in err and "odd.png.txt" in err and "1e999" in err


def test_data_index_skip_bad_lists_files_and_stale_skipped_list_goes(tmp_path, capsys):
    root = _tree(tmp_path / "data")
    (root / "NCM333_pristine" / "broken.png").write_bytes(b"junk")
    out = tmp_path / "m.csv"
    skipped = tmp_path / "m.skipped.csv"
    code, _, err = _run(["data", "index", str(root), "--out", str(out), "--compositions", "NCM333", "--skip-bad"],
                        capsys)
    assert code == 1 and "skipped: " in err and "broken.png" in err and "Traceback" not in err
    assert len(pd.read_csv(out)) == 6 and skipped.exists()
    (root / "NCM333_pristine" / "broken.png").unlink()
    code, _, err = _run(["data", "index", str(root), "--out", str(out), "--compositions", "NCM333"], capsys)
    assert code == 0, err
    assert not skipped.exists()  # a clean re-index leaves no stale list of skipped files


# --------------------------------------------------------------------------- run


@pytest.fixture()
def no_pipeline(monkeypatch):
    """``run`` must fail before any work: a stand-in pipeline module that fails the test if used."""
    fake = types.ModuleType("semcathode.pipeline._run")

    class PipelineError(RuntimeError):
        pass

    def run_pipeline(*a, **k):
        raise AssertionError("the pipeline started despite bad input")

    fake.PipelineError, fake.run_pipeline = PipelineError, run_pipeline
    monkeypatch.setitem(sys.modules, "semcathode.pipeline._run", fake)
    import semcathode

    monkeypatch.setattr(semcathode, "pipeline", fake, raising=False)


def _cfg_file(tmp, data: bytes | str, name: str = "c.yaml") -> str:
    p = tmp / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(p)


RUN_BAD = [
    ("batch_size_0", lambda t: ["--set", "stage1.batch_size=0"], ["stage1.batch_size", "= 0", "[1, 65536]"]),
    ("batch_size_neg", lambda t: ["--set", "stage2.batch_size=-5"], ["stage2.batch_size", "-5"]),
    ("epochs_neg", lambda t: ["--set", "stage1.epochs=-1"], ["stage1.epochs", ">= 0"]),
    ("lr_nan", lambda t: ["--set", "stage1.lr=.nan"], ["stage1.lr", "nan", "(0, 10]"]),
    ("valid_frac", lambda t: ["--set", "data.valid_frac=1.5"], ["data.valid_frac", "[0, 1)"]),
    ("fractions_sum", lambda t: ["--set", "data.valid_frac=0.5", "--set", "data.test_frac=0.6"],
     ["data.valid_frac", "data.test_frac", "< 1"]),
    ("size_0", lambda t: ["--set", "preprocess.size=0"], ["preprocess.size", "[16, 4096]"]),
    ("seeds_empty", lambda t: ["--set", "protocol.seeds=[]"], ["protocol.seeds", "empty"]),
    ("n_boot_0", lambda t: ["--set", "evaluate.n_boot=0"], ["evaluate.n_boot", ">= 1"]),
    ("mode_enum", lambda t: ["--set", "preprocess.mode=tiles"], ["preprocess.mode", "scale, resize"]),
    ("many_at_once", lambda t: ["--set", "stage1.epochs=-1", "--set", "stage1.batch_size=0",
                                "--set", "target.per_class_train=0", "--set", "cam.opacity=2"],
     ["4 invalid", "stage1.epochs", "stage1.batch_size", "target.per_class_train", "cam.opacity"]),
    ("unclosed_bracket", lambda t: ["--set", "stage1.epochs=[1"], ["stage1.epochs=[1", "not valid YAML"]),
    ("no_equals", lambda t: ["--set", "stage1.epochs"], ["stage1.epochs", "section.key=value"]),
    ("unknown_key", lambda t: ["--set", "stage1.epochz=3"], ["stage1.epochz", "unknown"]),
    ("binary_config", lambda t: ["--config", _cfg_file(t, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)],
     ["c.yaml", "binary"]),
    ("latin1_config", lambda t: ["--config", _cfg_file(t, "stage1:\n  epochs: 2 # caf\xe9\n".encode("latin-1"))],
     ["c.yaml", "UTF-8"]),
    ("bad_yaml_config", lambda t: ["--config", _cfg_file(t, "stage1: [epochs: 2\n")], ["c.yaml", "not valid YAML"]),
    ("list_config", lambda t: ["--config", _cfg_file(t, "- a\n- b\n")], ["c.yaml", "mapping"]),
    ("missing_config", lambda t: ["--config", str(t / "nope.yaml")], ["nope.yaml", "does not exist"]),
    ("dir_config", lambda t: ["--config", str(t)], ["not a regular file"]),
    ("profile_conflict", lambda t: ["--profile", "demo", "--config", _cfg_file(t, "profile: paper\n")],
     ["conflicting profiles", "'paper'", "'demo'"]),
    ("config_bad_value", lambda t: ["--config", _cfg_file(t, "stage1:\n  batch_size: 0\n  lr: -1\n")],
     ["stage1.batch_size", "stage1.lr"]),
    ("out_is_file", lambda t: ["--out", _cfg_file(t, "x", "report.txt")], ["report.txt", "is a file"]),
    ("data_missing", lambda t: ["--data", str(t / "nodata")], ["nodata", "does not exist"]),
]


@pytest.mark.parametrize("name,make,needles", RUN_BAD, ids=[r[0] for r in RUN_BAD])
def test_run_bad_input(tmp_path, capsys, no_pipeline, name, make, needles):
    report = tmp_path / "reports" / "smoke"
    report.mkdir(parents=True)
    (report / "index.html").write_text("the previous report")
    extra = make(tmp_path)
    argv = ["run"] + ([] if "--profile" in extra else ["--profile", "smoke"])
    argv += ([] if "--out" in extra else ["--out", str(report)]) + extra
    code, _, err = _run(argv, capsys)
    _assert_clean_error(code, err, 2, needles)
    assert len(err.strip().splitlines()) == 1  # one line
    assert (report / "index.html").read_text() == "the previous report"
    assert not report.with_name("smoke.staging").exists()


def test_config_file_profile_is_the_profile_used(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("profile: paper\nstage1:\n  epochs: 3\n")
    cfg = load_config(None, f)
    paper = load_config("paper")
    assert cfg.profile == "paper" and cfg.stage1.epochs == 3
    assert cfg.protocol.seeds == paper.protocol.seeds and cfg.preprocess.size == paper.preprocess.size
    assert load_config("paper", f).stage1.epochs == 3  # agreeing is fine
    with pytest.raises(ConfigError, match="conflicting profiles"):
        load_config("smoke", f)
    f.write_text("profile: custom\nstage1:\n  epochs: 3\n")
    assert load_config(None, f).profile == "custom"
    assert load_config(None, None, ["profile=demo"]).profile == "demo"
    assert load_config(None).profile == "smoke" and load_config(None, default_profile="demo").profile == "demo"


def test_run_uses_the_file_profile_when_none_is_given(tmp_path, capsys, monkeypatch):
    seen = {}
    fake = types.ModuleType("semcathode.pipeline._run")
    fake.PipelineError = RuntimeError
    fake.run_pipeline = lambda cfg, out, **k: seen.update(profile=cfg.profile, out=Path(out))
    monkeypatch.setitem(sys.modules, "semcathode.pipeline._run", fake)
    monkeypatch.chdir(tmp_path)
    cfg = _cfg_file(tmp_path, "profile: paper\n")
    assert main(["run", "--config", cfg, "-q"]) == 0
    assert seen == {"profile": "paper", "out": Path("reports") / "paper"}


# --------------------------------------------------------------------------- predict / cam


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny untrained Lite0 as safetensors + JSON (scale mode, 32-px tiles at 1.4 µm/px)."""
    import timm
    import torch
    from safetensors.torch import save_file

    from semcathode.models._modelcheck import FORMAT, classes_digest
    from semcathode.data._preprocess import PreprocessParams

    d = tmp_path_factory.mktemp("model")
    classes = default_schema().classes
    torch.manual_seed(0)
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=len(classes)).eval()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(d / "model.safetensors"),
              metadata={"format": FORMAT})
    pp = PreprocessParams(mode="scale", size=32)
    pp = dataclasses.replace(pp, **{"scale_um": 1.4} if hasattr(pp, "scale_um") else {})
    meta = {"format": FORMAT, "classes": classes, "classes_digest": classes_digest(classes),
            "backbone": "efficientnet_lite0", "timm_name": "tf_efficientnet_lite0", "num_classes": len(classes),
            "preprocess": dataclasses.asdict(pp), "normalize": "dataset", "mean": [0.5] * 3, "std": [0.5] * 3,
            "bar": {"method": "none", "fraction": 0.0667}}
    (d / "model.json").write_text(json.dumps(meta))
    return d


def _model_variant(model_dir: Path, tmp: Path, edit=None, raw_json: str | None = None) -> str:
    d = tmp / "m"
    d.mkdir(exist_ok=True)
    (d / "model.safetensors").symlink_to(model_dir / "model.safetensors")
    meta = json.loads((model_dir / "model.json").read_text())
    if edit:
        edit(meta)
    (d / "model.json").write_text(raw_json if raw_json is not None else json.dumps(meta))
    return str(d / "model.safetensors")


def _images(folder: Path) -> dict[str, Path]:
    """good.png (0.7 µm/px), inf.png (sidecar Pixel Size 1e999), broken.png (not an image)."""
    good = _png(folder / "good.png", 1, (128, 160))
    _sidecar(good)
    inf = _png(folder / "inf.png", 2, (128, 160))
    _sidecar(inf, "1e999")
    broken = folder / "broken.png"
    broken.write_bytes(b"\x89PNG truncated")
    return {"good": good, "inf": inf, "broken": broken}


def _no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("network access while loading a model")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def _set(key, value):
    def edit(m):
        node = m
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return edit


PREDICT_BAD = [  # (id, json edit | raw json, extra argv, words)
    ("std_zero", _set("std", [0, 0, 0]), None, [], ["model.json", "field 'std'", "> 0"]),
    ("classes_reversed", lambda m: m["classes"].reverse(), None, [], ["model.json", "field 'classes'", "classes_digest"]),
    ("hf_hub_name", _set("timm_name", "hf-hub:timm/efficientnet_b0.ra_in1k"), None, [],
     ["model.json", "field 'timm_name'", "hub"]),
    ("unknown_arch", _set("timm_name", "convnext_gigantic"), None, [], ["field 'timm_name'", "unknown architecture"]),
    ("mean_short", _set("mean", [0.5, 0.5]), None, [], ["field 'mean'", "3 numbers"]),
    ("size_zero", _set("preprocess.size", 0), None, [], ["field 'preprocess.size'", "[16, 4096]"]),
    ("json_garbage", None, "{not json", [], ["model.json", "not valid JSON"]),
    ("pixel_size_inf", None, None, ["--pixel-size", "inf"], ["--pixel-size", "plausible"]),
    ("pixel_size_zero", None, None, ["--pixel-size", "0"], ["--pixel-size", "plausible"]),
]


@pytest.mark.parametrize("name,edit,raw,extra,words", PREDICT_BAD, ids=[p[0] for p in PREDICT_BAD])
def test_predict_bad_model_or_option(tmp_path, capsys, monkeypatch, model_dir, name, edit, raw, extra, words):
    _no_network(monkeypatch)
    model = _model_variant(model_dir, tmp_path, edit, raw)
    imgs = _images(tmp_path / "imgs")
    out = tmp_path / "pred.csv"
    out.write_text(SENTINEL)
    code, _, err = _run(["predict", model, str(imgs["good"]), "--out", str(out), *extra], capsys)
    _assert_clean_error(code, err, 2, words)
    assert len(err.strip().splitlines()) == 1
    assert out.read_text() == SENTINEL


def test_predict_bad_files_and_outputs(tmp_path, capsys, model_dir):
    imgs = _images(tmp_path / "imgs")
    out = tmp_path / "pred.csv"
    out.write_text(SENTINEL)
    # missing model, pickle renamed .safetensors, --out a directory: one line, exit 2, nothing lost
    pkl = tmp_path / "evil.safetensors"
    pkl.write_bytes(pickle.dumps({"a": 1}))
    (tmp_path / "evil.json").write_text("{}")
    (tmp_path / "outdir").mkdir()
    for argv, words in [
        (["predict", str(tmp_path / "nope.safetensors"), str(imgs["good"]), "--out", str(out)], ["nope.safetensors", "not found"]),
        (["predict", str(pkl), str(imgs["good"]), "--out", str(out)], ["evil.safetensors"]),
        (["predict", str(model_dir / "model.safetensors"), str(imgs["good"]), "--out", str(tmp_path / "outdir")],
         ["outdir", "is a directory"]),
        (["predict", str(model_dir / "model.safetensors"), str(imgs["broken"]), str(tmp_path / "nothing.png"),
          "--out", str(out)], ["broken.png", "nothing.png", "none of the 2"]),
        (["predict", str(model_dir / "model.safetensors"), str(tmp_path / "outdir"), "--out", str(out)],
         ["no images found"]),
    ]:
        code, _, err = _run(argv, capsys)
        _assert_clean_error(code, err, 2, words)
        assert out.read_text() == SENTINEL


def test_predict_batch_keeps_good_files(tmp_path, capsys, model_dir):
    """Must show: a good image and one whose sidecar says 1e999 (plus a broken one) in one folder."""
    imgs = _images(tmp_path / "imgs")
    out = tmp_path / "pred.csv"
    code, stdout, err = _run(["predict", str(model_dir / "model.safetensors"), str(tmp_path / "imgs"),
                              "--out", str(out)], capsys)
    assert code == 1 and "Traceback" not in err, err
    assert "warning: " in err and "inf.png.txt" in err and "1e999" in err
    assert "bad: " in err and "broken.png" in err
    df = pd.read_csv(out).set_index(pd.read_csv(out)["path"].map(lambda p: Path(p).name))
    assert df.loc["good.png", "pred"] in default_schema().classes and df.loc["good.png", "error"] != df.loc["good.png", "error"]
    assert isinstance(df.loc["broken.png", "error"], str) and "broken.png" in df.loc["broken.png", "error"]
    assert isinstance(df.loc["inf.png", "error"], str) and "pixel size" in df.loc["inf.png", "error"]
    assert "wrote 1 predictions" in stdout
    assert (out.stat().st_mode & 0o777) == 0o644 & ~_umask()
    # with a pixel size for files that lack one, the 1e999 file is predicted too
    code, _, err = _run(["predict", str(model_dir / "model.safetensors"), str(imgs["good"]), str(imgs["inf"]),
                         "--out", str(out), "--pixel-size", "0.7"], capsys)
    assert code == 0, err
    df = pd.read_csv(out)
    assert df["pred"].notna().all() and len(df) == 2


def test_predict_non_utf8_file_name(tmp_path, capsys, model_dir):
    img = _png(_non_utf8(tmp_path / "imgs"), 3, (128, 160))
    _sidecar(img)
    out = tmp_path / "pred.csv"
    code, _, err = _run(["predict", str(model_dir / "model.safetensors"), str(tmp_path / "imgs"), "--out", str(out)],
                        capsys)
    assert code == 0, err
    df = pd.read_csv(out, encoding_errors="surrogateescape")
    assert Path(df["path"][0]) == img and df["pred"].notna().all()


CAM_BAD = [
    ("unknown_method", ["--method", "nope"], ["unknown CAM method", "'nope'"]),
    ("unknown_target", ["--target", "NCM999_cycled"], ["unknown target class", "NCM999_cycled"]),
    ("target_index", ["--target", "42"], ["unknown target class", "42"]),
    ("out_is_file", ["OUT_FILE"], ["out.txt", "is a file"]),
    ("pixel_size", ["--pixel-size", "-1"], ["--pixel-size", "plausible"]),
]


@pytest.mark.parametrize("name,extra,words", CAM_BAD, ids=[c[0] for c in CAM_BAD])
def test_cam_bad_input(tmp_path, capsys, model_dir, name, extra, words):
    imgs = _images(tmp_path / "imgs")
    out = tmp_path / "cams"
    out.mkdir()
    (out / "previous.png").write_bytes(b"previous")
    argv = ["cam", str(model_dir / "model.safetensors"), str(imgs["good"]), "--out", str(out), *extra]
    if extra == ["OUT_FILE"]:
        (tmp_path / "out.txt").write_text("x")
        argv = ["cam", str(model_dir / "model.safetensors"), str(imgs["good"]), "--out", str(tmp_path / "out.txt")]
    code, _, err = _run(argv, capsys)
    _assert_clean_error(code, err, 2, words)
    assert sorted(p.name for p in out.iterdir()) == ["previous.png"]


def test_cam_batch_keeps_good_files(tmp_path, capsys, model_dir):
    imgs = _images(tmp_path / "imgs")
    out = tmp_path / "cams"
    code, stdout, err = _run(["cam", str(model_dir / "model.safetensors"), str(imgs["good"]), str(imgs["broken"]),
                              str(tmp_path / "missing.png"), "--out", str(out)], capsys)
    assert code == 1 and "Traceback" not in err, err
    assert "broken.png" in err and "missing.png" in err and "wrote 1 overlays" in stdout
    assert len(list(out.glob("good*.png"))) == 1


# --------------------------------------------------------------------------- fetch


@pytest.fixture()
def one_file_registry(monkeypatch, tmp_path):
    import hashlib

    import semcathode.data._download as ds

    data = b"hello"
    reg = pd.DataFrame([("images/a.png", hashlib.sha256(data).hexdigest(), len(data), "0" * 40, "a.png")],
                       columns=["file", "sha256", "bytes", "upstream_commit", "upstream_path"])
    monkeypatch.setattr(ds, "registry", lambda name="kaist-ncm": reg)
    return data


def test_fetch_bad_mirror(tmp_path, capsys, one_file_registry):
    mirror = tmp_path / "mirror"
    (mirror / "images" / "a.png").mkdir(parents=True)  # a directory where the file should be
    dest = tmp_path / "dest"
    code, _, err = _run(["data", "fetch", "kaist-ncm", str(dest), "--mirror", str(mirror)], capsys)
    _assert_clean_error(code, err, 2, ["a.png", "is a directory"])
    code, _, err = _run(["data", "fetch", "kaist-ncm", str(dest), "--mirror", str(tmp_path / "nomirror")], capsys)
    _assert_clean_error(code, err, 2, ["nomirror", "not a folder"])
    shutil.rmtree(mirror / "images" / "a.png")
    (mirror / "images" / "a.png").write_bytes(b"tampered")
    code, _, err = _run(["data", "fetch", "kaist-ncm", str(dest), "--mirror", str(mirror)], capsys)
    _assert_clean_error(code, err, 2, ["a.png", "sha256 mismatch"])


# --------------------------------------------------------------------------- the CLI itself


def test_interrupt_debug_and_unexpected_errors(monkeypatch, capsys, tmp_path):
    import semcathode.pipeline._cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_fetch", interrupted)
    code, out, err = _run(["data", "fetch", "kaist-ncm", str(tmp_path)], capsys)
    assert code == 130 and err.strip() == "interrupted" and "Traceback" not in err

    def said_it_already(args):
        print("interrupted in notebook 02", file=sys.stderr)
        raise SystemExit(130)

    monkeypatch.setattr(cli, "_cmd_fetch", said_it_already)
    with pytest.raises(SystemExit) as info:
        main(["data", "fetch", "kaist-ncm", str(tmp_path)])
    assert info.value.code == 130 and capsys.readouterr().err.strip() == "interrupted in notebook 02"

    def bug(args):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(cli, "_cmd_fetch", bug)
    code, _, err = _run(["data", "fetch", "kaist-ncm", str(tmp_path)], capsys)
    assert code == 1 and err.strip() == "error: unexpected ZeroDivisionError: boom (run with --debug for the traceback)"
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "data", "fetch", "kaist-ncm", str(tmp_path)])
    with pytest.raises(ZeroDivisionError):
        main(["data", "fetch", "kaist-ncm", str(tmp_path), "--debug"])


def test_help_does_not_import_heavy_modules():
    import subprocess

    code = ("import sys, semcathode.pipeline._cli as c\n"
            "try:\n    c.build_parser().parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'fastai', 'pandas', 'matplotlib', 'timm', 'semcathode.io._read') if m in sys.modules]\n"
            "print(heavy)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"


# --------------------------------------------------------------------------- file modes


def _umask() -> int:
    from semcathode._files import current_umask

    return current_umask()


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_written_files_get_the_usual_mode(tmp_path, mask):
    old = os.umask(mask)
    try:
        paths = [atomic_write_text(tmp_path / "a.txt", "x"), atomic_write_json(tmp_path / "a.json", {"a": 1}),
                 atomic_write_csv(tmp_path / "a.csv", pd.DataFrame({"a": [1]}))]
        df = pd.DataFrame({"path": ["p"], "label": ["l"], "sha256": ["s"]})
        df.attrs["skipped"] = [{"path": "x", "reason": "y"}]
        paths += [write_manifest(df, tmp_path / "m.csv"), tmp_path / "m.skipped.csv"]
    finally:
        os.umask(old)
    for p in paths:
        assert (p.stat().st_mode & 0o777) == 0o666 & ~mask, p


# ===========================================================================
# Round 2 (issue 17), classes 2: no markup from a value reaches the report HTML
# ===========================================================================


XSS_NAME = "<img src=x onerror=alert(1)>frame_0001.png"


XSS_SESSION = "<script>alert('session')</script>"


def test_index_html_escapes_every_table_value_and_text(tmp_path):
    out = NotebookOutputs(tmp_path, "01_data")
    table = pd.DataFrame({"path": [f"NCM333_pristine/{XSS_NAME}"], "session": [XSS_SESSION],
                          "note": ["[click](javascript:alert(2))\n| forged | row |"],
                          "<b>col</b>": [1]})
    out.table(table, "files", "Files", section="Summary")
    out.text("Summary", f"Odd file: {XSS_NAME}")
    out.save()
    md, page = write_index(tmp_path, notebooks=[("01_data", "Dataset")])
    html = page.read_text()
    for raw in ("<img src=x", "<script>", "<b>col</b>", "javascript:alert(2)\"", 'href="javascript'):
        assert raw not in html, raw
    assert "&lt;img src=x onerror=alert(1)&gt;frame_0001.png" in html  # shown as text
    assert "&lt;script&gt;" in html
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert rows and not any(re.search(r"(?<!\\)[<>]", r) for r in rows)  # every < > escaped in the markdown too
    # the newline in a value did not start a table row of its own
    assert not any(line.startswith("| forged") for line in text.splitlines())


# ===========================================================================
# Round 2 (issue 17), classes 1, 4, 5, 16: notebook names, the output-folder lock, user data folders, symlinked data roots
# ===========================================================================


KNOWN = ", ".join(NOTEBOOK_NAMES)


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (links not followed) with its content."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_one_line_error(code: int, err: str, needles: list[str]) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in err, f"{needle!r} not in:\n{err}"


@pytest.fixture()
def papermill_must_not_run(monkeypatch):
    """The run must stop before a notebook is executed."""
    import papermill

    def execute_notebook(*a, **k):
        raise AssertionError("a notebook was executed despite bad input")

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)


@pytest.fixture()
def fake_papermill(monkeypatch):
    """A stand-in for ``papermill.execute_notebook``: writes the executed copy, ``outputs.json`` and
    the declared products of the notebook at once; ``calls`` records the notebooks run and
    ``locked`` whether the report's lock file was there meanwhile. Setting ``fail`` to an
    exception makes it raise that instead (after recording the call)."""
    import papermill

    state = {"calls": [], "locked": [], "fail": None}

    def execute_notebook(input_path, output_path, parameters=None, cwd=None, **kw):
        name = Path(input_path).stem
        state["calls"].append(name)
        staging = Path(cwd)
        state["locked"].append(staging.with_name(staging.name.replace(".staging", ".lock")).is_file())
        if state["fail"] is not None:
            raise state["fail"]
        run = Path(cwd)
        (run / name).mkdir(parents=True, exist_ok=True)
        for pattern in notebook_spec(name).products:
            product = run / pattern.replace("*", "ft_only")
            product.write_text("path,label\nNCM333_pristine/a.png,NCM333_pristine\n" if product.suffix == ".csv"
                               else "weights")
        (run / name / "outputs.json").write_text(json.dumps(
            {"notebook": name, "sections": [], "files": [], "summary": {}, "wall_s": 0.0}))
        nbformat.write(nbformat.v4.new_notebook(), output_path)

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    return state


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _lock(path: Path, pid: int, host: str | None = None) -> str:
    text = json.dumps({"pid": pid, "host": host or socket.gethostname(), "started": "2024-01-01T00:00:00+00:00"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


@pytest.mark.parametrize("bad", ["..", "../../victim"])
def test_run_refuses_a_notebook_name_that_is_a_path(tmp_path, capsys, papermill_must_not_run, bad):
    (tmp_path / "R").mkdir()
    (tmp_path / "R" / "beside.txt").write_text("next to the report")
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "keep.txt").write_text("two levels up")
    before = _snapshot(tmp_path)
    code, _, err = _run(["run", "--profile", "smoke", "--out", str(tmp_path / "R" / "rep"), "--notebooks", bad], capsys)
    _assert_one_line_error(code, err, [repr(bad), "unknown notebook", KNOWN])
    assert _snapshot(tmp_path) == before
    assert sorted(p.name for p in (tmp_path / "R").iterdir()) == ["beside.txt"]  # no staging, no lock


def test_run_pipeline_checks_notebook_names_before_touching_the_disk(tmp_path, papermill_must_not_run):
    from semcathode.pipeline._notebooks import UnknownNotebookError

    out = tmp_path / "R" / "rep"
    for names in ([".."], ["01_data", "../../victim"], ["01_data", "01_data"], ["01_data.ipynb"]):
        with pytest.raises(UnknownNotebookError) as info:
            run_pipeline(load_config("smoke"), out, notebooks=names, log=lambda m: None)
        assert isinstance(info.value, ConfigError)  # the CLI's bad-input type: exit 2
        assert repr(names[-1]) in str(info.value) and KNOWN in str(info.value)
        assert not (tmp_path / "R").exists()  # no staging folder, no lock, not even the parent


def test_run_refuses_to_replace_a_folder_that_is_not_a_report(tmp_path, capsys, fake_papermill):
    mine = tmp_path / "thesis"
    (mine / "chapters").mkdir(parents=True)
    (mine / "chapters" / "one.tex").write_text("years of work")
    (mine / "index.html").write_text("my page")
    before = _snapshot(tmp_path)
    code, _, err = _run(["run", "--profile", "smoke", "--out", str(mine), "--notebooks", "01_data"], capsys)
    _assert_one_line_error(code, err, [str(mine), "not a report folder", "run_state.json"])
    assert _snapshot(tmp_path) == before and fake_papermill["calls"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]


def test_run_force_never_deletes_a_user_folder_named_like_the_staging_folder(tmp_path, capsys, fake_papermill):
    (tmp_path / "rep.staging").mkdir()
    (tmp_path / "rep.staging" / "notes.txt").write_text("mine")
    before = _snapshot(tmp_path)
    code, _, err = _run(["run", "--profile", "smoke", "--out", str(tmp_path / "rep"), "--notebooks", "01_data",
                         "--force"], capsys)
    _assert_one_line_error(code, err, ["rep.staging", "not a report folder"])
    assert _snapshot(tmp_path) == before and fake_papermill["calls"] == []


@pytest.mark.parametrize("where", ["home", "cwd", "cwd_parent"])
def test_run_refuses_the_home_folder_and_the_working_directory(tmp_path, capsys, monkeypatch, fake_papermill, where):
    home, work = tmp_path / "home", tmp_path / "a" / "b"
    home.mkdir()
    work.mkdir(parents=True)
    (work / "keep.txt").write_text("cwd file")
    (tmp_path / "a" / "run_state.json").write_text("{}")  # looks like a report, still a parent of the cwd
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    out = {"home": home, "cwd": work, "cwd_parent": tmp_path / "a"}[where]
    before = _snapshot(tmp_path)
    code, _, err = _run(["run", "--profile", "smoke", "--out", str(out), "--notebooks", "01_data"], capsys)
    _assert_one_line_error(code, err, [str(out), "refusing to replace"])
    assert _snapshot(tmp_path) == before and fake_papermill["calls"] == []
    assert home.is_dir() and work.is_dir()


def test_a_second_run_on_a_locked_report_is_refused_and_changes_nothing(tmp_path, capsys, fake_papermill):
    out = tmp_path / "reports" / "rep"
    code, _, err = _run(["run", "--profile", "smoke", "--out", str(out), "--notebooks", "01_data"], capsys)
    assert code == 0, err
    lock = out.with_name("rep.lock")
    assert not lock.exists()  # released after success
    held = _lock(lock, os.getpid())  # a live process (this one) holds it
    before = _snapshot(tmp_path)
    fake_papermill["calls"].clear()
    code, _, err = _run(["run", "--profile", "smoke", "--out", str(out), "--notebooks", "01_data", "--force"], capsys)
    _assert_one_line_error(code, err, [str(lock), f"pid {os.getpid()}", "in use"])
    assert _snapshot(tmp_path) == before and fake_papermill["calls"] == []
    assert lock.read_text() == held and not out.with_name("rep.staging").exists()


def test_a_lock_held_on_another_host_is_respected(tmp_path, fake_papermill):
    from semcathode._files import LockedError

    out = tmp_path / "rep"
    _lock(out.with_name("rep.lock"), _dead_pid(), host="some-other-machine")
    with pytest.raises(LockedError, match="some-other-machine"):
        run_pipeline(load_config("smoke"), out, notebooks=["01_data"], log=lambda m: None, html=False)
    assert fake_papermill["calls"] == [] and not out.exists()


def test_a_stale_lock_is_taken_over_and_released(tmp_path, fake_papermill):
    out = tmp_path / "rep"
    lock = out.with_name("rep.lock")
    dead = _dead_pid()
    _lock(lock, dead)
    logs: list[str] = []
    run_pipeline(load_config("smoke"), out, notebooks=["01_data"], log=logs.append, html=False)
    assert fake_papermill["calls"] == ["01_data"] and fake_papermill["locked"] == [True]
    assert (out / "run_state.json").is_file()
    assert any("stale lock" in m and str(lock) in m and f"pid {dead}" in m for m in logs), logs
    assert not lock.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


@pytest.mark.parametrize("how", ["notebook_fails", "unexpected_error", "ctrl_c"])
def test_the_lock_is_released_however_the_run_ends(tmp_path, fake_papermill, how):
    import papermill

    from semcathode.pipeline._notebooks import PipelineError

    out = tmp_path / "rep"
    fake_papermill["fail"] = {
        "notebook_fails": papermill.PapermillExecutionError(2, 1, "boom", "ValueError", "boom", []),
        "unexpected_error": RuntimeError("disk on fire"),
        "ctrl_c": KeyboardInterrupt(),
    }[how]
    expected = {"notebook_fails": PipelineError, "unexpected_error": RuntimeError, "ctrl_c": SystemExit}[how]
    with pytest.raises(expected):
        run_pipeline(load_config("smoke"), out, notebooks=["01_data"], log=lambda m: None, html=False)
    assert fake_papermill["calls"] == ["01_data"] and fake_papermill["locked"] == [True]  # held while running
    assert not out.with_name("rep.lock").exists()  # and released
    assert out.with_name("rep.staging").is_dir()  # the partial run stays for resume


@pytest.mark.parametrize("content", [{}, {"notes.txt": "not a micrograph"}, {"sub/readme.md": "# nothing"}])
def test_data_folder_without_micrographs_is_bad_input_and_stays_unchanged(tmp_path, capsys, papermill_must_not_run,
                                                                        content):
    from semcathode.data._factory import data_dir_for

    data = tmp_path / "mydata"
    data.mkdir()
    for name, text in content.items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text(text)
    before = _snapshot(data)
    code, _, err = _run(["run", "--profile", "smoke", "--out", str(tmp_path / "rep"), "--data", str(data)], capsys)
    _assert_one_line_error(code, err, ["no micrographs found in", str(data), "supported:", ".png", ".tif"])
    assert _snapshot(data) == before and not (tmp_path / "rep.staging").exists()
    cfg = load_config("smoke", overrides={"data.data_dir": str(data), "preprocess.cache_dir": str(tmp_path / "c")})
    with pytest.raises(ConfigError, match="no micrographs found in"):
        data_dir_for(cfg.data, tmp_path / "c")  # the library: nothing written into the user's folder either
    assert _snapshot(data) == before and not (tmp_path / "c").exists()


def test_synthetic_data_is_written_only_into_the_cache(tmp_path):
    from semcathode.data._factory import data_dir_for

    mine = tmp_path / "mine"
    mine.mkdir()
    cache = tmp_path / "cache"
    small = {"data.synthetic_per_class": 1, "data.synthetic_size": 96, "preprocess.cache_dir": str(cache)}
    with pytest.raises(ConfigError, match="mine"):
        data_dir_for(load_config("smoke", overrides={**small, "data.data_dir": str(mine)}).data, cache)
    assert list(mine.iterdir()) == []
    root = data_dir_for(load_config("smoke", overrides=small).data, cache)
    assert cache in root.parents and any(root.rglob("*.png"))
    # a given folder that holds images (here reached through a link) is used as it is, unchanged
    link = tmp_path / "link"
    link.symlink_to(root, target_is_directory=True)
    before = _snapshot(root)
    assert data_dir_for(load_config("smoke", overrides={**small, "data.data_dir": str(link)}).data, cache) == link
    assert _snapshot(root) == before


@pytest.mark.parametrize("spelling", ["absolute_link", "relative_link"])
def test_portable_report_relativises_data_reached_through_a_link(tmp_path, monkeypatch, spelling):
    from semcathode.pipeline._roots import report_roots
    from semcathode.report._portable import absolute_paths, make_portable

    real = tmp_path / "store" / "data"
    img = _png(real / "NCM333_pristine" / "img_0.png", seed=1)
    (tmp_path / "work").mkdir()
    link = tmp_path / "work" / "shared"
    link.symlink_to(tmp_path / "store", target_is_directory=True)
    via_link = link / "data"
    monkeypatch.chdir(tmp_path / "work")
    data_dir = str(via_link) if spelling == "absolute_link" else os.path.join("shared", "data")
    cfg = load_config("smoke", overrides={"data.dataset": "folder", "data.data_dir": data_dir})
    run = tmp_path / "run"
    spellings = [str(via_link), str(real), os.path.realpath(real)]
    rel = "NCM333_pristine/img_0.png"
    (run / "01_data").mkdir(parents=True)
    (run / "01_data" / "manifest.csv").write_text(
        f"path,label\n{via_link / rel},NCM333_pristine\n{img},NCM333_pristine\n")
    (run / "01_data" / "outputs.json").write_text(json.dumps(
        {"files": ["01_data/manifest.csv"], "summary": {"data_root": str(via_link), "first": str(via_link / rel),
                                                          "resolved": str(img), "odd": f"{via_link}/./{rel}",
                                                          "odder": f"{real}//{rel}"}}))
    (run / "README.md").write_text(f"Data: {via_link}\n\nFirst image: `{via_link / rel}`, really {img}.\n")
    (run / "index.html").write_text(f"<p>data in {via_link}/</p><img src='{img}'>")
    assert absolute_paths(run, tuple(spellings))  # the fake report names the data root in every spelling
    make_portable(run, **report_roots(cfg))
    assert absolute_paths(run, tuple(spellings) + (str(tmp_path),)) == {}
    assert (run / "01_data" / "manifest.csv").read_text().splitlines()[1:] == [f"{rel},NCM333_pristine"] * 2
    summary = json.loads((run / "01_data" / "outputs.json").read_text())["summary"]
    assert summary == {"data_root": ".", "first": rel, "resolved": rel, "odd": rel, "odder": rel}


@pytest.mark.slow
def test_smoke_report_through_a_symlinked_data_root_holds_no_absolute_path(tmp_path):
    """The real notebooks under the smoke profile, the data reached through a link (a fresh clone
    whose ``../shared`` is a link): no report file names an absolute path of this machine."""
    from semcathode.data._synthetic import write_synthetic_dataset
    from semcathode.report._portable import absolute_paths

    smoke = load_config("smoke")
    s = smoke.data.synthetic_size
    real = tmp_path / "store" / "synthetic"
    write_synthetic_dataset(real, n_per_class=smoke.data.synthetic_per_class, compositions=tuple(smoke.data.compositions),
                            states=tuple(smoke.data.states), size=(s * 3 // 4 + s // 15, s), seed=0)
    (tmp_path / "clone").mkdir()
    (tmp_path / "clone" / "shared").symlink_to(tmp_path / "store", target_is_directory=True)
    cfg = load_config("smoke", overrides={"data.data_dir": str(tmp_path / "clone" / "shared" / "synthetic")})
    out = tmp_path / "clone" / "reports" / "smoke"
    run_pipeline(cfg, out, log=lambda m: None)
    needles = {str(tmp_path), os.path.realpath(tmp_path), str(real), str(tmp_path / "clone" / "shared")}
    assert absolute_paths(out, tuple(needles)) == {}
    manifest = (out / "01_data" / "manifest.csv").read_text().splitlines()
    assert len(manifest) > 100 and not any(os.sep + "synthetic" + os.sep in row for row in manifest[1:])


# ===========================================================================
# Round 2 (issue 17), classes 3, 11, 14, 15: --out safety, printed names, silent skips, exit codes
# ===========================================================================


def _sidecar_cli(img: Path, pixel: str = "0.7") -> Path:
    w, h = Image.open(img).size
    side = img.with_name(img.name + ".txt")
    side.write_text(f"[Image Info]\nModel : SNE-4500M Plus\nDate : 2019-09-02\n[Active Scan]\n"
                    f"Frame Size : {w},{h}\nPixel Size : {pixel}\n", encoding="utf-8")
    return side


def _assert_refused(code: int, err: str, needles: list[str]) -> None:
    assert code == 2, err
    assert "Traceback" not in err and "unexpected" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: "), err
    for needle in needles:
        assert needle in last, f"{needle!r} not in:\n{err}"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fifo(path: Path) -> Path:
    try:
        os.mkfifo(path)
    except (OSError, AttributeError):
        pytest.skip("this system cannot make a FIFO")
    return path


@contextlib.contextmanager
def _no_hang(seconds: int = 30):
    """Fail (instead of hanging forever) if something opens a FIFO and waits for a writer."""
    def hung(signum, frame):
        raise AssertionError(f"still running after {seconds} s: a FIFO was opened?")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture()
def guard_dev_null(monkeypatch):
    """Make any attempt to replace or remove /dev/null fail the command instead of the machine."""
    real_replace, real_rename, real_unlink = os.replace, os.rename, os.unlink

    def _guard(real):
        def wrapper(src, dst=None, *a, **k):
            for p in (src, dst):
                if p is not None and os.path.abspath(os.fspath(p)) == "/dev/null":
                    raise AssertionError("tried to replace /dev/null")
            return real(src, *(() if dst is None else (dst,)), *a, **k)
        return wrapper

    monkeypatch.setattr(os, "replace", _guard(real_replace))
    monkeypatch.setattr(os, "rename", _guard(real_rename))
    monkeypatch.setattr(os, "unlink", _guard(real_unlink))


def _own_model(model_dir: Path, tmp: Path) -> Path:
    """The fixture model under ``tmp`` as hard links (a replaced name never harms the fixture's files)."""
    d = tmp / "model"
    d.mkdir()
    for name in ("model.safetensors", "model.json"):
        try:
            os.link(model_dir / name, d / name)
        except OSError:
            (d / name).write_bytes((model_dir / name).read_bytes())
    return d / "model.safetensors"


def _good(folder: Path, name: str = "good.png", seed: int = 1) -> Path:
    img = _png(folder / name, seed, (128, 160))
    _sidecar_cli(img)
    return img


@pytest.mark.parametrize("target", ["model", "json", "image", "sidecar"])
@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_predict_out_refuses_an_input(tmp_path, capsys, model_dir, target, force):
    model = _own_model(model_dir, tmp_path)
    img = _good(tmp_path / "imgs")
    out = {"model": model, "json": model.with_suffix(".json"), "image": img,
           "sidecar": img.with_name(img.name + ".txt")}[target]
    before = _digest(out)
    code, _, err = _run(["predict", str(model), str(img), "--out", str(out), *(["--force"] if force else [])],
                        capsys)
    _assert_refused(code, err, [str(out), "input"])
    assert _digest(out) == before
    assert not list(out.parent.glob(f".{out.name}.*"))  # no temporary file left


def test_predict_out_refuses_a_file_inside_an_input_folder(tmp_path, capsys, model_dir):
    model = _own_model(model_dir, tmp_path)
    imgs = tmp_path / "imgs"
    _good(imgs / "a")
    other = _good(imgs / "b", "other.png", seed=2)
    before = _digest(other)
    code, _, err = _run(["predict", str(model), str(imgs), "--out", str(other), "--force"], capsys)
    _assert_refused(code, err, [str(other), "input"])
    assert _digest(other) == before


def _char_device(path: Path) -> Path:
    """A character device node like /dev/null (root only; skip elsewhere)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (OSError, AttributeError):
        pytest.skip("cannot make a device node here")
    return path


@pytest.mark.parametrize("kind", ["fifo", "dev_null", "char_device", "symlink", "broken_symlink"])
@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_predict_out_refuses_a_special_file(tmp_path, capsys, model_dir, guard_dev_null, kind, force):
    model = _own_model(model_dir, tmp_path)
    img = _good(tmp_path / "imgs")
    target = tmp_path / "target.csv"
    target.write_text(SENTINEL)
    if kind == "fifo":
        out = _fifo(tmp_path / "pipe.csv")
    elif kind == "dev_null":
        out = Path("/dev/null")
    elif kind == "char_device":
        out = _char_device(tmp_path / "null")
    else:
        out = tmp_path / "link.csv"
        out.symlink_to(target if kind == "symlink" else tmp_path / "gone.csv")
    mode = os.lstat(out).st_mode
    with _no_hang():
        code, _, err = _run(["predict", str(model), str(img), "--out", str(out), *(["--force"] if force else [])],
                            capsys)
    words = {"fifo": "FIFO", "dev_null": "character device", "char_device": "character device"}
    _assert_refused(code, err, [str(out), words.get(kind, "symbolic link")])
    assert stat.S_IFMT(os.lstat(out).st_mode) == stat.S_IFMT(mode)
    if kind.endswith("symlink"):
        assert out.is_symlink() and target.read_text() == SENTINEL
        assert not (tmp_path / "gone.csv").exists()


def test_predict_out_foreign_file_needs_force_and_reruns_over_own_output(tmp_path, capsys, model_dir):
    model = model_dir / "model.safetensors"
    img = _good(tmp_path / "imgs")
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    picture = _png(tmp_path / "holiday.png", 9)  # an image, but not an input
    for foreign in (notes, picture):
        before = _digest(foreign)
        code, _, err = _run(["predict", str(model), str(img), "--out", str(foreign)], capsys)
        _assert_refused(code, err, [str(foreign), "--force"])
        assert _digest(foreign) == before
    out = tmp_path / "pred.csv"
    code, _, err = _run(["predict", str(model), str(img), "--out", str(out)], capsys)
    assert code == 0, err
    code, _, err = _run(["predict", str(model), str(img), "--out", str(out)], capsys)  # rerun: own output
    assert code == 0, err
    code, _, err = _run(["predict", str(model), str(img), "--out", str(notes), "--force"], capsys)
    assert code == 0, err
    assert pd.read_csv(notes)["path"].tolist() == [str(img)]


def test_data_index_out_is_checked(tmp_path, capsys, guard_dev_null):
    root = _tree(tmp_path / "data")
    argv = ["data", "index", str(root), "--compositions", "NCM333", "--out"]
    img = root / "NCM333_pristine" / "img_0.png"
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{c}/img_{j}.png,{c}\n" for c in CLASSES3 for j in range(2)))
    for out, extra, words in [(img, ["--force"], ["input image"]),
                              (img.with_name("img_0.png.txt"), ["--force"], ["sidecar"]),
                              (labels, ["--labels-csv", str(labels), "--force"], ["labels CSV"]),
                              (Path("/dev/null"), ["--force"], ["character device"])]:
        before = out.read_bytes()
        code, _, err = _run([*argv, str(out), *extra], capsys)
        _assert_refused(code, err, [str(out), *words])
        assert out.read_bytes() == before
    with _no_hang():
        pipe = _fifo(tmp_path / "pipe.csv")
        code, _, err = _run([*argv, str(pipe)], capsys)
    _assert_refused(code, err, ["pipe.csv", "FIFO"])
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    code, _, err = _run([*argv, str(notes)], capsys)
    _assert_refused(code, err, ["notes.txt", "--force"])
    assert notes.read_text() == "my notes\n"
    out = tmp_path / "m.csv"
    assert main([*argv, str(out)]) == 0
    assert main([*argv, str(out)]) == 0  # rerun over its own manifest
    # the list of skipped files beside the manifest is an output too: a foreign one is not removed
    side = tmp_path / "m.skipped.csv"
    side.write_text("my own file\n")
    capsys.readouterr()
    code, _, err = _run([*argv, str(out)], capsys)
    _assert_refused(code, err, ["m.skipped.csv", "--force"])
    assert side.read_text() == "my own file\n"
    side.unlink()
    side.symlink_to(notes)
    code, _, err = _run([*argv, str(out), "--force"], capsys)
    _assert_refused(code, err, ["m.skipped.csv", "symbolic link"])
    assert side.is_symlink() and notes.read_text() == "my notes\n"
    side.unlink()
    assert main([*argv, str(notes), "--force"]) == 0
    assert len(pd.read_csv(notes)) == 6


def test_cam_out_folder_and_its_files_are_checked(tmp_path, capsys, model_dir):
    model = str(model_dir / "model.safetensors")
    img = _good(tmp_path / "imgs")
    with _no_hang():
        pipe = _fifo(tmp_path / "pipe")
        code, _, err = _run(["cam", model, str(img), "--out", str(pipe)], capsys)
    _assert_refused(code, err, ["pipe", "FIFO"])
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
    out = tmp_path / "cams"
    out.mkdir()
    target = tmp_path / "precious.png"
    target.write_bytes(b"precious")
    (out / "good_gradcam.png").symlink_to(target)
    code, _, err = _run(["cam", model, str(img), "--out", str(out)], capsys)
    _assert_refused(code, err, ["good_gradcam.png", "symbolic link"])
    assert (out / "good_gradcam.png").is_symlink() and target.read_bytes() == b"precious"


def test_safe_escapes_control_characters_and_keeps_letters():
    assert safe("a\nb") == "a\\nb"
    assert safe("\x1b[31mred") == "\\x1b[31mred"
    assert safe("evil\u202egnp.exe") == "evil\\u202egnp.exe"
    assert safe("del\x7f c1\x85 tab\t cr\r") == "del\\x7f c1\\x85 tab\\t cr\\r"
    assert safe("line\u2028sep zero\u200bwidth") == "line\\u2028sep zero\\u200bwidth"
    assert safe("img_\udcff.png") == "img_\\xff.png"  # undecodable byte, as before
    assert safe("0.7 µm/px 양극 NCM811") == "0.7 µm/px 양극 NCM811"


def test_list_bad_keeps_a_name_with_a_newline_on_one_line(capsys):
    name = "x\nerror: forged.png"
    list_bad([(name, f"{name}: cannot decode"), ("y.png", f"bad because {name} is odd\nsecond line")])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines == ["bad: x\\nerror: forged.png: cannot decode",
                     "bad: y.png: bad because x; error: forged.png is odd; second line"]  # never a line of its own


def _odd_names(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name in ("a\x1b[31mred.png", "b\nerror: forged.png", "c\u202egnp.png"):
        try:
            (folder / name).write_bytes(b"not an image")
        except (OSError, ValueError):
            pytest.skip("this file system refuses control characters in names")
        made.append(folder / name)
    return made


def _assert_not_forged(text: str) -> None:
    assert "\x1b" not in text and "\u202e" not in text, repr(text)
    assert not any(line.startswith("error: forged") for line in text.splitlines()), text
    assert "\\x1b[31m" in text and "\\u202e" in text


def test_predict_escapes_control_characters_in_names(tmp_path, capsys, model_dir):
    odd = _odd_names(tmp_path / "imgs")
    good = _good(tmp_path / "imgs", "d\x1b]0;title\x07.png")
    _sidecar_cli(good, "1e999")  # a warning naming the sidecar
    out = tmp_path / "pred.csv"
    code, stdout, err = _run(["predict", str(model_dir / "model.safetensors"), str(tmp_path / "imgs"),
                              "--out", str(out), "--pixel-size", "0.7"], capsys)
    assert code == 1, err
    _assert_not_forged(stdout + err)
    assert "\x07" not in err and "warning: " in err
    assert all(any(safe(str(p)) in line for line in err.splitlines() if line.startswith("bad: ")) for p in odd)
    assert pd.read_csv(out)["path"].tolist()[-1] == str(good)  # the CSV keeps the real names
    code, _, err = _run(["predict", str(model_dir / "model.safetensors"), str(odd[1]), "--out", str(out)], capsys)
    assert code == 2 and "\\nerror: forged.png" in err, err
    assert not any(line.startswith("error: forged") for line in err.splitlines()), err


def test_data_index_escapes_control_characters_in_names(tmp_path, capsys):
    root = _tree(tmp_path / "data")
    _odd_names(root / "NCM333_pristine")
    out = tmp_path / "m.csv"
    code, stdout, err = _run(["data", "index", str(root), "--out", str(out), "--compositions", "NCM333"], capsys)
    assert code == 2
    _assert_not_forged(stdout + err)
    code, stdout, err = _run(["data", "index", str(root), "--out", str(out), "--compositions", "NCM333",
                              "--skip-bad"], capsys)
    assert code == 1
    _assert_not_forged(stdout + err)
    for p in list((root / "NCM333_pristine").glob("[abc]*.png"))[1:]:
        p.unlink()
    code, _, err = _run(["data", "index", str(root), "--out", str(out), "--compositions", "NCM333"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err  # one bad file: one line
    assert "\x1b" not in err and "\u202e" not in err and "\n" not in err.strip()


def test_argument_errors_escape_control_characters(capsys):
    with pytest.raises(SystemExit) as info:
        main(["predict", "m", "x", "--out", "o", "--zz\x1b[31m\nerror: forged"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "\x1b" not in err and not any(line.startswith("error: forged") for line in err.splitlines()), err
    assert "--zz\\x1b[31m\\nerror: forged" in err


def test_predict_reports_folders_and_fifos_it_cannot_read(tmp_path, capsys, model_dir):
    imgs = tmp_path / "imgs"
    good = _good(imgs)
    _fifo(imgs / "pipe.png")
    (tmp_path / "dir.jpg").mkdir()
    fifo = _fifo(tmp_path / "fifo.png")
    out = tmp_path / "pred.csv"
    with _no_hang():
        code, _, err = _run(["predict", str(model_dir / "model.safetensors"), str(imgs), str(tmp_path / "dir.jpg"),
                             str(fifo), "--out", str(out)], capsys)
    assert code == 1, err
    bad = {line for line in err.splitlines() if line.startswith("bad: ")}
    assert f"bad: {tmp_path / 'dir.jpg'}: a folder with no micrographs" in bad, err
    assert f"bad: {imgs / 'pipe.png'}: not a regular file (a FIFO)" in bad, err
    assert f"bad: {fifo}: not a regular file (a FIFO)" in bad, err
    df = pd.read_csv(out)
    assert df["path"].tolist() == [str(good), str(imgs / "pipe.png"), str(tmp_path / "dir.jpg"), str(fifo)]
    assert df["error"].isna().tolist() == [True, False, False, False]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_cam_reports_a_folder_named_like_an_image(tmp_path, capsys, model_dir):
    (tmp_path / "dir.jpg").mkdir()
    fifo = _fifo(tmp_path / "fifo.png")
    with _no_hang():
        code, _, err = _run(["cam", str(model_dir / "model.safetensors"), str(tmp_path / "dir.jpg"), str(fifo),
                             "--out", str(tmp_path / "cams")], capsys)
    _assert_refused(code, err, ["none of the 2"])
    assert f"bad: {tmp_path / 'dir.jpg'}: a folder with no micrographs" in err
    assert f"bad: {fifo}: not a regular file (a FIFO)" in err


def test_data_index_reports_fifos_subfolders_and_unreadable_sidecars(tmp_path, capsys):
    root = _tree(tmp_path / "data")
    pristine = root / "NCM333_pristine"
    _fifo(pristine / "pipe.png")
    _fifo(pristine / "pipe")
    (pristine / "thumbs").mkdir()
    (pristine / "thumbs" / "notes.md").write_text("x")
    folder_side = root / "NCM333_formation" / "img_0.png.txt"
    folder_side.unlink()
    folder_side.mkdir()
    fifo_side = root / "NCM333_cycled" / "img_1.png.txt"
    fifo_side.unlink()
    _fifo(fifo_side)
    out = tmp_path / "m.csv"
    argv = ["data", "index", str(root), "--out", str(out), "--compositions", "NCM333"]
    with _no_hang():
        code, _, err = _run(argv, capsys)
    _assert_refused(code, err, [str(pristine / "pipe.png"), "not a regular file (a FIFO)"])
    assert not out.exists()
    with _no_hang():
        code, _, err = _run([*argv, "--skip-bad"], capsys)
    assert code == 1, err
    lines = err.splitlines()

    def line_with(*words):
        return any(all(w in line for w in words) for line in lines)

    assert line_with("skipped: ", str(pristine / "pipe.png"), "not a regular file (a FIFO)"), err
    assert line_with("warning: ", str(pristine / "pipe"), "not a regular file (a FIFO)"), err
    assert line_with("warning: ", str(pristine / "thumbs"), "sub-folder inside class folder NCM333_pristine"), err
    assert line_with("warning: ", str(folder_side), "sidecar", "not a regular file (a folder)"), err
    assert line_with("warning: ", str(fifo_side), "sidecar", "not a regular file (a FIFO)"), err
    assert len(pd.read_csv(out)) == 6


def _deep_json(depth: int = 100_000) -> str:
    return '{"a": ' + "[" * depth + "]" * depth + "}"


def test_deeply_nested_config_is_bad_input(tmp_path, capsys, monkeypatch):
    import semcathode.config._run as run_config

    cfg = tmp_path / "deep.yaml"
    cfg.write_text("stage1: " + "[" * 20000 + "]" * 20000 + "\n")
    report = tmp_path / "r"
    code, _, err = _run(["run", "--profile", "smoke", "--config", str(cfg), "--out", str(report)], capsys)
    _assert_refused(code, err, ["deep.yaml"])
    assert not report.exists()

    def out_of_memory(*a, **k):
        raise MemoryError

    monkeypatch.setattr(run_config, "load_config", out_of_memory)
    code, _, err = _run(["run", "--profile", "smoke", "--config", str(cfg), "--out", str(report)], capsys)
    _assert_refused(code, err, ["deep.yaml", "too large"])


def test_model_too_deep_or_too_big_is_bad_input(tmp_path, capsys, model_dir, monkeypatch):
    import semcathode.models._export as export

    model = tmp_path / "m" / "model.safetensors"
    model.parent.mkdir()
    model.symlink_to(model_dir / "model.safetensors")
    (tmp_path / "m" / "model.json").write_text(_deep_json())
    img = _good(tmp_path / "imgs")
    out = tmp_path / "pred.csv"
    code, _, err = _run(["predict", str(model), str(img), "--out", str(out)], capsys)
    _assert_refused(code, err, ["model.json"])
    assert not out.exists()

    def out_of_memory(*a, **k):
        raise MemoryError

    monkeypatch.setattr(export, "load_model", out_of_memory)
    code, _, err = _run(["predict", str(model_dir / "model.safetensors"), str(img), "--out", str(out)], capsys)
    _assert_refused(code, err, ["model.safetensors", "too large"])
    code, _, err = _run(["cam", str(model_dir / "model.safetensors"), str(img), "--out", str(tmp_path / "c")], capsys)
    _assert_refused(code, err, ["model.safetensors", "too large"])


# ===========================================================================
# Round 2 (issue 17), classes 6, 10, 12, 14: decoded size, sidecars, decimal commas, library warnings
# ===========================================================================


SNE_HEAD = "[Image Info]\nModel : SNE-4500M Plus\nDate : 2019-09-02\n[Active Scan]\n"


def _sidecar_io(img: Path, pixel: str = "0.7", frame: str = "480,480", extra: str = "") -> Path:
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
    _sidecar_io(img)
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as info:
        read_sem(img)
    msg = str(info.value)
    assert f"${name}=" in msg and repr(value) in msg and "\n" not in msg
    assert type(info.value).__name__ == "ConfigError"  # the CLI's bad-input error (exit 2)


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
    _sidecar_io(img, extra="Comment : " + "x" * 3000 + "\n")  # ~3.1 KB
    monkeypatch.setenv("SEMCATHODE_MAX_SIDECAR_BYTES", "1000")
    with pytest.warns(SEMMetadataWarning, match=r"frame\.png\.txt: 3,\d{3} bytes, too large.*limit 1,000 bytes"):
        assert read_metadata(img).source == "none"
    monkeypatch.setenv("SEMCATHODE_MAX_SIDECAR_BYTES", "1MiB")
    assert read_metadata(img).pixel_size_um == pytest.approx(0.7)


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
    side = _sidecar_io(img, pixel)
    meta, rec = _recorded(read_metadata, img)
    _assert_pixel_size_read(meta, rec, side, expected, words)


def test_decimal_comma_in_voltage_and_vendor_tags(tmp_path):
    img = _png(tmp_path / "frame.png", 0, (480, 480))
    _sidecar_io(img, extra="Accelerated Voltage : 15,5 kV\nMagnification : x1,000\n")
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
    _sidecar_io(img, "7" * 500_000)  # a sidecar under the size limit with a 500 KB value
    meta, rec = _recorded(read_metadata, img)
    msgs = [str(w.message) for w in rec]
    assert meta.pixel_size_um is None and len(msgs) == 1 and len(msgs[0]) < 500, [m[:200] for m in msgs]
    assert "frame.png.txt" in msgs[0] and "500,000 characters" in msgs[0]


# ===========================================================================
# Round 2 (issue 17), classes 7, 8, 9, 13, 14: YAML bombs, upsampling and tile caps, the model-file validator, enum keys
# ===========================================================================


N_FEATURES = 1280  # tf_efficientnet_lite0's pooled features


BANK_ROWS = 6


def _sidecar_model(img: Path, pixel: str = "0.7") -> Path:
    w, h = Image.open(img).size
    side = img.with_name(img.name + ".txt")
    side.write_text(f"[Image Info]\nModel : SNE-4500M Plus\nDate : 2019-09-02\n[Active Scan]\n"
                    f"Frame Size : {w},{h}\nPixel Size : {pixel}\n", encoding="utf-8")
    return side


def _assert_one_line_error_model(code: int, err: str, expected: int, needles: list[str]) -> None:
    assert code == expected, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, f"{needle!r} not in:\n{err}"
    if expected == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err


def _laughs(levels: int = 9, width: int = 9) -> list[str]:
    """YAML lines ``a: &a [lol x width]``, ``b: &b [*a x width]``...: ``width ** levels`` strings once expanded."""
    names = "abcdefghijklmnop"[:levels]
    lines = [f"{names[0]}: &{names[0]} [" + ", ".join(['"lol"'] * width) + "]"]
    for prev, name in zip(names, names[1:]):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * width) + "]")
    return lines


def _flow(lines: list[str]) -> str:
    """The same anchors as one flow sequence (a value for ``--set key=...``)."""
    return "[" + ", ".join(line.split(": ", 1)[1] for line in lines) + "]"


def _config_error(**kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load_config("smoke", **kwargs)
    return str(info.value)


def test_billion_laughs_config_is_refused_in_milliseconds(tmp_path):
    f = tmp_path / "laughs.yaml"
    f.write_text("\n".join(_laughs()) + "\nprotocol:\n  arms: *i\n")
    assert f.stat().st_size < 600
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        msg = _config_error(path=f)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 2
    assert peak < 50e6, f"peak {peak / 1e6:.0f} MB"
    assert str(f) in msg and "SEMCATHODE_MAX_CONFIG_NODES" in msg and "\n" not in msg and len(msg) < 300, msg


def test_expanding_values_on_list_keys_and_overrides_give_one_short_line(tmp_path):
    """Under the node limit (9**5 strings) the value reaches a list key; over it (9**9) it is refused."""
    five, nine = _laughs(5), _laughs(9)
    f = tmp_path / "five.yaml"
    f.write_text("protocol:\n  arms: " + _flow(five) + "\n")
    cases = [
        (dict(path=f), ["protocol.arms[0]", "list of 9 items"]),
        (dict(overrides=["validity.robustness_kinds=" + _flow(five)]), ["validity.robustness_kinds", "list of"]),
        (dict(overrides=["protocol.arms=" + _flow(nine)]), ["protocol.arms", "SEMCATHODE_MAX_CONFIG_NODES"]),
        (dict(overrides={"cam.method": "x" * 500_000}), ["cam.method", "500,000 characters"]),
        (dict(overrides={"stage1.epochs": "9" * 100_000}), ["stage1.epochs"]),
        (dict(overrides=["stage1.epochs=" + "1" * 5000]), ["stage1.epochs", "cannot be read"]),
    ]
    for kwargs, needles in cases:
        t0 = time.perf_counter()
        msg = _config_error(**kwargs)
        assert time.perf_counter() - t0 < 2
        assert "\n" not in msg and len(msg) < 300, msg[:1000]
        for needle in needles:
            assert needle in msg, msg


@pytest.mark.parametrize("text", ["stage1: " + "[" * 20000, "stage1: " + "[" * 20000 + "]" * 20000,
                                  "stage1: " + "{a: " * 5000 + "1" + "}" * 5000, "a: &a [*a]"],
                         ids=["open_brackets", "balanced", "mappings", "recursive_alias"])
def test_deep_or_recursive_yaml_is_a_config_error(tmp_path, text):
    f = tmp_path / "deep.yaml"
    f.write_text(text)
    msg = _config_error(path=f)
    assert str(f) in msg and "\n" not in msg and len(msg) < 300, msg
    msg = _config_error(overrides=["stage1.epochs=" + text.split(": ", 1)[1]])
    assert "stage1.epochs=" in msg and len(msg) < 300, msg


CLI_BAD_CONFIGS = [  # (id, file content, words; FILE = the config file's path)
    ("billion_laughs", "\n".join(_laughs()) + "\n", ["FILE", "SEMCATHODE_MAX_CONFIG_NODES"]),
    ("deep", "stage1: " + "[" * 20000, ["FILE", "SEMCATHODE_MAX_CONFIG_DEPTH"]),
    ("too_big", "# padding\n" * 200_000, ["FILE", "SEMCATHODE_MAX_CONFIG_BYTES"]),
    ("bad_date", "stage1:\n  epochs: 2020-13-45\n", ["FILE", "cannot be read", "month"]),
    ("long_string", "stage1:\n  epochs: " + "x" * 200_000 + "\n", ["stage1.epochs", "200,000 characters"]),
    ("many_unknown_keys", "".join(f"key{i}: 1\n" for i in range(5000)), ["key0", "4995 more"]),
]


@pytest.mark.parametrize("name,text,words", CLI_BAD_CONFIGS, ids=[c[0] for c in CLI_BAD_CONFIGS])
def test_run_refuses_hostile_config_files_with_one_line(tmp_path, capsys, no_pipeline, name, text, words):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    t0 = time.perf_counter()
    code, _, err = _run(["run", "--config", str(f), "--profile", "smoke", "--out", str(tmp_path / "r")], capsys)
    assert time.perf_counter() - t0 < 5
    _assert_one_line_error_model(code, err, 2, [str(f) if w == "FILE" else w for w in words])
    assert len(err) < 400, err[:1000]


def test_config_limits_are_settable(tmp_path, monkeypatch):
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 120_000 + "stage1:\n  epochs: 2\n")  # 1.2 MB
    assert "SEMCATHODE_MAX_CONFIG_BYTES" in _config_error(path=big)
    seeds = tmp_path / "seeds.yaml"
    seeds.write_text("protocol:\n  seeds: [" + ", ".join(map(str, range(3000))) + "]\n")
    assert len(load_config("smoke", seeds).protocol.seeds) == 3000
    monkeypatch.setenv("SEMCATHODE_MAX_CONFIG_BYTES", str(4 << 20))
    assert load_config("smoke", big).stage1.epochs == 2
    monkeypatch.setenv("SEMCATHODE_MAX_CONFIG_NODES", "1000")
    assert "1,000 YAML nodes" in _config_error(path=seeds)
    monkeypatch.setenv("SEMCATHODE_MAX_CONFIG_NODES", "many")
    assert "SEMCATHODE_MAX_CONFIG_NODES" in _config_error(path=seeds)


ENUM_BAD = [  # (override, key, a name the message lists)
    ("cam.method=bogus", "cam.method", "gradcampp"),
    ("protocol.arms=[ft_only, nope]", "protocol.arms", "pretrain_only"),
    ("cam.arms=[nope]", "cam.arms", "pre_ft_oversample"),
    ("validity.robustness_kinds=[warp]", "validity.robustness_kinds", "magnification"),
    ("validity.robustness_arms=[nope]", "validity.robustness_arms", "ft_only"),
    ("validity.learning_curve_arms=[nope]", "validity.learning_curve_arms", "scratch_ft"),
]


@pytest.mark.parametrize("override,key,listed", ENUM_BAD, ids=[e[1] for e in ENUM_BAD])
def test_string_enum_keys_are_checked_up_front(tmp_path, capsys, no_pipeline, override, key, listed):
    code, _, err = _run(["run", "--profile", "smoke", "--out", str(tmp_path / "r"), "--set", override], capsys)
    _assert_one_line_error_model(code, err, 2, [key, listed])


def _str_keys() -> list[tuple[str, dict]]:
    from semcathode.config._sections import RunConfig

    out = []
    sections = typing.get_type_hints(RunConfig)
    for section in dataclasses.fields(RunConfig):
        cls = sections[section.name]
        if not dataclasses.is_dataclass(cls):
            continue
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if hints[f.name] in (str, list[str]):
                out.append((f"{section.name}.{f.name}", dict(f.metadata)))
    return out


def test_every_string_key_is_a_declared_enumeration_or_free_text():
    from semcathode.config._sections import CHOICES, FREE_TEXT_KEYS

    tables = set(map(tuple, CHOICES.values()))
    keys = _str_keys()
    assert len(keys) > 20
    for key, meta in keys:
        if key in FREE_TEXT_KEYS:
            continue
        declared = meta.get("choices", meta.get("items"))
        assert isinstance(declared, tuple) and declared in tables, f"{key}: no choices from CHOICES"


def _arm_names() -> tuple[str, ...]:
    """The names of ``semcathode.study.ARMS``, read from its source (importing the study takes fastai)."""
    import ast

    import semcathode

    tree = ast.parse((Path(semcathode.__file__).parent / "study" / "_arms.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Arm" and n.args]
    return tuple(c.args[0].value for c in sorted(calls, key=lambda c: (c.lineno, c.col_offset)))


def test_declared_names_match_the_modules_that_define_them():
    from semcathode.config._sections import CHOICES
    from semcathode.data._shift import SHIFT_KINDS
    from semcathode.explain._compute import CAM_METHODS
    from semcathode.models._backbones import BACKBONES

    assert CHOICES["cam_method"] == tuple(CAM_METHODS)
    assert len(_arm_names()) >= 5 and CHOICES["arm"] == _arm_names()
    assert CHOICES["shift_kind"] == tuple(SHIFT_KINDS)
    assert CHOICES["backbone"] == tuple(BACKBONES)
    for profile in ("smoke", "demo", "paper"):
        load_config(profile)  # the shipped profiles use only declared names


@pytest.fixture(scope="module")
def model_dir_model(tmp_path_factory) -> Path:
    """A tiny untrained Lite0 as safetensors + JSON (scale mode, 32-px tiles at 1.4 µm/px), with a
    6-row feature bank and familiarity settings."""
    import timm
    import torch
    from safetensors.torch import save_file

    from semcathode.models._modelcheck import FORMAT, classes_digest

    d = tmp_path_factory.mktemp("model")
    classes = default_schema().classes
    torch.manual_seed(0)
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=len(classes)).eval()
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    state["ood.bank"] = torch.randn(BANK_ROWS, N_FEATURES)
    save_file(state, str(d / "model.safetensors"), metadata={"format": FORMAT})
    meta = {"format": FORMAT, "classes": classes, "classes_digest": classes_digest(classes),
            "backbone": "efficientnet_lite0", "timm_name": "tf_efficientnet_lite0", "num_classes": len(classes),
            "preprocess": {"mode": "scale", "size": 32, "scale_um": 1.4, "tile_stride": 1.0},
            "aggregate": "mean_log_prob", "temperature": 1.0,
            "ood": {"ood_k": 3, "ood_threshold": 0.5, "ood_quantile": 0.95},
            "normalize": "dataset", "mean": [0.5] * 3, "std": [0.5] * 3, "bar": {"method": "none", "fraction": 0.0667}}
    (d / "model.json").write_text(json.dumps(meta))
    return d


def _model_variant_model(model_dir_model: Path, tmp: Path, edit=None, raw_json: str | None = None, bank=None) -> Path:
    """A copy of the model with its JSON edited (or replaced) and/or another feature bank."""
    d = tmp / "m"
    d.mkdir(exist_ok=True)
    if bank is None:
        (d / "model.safetensors").symlink_to(model_dir_model / "model.safetensors")
    else:
        from safetensors.torch import load_file, save_file

        state = load_file(str(model_dir_model / "model.safetensors"))
        state["ood.bank"] = bank
        save_file(state, str(d / "model.safetensors"))
    meta = json.loads((model_dir_model / "model.json").read_text())
    if edit:
        edit(meta)
    (d / "model.json").write_text(raw_json if raw_json is not None else json.dumps(meta))
    return d / "model.safetensors"


def _dup_classes(n: int):
    def edit(m):
        m["classes"] = ["NCM333_pristine"] * n
        m.pop("classes_digest"), m.pop("num_classes")
    return edit


def _bank(kind: str):
    import torch

    g = torch.Generator().manual_seed(1)
    good = torch.randn(BANK_ROWS, N_FEATURES, generator=g)
    if kind == "nan":
        good[2, 7] = float("nan")
        return good
    if kind == "inf":
        good[0, 0] = float("inf")
        return good
    return {"bf16": good.to(torch.bfloat16), "f64": good.double(), "int": good.to(torch.int32),
            "flat": good.reshape(-1), "narrow": good[:, :100].contiguous(), "empty": good[:0]}[kind]


MODEL_BAD = [  # (id, json edit, raw json, bank, field, words)
    ("aggregate_unknown", _set("aggregate", "median"), None, None, "aggregate", ["mean_log_prob"]),
    ("aggregate_not_str", _set("aggregate", [1]), None, None, "aggregate", ["mean_prob"]),
    ("ood_not_mapping", _set("ood", [3, 0.5]), None, None, "ood", ["mapping"]),
    ("ood_unknown_key", _set("ood.k", 3), None, None, "ood", ["unknown key"]),
    ("ood_k_zero", _set("ood.ood_k", 0), None, None, "ood.ood_k", [">= 1"]),
    ("ood_k_text", _set("ood.ood_k", "3"), None, None, "ood.ood_k", ["integer"]),
    ("ood_k_over_bank", _set("ood.ood_k", 1_000_000), None, None, "ood.ood_k", ["6 rows"]),
    ("threshold_nan", _set("ood.ood_threshold", float("nan")), None, None, "ood.ood_threshold", ["finite"]),
    ("threshold_negative", _set("ood.ood_threshold", -1), None, None, "ood.ood_threshold", [">= 0"]),
    ("threshold_text", _set("ood.ood_threshold", "low"), None, None, "ood.ood_threshold", ["finite"]),
    ("quantile", _set("ood.ood_quantile", 2), None, None, "ood.ood_quantile", ["(0, 1]"]),
    ("bank_nan", None, None, "nan", "ood.bank", ["NaN"]),
    ("bank_inf", None, None, "inf", "ood.bank", ["infinite"]),
    ("bank_bf16", None, None, "bf16", "ood.bank", ["bfloat16", "float32"]),
    ("bank_f64", None, None, "f64", "ood.bank", ["float64"]),
    ("bank_int", None, None, "int", "ood.bank", ["int32"]),
    ("bank_1d", None, None, "flat", "ood.bank", ["shape"]),
    ("bank_empty", None, None, "empty", "ood.bank", ["shape"]),
    ("bank_features", None, None, "narrow", "ood.bank", ["100 features", "1280"]),
    ("stride_tiny", _set("preprocess.tile_stride", 1e-4), None, None, "preprocess.tile_stride", ["0.25"]),
    ("size_4096", _set("preprocess.size", 4096), None, None, "preprocess.size", ["SEMCATHODE_MAX_INPUT_SIZE"]),
    ("size_2000", _set("preprocess.size", 2000), None, None, "preprocess.size", ["limit of 1024"]),
    ("scale_tiny", _set("preprocess.scale_um", 1e-9), None, None, "preprocess.scale_um", ["plausible"]),
    ("scale_huge", _set("preprocess.scale_um", 500), None, None, "preprocess.scale_um", ["plausible"]),
    ("one_class", _set("classes", ["NCM333_pristine"]), None, None, "classes", ["at least 2"]),
    ("classes_60000_duplicates", _dup_classes(60_000), None, None, "classes", ["SEMCATHODE_MAX_CLASSES"]),
    ("temperature_tiny", _set("temperature", 1e-300), None, None, "temperature", ["[0.01, 100]"]),
    ("std_tiny", _set("std", [1e-300] * 3), None, None, "std", ["> 0"]),
    ("json_deep", None, "[" * 100_000 + "]" * 100_000, None, "", ["not valid JSON"]),
    ("json_long_int", None, '{"format": ' + "1" * 5000 + "}", None, "", ["not valid JSON"]),
]


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name,edit,raw,bank,field,words", MODEL_BAD, ids=[m[0] for m in MODEL_BAD])
def test_model_file_fields_are_checked_at_load(tmp_path, capsys, model_dir_model, name, edit, raw, bank, field, words):
    model = _model_variant_model(model_dir_model, tmp_path, edit, raw, _bank(bank) if bank else None)
    img = _png(tmp_path / "imgs" / "good.png", 1, (128, 160))
    _sidecar_model(img)
    out = tmp_path / "pred.csv"
    out.write_text(SENTINEL)
    t0 = time.perf_counter()
    code, _, err = _run(["predict", str(model), str(img), "--out", str(out)], capsys)
    assert time.perf_counter() - t0 < 5
    needles = [f"error: {model.with_suffix('.json')}: "] + ([f"field '{field}'"] if field else []) + words
    _assert_one_line_error_model(code, err, 2, needles)
    assert len(err) < 500, err[:1000]
    assert out.read_text() == SENTINEL


def test_60000_duplicate_classes_are_refused_in_linear_time(model_dir_model, monkeypatch):
    from safetensors.torch import load_file

    from semcathode.models._modelcheck import ModelFileError, validate_model_meta

    state = load_file(str(model_dir_model / "model.safetensors"))
    bank = state.pop("ood.bank")
    meta = json.loads((model_dir_model / "model.json").read_text())
    _dup_classes(60_000)(meta)
    monkeypatch.setenv("SEMCATHODE_MAX_CLASSES", "0")  # no count limit: the duplicate check itself must be fast
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError, match=r"field 'classes' class names must be unique; repeated: 'NCM333_pristine'"):
        validate_model_meta(meta, state, model_dir_model / "model.json", bank=bank)
    assert time.perf_counter() - t0 < 1


def test_exported_k_is_at_most_the_bank_and_the_bank_is_checked(tmp_path):
    import timm

    from semcathode.data._preprocess import PreprocessParams
    from semcathode.models._export import ModelFileError, export_model, load_model

    classes = default_schema().classes
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=len(classes)).eval()
    trust = {"temperature": 1.2, "ood_k": 5, "ood_threshold": 0.3, "ood_quantile": 0.95,
             "bank": np.random.default_rng(0).normal(size=(3, N_FEATURES)).astype(np.float32)}
    kwargs = dict(classes=classes, backbone="efficientnet_lite0", timm_name="tf_efficientnet_lite0",
                  preprocess=PreprocessParams("scale", 32, 1.4), normalize="dataset", mean=[0.5] * 3, std=[0.5] * 3)
    path = export_model(net, tmp_path / "small.safetensors", trust=trust, **kwargs)
    model = load_model(path)  # a bank of 3 micrographs with ood_k 5 from the config: k recorded as used
    assert model.meta["ood"]["ood_k"] == 3 and model.bank.shape == (3, N_FEATURES)
    trust["bank"][1, 1] = np.nan
    path = export_model(net, tmp_path / "nan.safetensors", trust=trust, **kwargs)
    with pytest.raises(ModelFileError, match=r"nan\.json: field 'ood\.bank'.*NaN"):
        load_model(path)


@pytest.mark.usefixtures("one_thread")
def test_upsampling_and_tiles_are_capped_per_file(tmp_path, capsys, model_dir_model, monkeypatch):
    """The model is at 1.4 µm/px with 32-px tiles. x10 upsampling (14 µm/px) and 1,140 tiles (10.5 µm/px,
    x7.5) are refused per file; the good file of the batch is still predicted (exit 1)."""
    folder = tmp_path / "imgs"
    _sidecar_model(_png(folder / "good.png", 1, (128, 160)))
    _sidecar_model(_png(folder / "up14.png", 2, (128, 160)), "14.0")
    _sidecar_model(_png(folder / "tiles.png", 3, (128, 160)), "10.5")
    _sidecar_model(_png(folder / "up99.png", 4, (128, 160)), "99.75")
    out = tmp_path / "pred.csv"
    t0 = time.perf_counter()
    code, stdout, err = _run(["predict", str(model_dir_model / "model.safetensors"), str(folder), "--out", str(out)], capsys)
    assert time.perf_counter() - t0 < 5
    assert code == 1 and "Traceback" not in err, err
    df = pd.read_csv(out).set_index(pd.read_csv(out)["path"].map(lambda p: Path(p).name))
    assert df.loc["good.png", "pred"] in default_schema().classes and not isinstance(df.loc["good.png", "error"], str)
    for name, words in [("up14.png", ["×10.0", "SEMCATHODE_MAX_UPSAMPLE"]), ("up99.png", ["99.75 µm/px", "SEMCATHODE_MAX_UPSAMPLE"]),
                        ("tiles.png", ["×7.5 to 1200×960 px = 1,140 tiles", "limit 1,000 tiles per image",
                                       "SEMCATHODE_MAX_TILES"])]:
        error = df.loc[name, "error"]
        assert isinstance(error, str) and name in error and all(w in error for w in words), error
        assert f"bad: {folder / name}" in err
    assert "wrote 1 predictions" in stdout
    # the limits are settable: 6 tiles refused under a limit of 5, predicted under 6; x10 allowed, then 2,000 tiles
    model = str(model_dir_model / "model.safetensors")
    monkeypatch.setenv("SEMCATHODE_MAX_TILES", "5")
    code, _, err = _run(["predict", model, str(folder / "good.png"), "--out", str(out)], capsys)
    assert code == 2 and f"bad: {folder / 'good.png'}: would be resampled ×0.5 to 80×64 px = 6 tiles" in err, err
    assert "limit 5 tiles" in err and "none of the 1 image(s)" in err and "Traceback" not in err
    monkeypatch.setenv("SEMCATHODE_MAX_TILES", "6")
    code, _, err = _run(["predict", model, str(folder / "good.png"), "--out", str(out)], capsys)
    assert code == 0 and pd.read_csv(out)["n_tiles"].iloc[0] == 6, err
    monkeypatch.delenv("SEMCATHODE_MAX_TILES")
    monkeypatch.setenv("SEMCATHODE_MAX_UPSAMPLE", "0")
    code, _, err = _run(["predict", model, str(folder / "up14.png"), "--out", str(out)], capsys)
    assert code == 2 and "×10.0 to 1600×1280 px = 2,000 tiles" in err and "SEMCATHODE_MAX_UPSAMPLE" not in err, err


def test_resample_plan_matches_the_tile_grid():
    from semcathode.data._preprocess import PreprocessParams, preprocess_image
    from semcathode.data._tiles import tile_grid
    from semcathode.data._resample import plan_resample

    img = np.random.default_rng(0).random((90, 130)).astype(np.float32)
    for px, size, stride in [(0.7, 32, 1.0), (3.5, 32, 0.5), (1.4, 64, 0.25), (0.1, 32, 1.0), (7.0, 48, 0.75)]:
        params = PreprocessParams("scale", size, 1.4, stride)
        _, _, shape, tiles = plan_resample(img.shape, px, params)
        arr = preprocess_image(img, params, px)
        assert shape == arr.shape and tiles == len(tile_grid(arr.shape, size, stride)), (px, size, stride)
    assert math.isclose(plan_resample((100, 100), 14.0, PreprocessParams("scale", 32, 1.0))[0], 14.0)

