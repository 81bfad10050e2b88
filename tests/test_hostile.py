"""Hostile input gets a clear answer (issue 12): the corpus of bad inputs, kept as tests.

One parametrised test per command over its bad inputs. Each asserts that the output names the
file (or key) and the problem, that the exit code is 2 for bad input (1 when a batch did its
good files and some failed), that no traceback is shown, and that nothing already written is
lost. The model used by ``predict``/``cam`` is a tiny untrained EfficientNet-Lite0 written
directly as safetensors + JSON (no training needed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import socket
import sys
import tracemalloc
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from semcathode.io import metadata as smeta, read as sio
from semcathode._files import atomic_write_csv, atomic_write_json, atomic_write_text
from semcathode.pipeline.cli import main
from semcathode.config.run import load_config
from semcathode.config.sections import ConfigError
from semcathode.io.metadata import SEMMetadataWarning, read_metadata
from semcathode.io.read import SEMReadError, read_sem
from semcathode.data.manifest import index_folder, read_manifest, write_manifest
from semcathode.data.schema import Schema, default_schema

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
    msgs = [str(w.message) for w in rec if issubclass(w.category, SEMMetadataWarning)]
    if expected is None:
        assert meta.pixel_size_um is None
        assert len(msgs) == 1 and str(side) in msgs[0], msgs
        for w in words:
            assert w in msgs[0], msgs[0]
    else:
        assert meta.pixel_size_um == pytest.approx(expected)
        assert not msgs


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
    fake = types.ModuleType("semcathode.pipeline.run")

    class PipelineError(RuntimeError):
        pass

    def run_pipeline(*a, **k):
        raise AssertionError("the pipeline started despite bad input")

    fake.PipelineError, fake.run_pipeline = PipelineError, run_pipeline
    monkeypatch.setitem(sys.modules, "semcathode.pipeline.run", fake)
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
    fake = types.ModuleType("semcathode.pipeline.run")
    fake.PipelineError = RuntimeError
    fake.run_pipeline = lambda cfg, out, **k: seen.update(profile=cfg.profile, out=Path(out))
    monkeypatch.setitem(sys.modules, "semcathode.pipeline.run", fake)
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
    from semcathode.data.preprocess import PreprocessParams

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

    import semcathode.data.download as ds

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
    import semcathode.pipeline.cli as cli

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

    code = ("import sys, semcathode.pipeline.cli as c\n"
            "try:\n    c.build_parser().parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'fastai', 'pandas', 'matplotlib', 'timm', 'semcathode.io.read') if m in sys.modules]\n"
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
