import shutil
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from semcathode.data._manifest import (
    ManifestError,
    index_folder,
    read_manifest,
    write_manifest,
)
from semcathode.data._schema import Schema

from conftest import KAIST, needs_kaist


def test_index_synthetic(tree):
    df = index_folder(tree)
    assert len(df) == 72 and df["label"].nunique() == 9
    assert list(dict.fromkeys(df["label"]))[:3] == ["NCM333_pristine", "NCM333_formation", "NCM333_cycled"]
    row = df.iloc[0]
    assert row["sha256"] and len(row["sha256"]) == 64 and row["meta_source"] == "sne-sidecar"
    assert row["pixel_size_um"] == pytest.approx(0.7)  # synthetic sidecars give Frame Size = image width
    assert (df["domain"] == "source").all()
    assert df["frame"].notna().all() and df["session"].str.contains("NCM333_pristine").any()


def test_upstream_layout_folder_names(tmp_path, synthetic_root):
    root = tmp_path / "up"
    for src, dst in [("NCM333_pristine", "333"), ("NCM333_formation", "333_formation"), ("NCM333_cycled", "333_cycled")]:
        shutil.copytree(synthetic_root / src, root / dst)
    df = index_folder(root, schema=Schema(compositions=("NCM333",)))
    assert sorted(df["label"].unique()) == ["NCM333_cycled", "NCM333_formation", "NCM333_pristine"]


def test_labels_from_csv(tmp_path, synthetic_root):
    files = sorted((synthetic_root / "NCM811_cycled").glob("*.png"))[:3]
    csv = tmp_path / "labels.csv"
    pd.DataFrame({"path": [str(f) for f in files], "label": ["NCM811_cycled"] * 3, "domain": ["additive"] * 3}).to_csv(csv, index=False)
    df = index_folder(tmp_path, schema=Schema(compositions=("NCM811",), states=("cycled",)), labels_csv=csv)
    assert len(df) == 3 and (df["domain"] == "additive").all()


def test_labels_csv_pixel_size_column(tmp_path, synthetic_root):
    files = sorted((synthetic_root / "NCM811_cycled").glob("*.png"))[:3]
    img = tmp_path / "bare.png"  # a copy without its sidecar: no pixel size of its own
    shutil.copy(files[2], img)
    csv = tmp_path / "labels.csv"
    pd.DataFrame({"path": [str(files[0]), str(files[1]), str(img)], "label": ["NCM811_cycled"] * 3,
                  "pixel_size_um": [0.25, "", 0.5]}).to_csv(csv, index=False)
    schema = Schema(compositions=("NCM811",), states=("cycled",))
    df = index_folder(tmp_path, schema=schema, labels_csv=csv).set_index("relpath")
    first, second = df.loc[str(files[0])], df.loc[str(files[1])]
    assert first["pixel_size_um"] == pytest.approx(0.25) and first["meta_source"].endswith("labels-csv")
    assert second["pixel_size_um"] == pytest.approx(0.7) and second["meta_source"] == "sne-sidecar"  # empty cell: the file's own
    assert df.loc["bare.png", "pixel_size_um"] == pytest.approx(0.5)
    pd.DataFrame({"path": [str(files[0])], "label": ["NCM811_cycled"], "pixel_size_um": ["-3"]}).to_csv(csv, index=False)
    with pytest.raises(ManifestError, match=r"pixel_size_um -3 in .*labels.csv line 2"):
        index_folder(tmp_path, schema=schema, labels_csv=csv)


def test_every_bad_input_is_listed(tree):
    (tree / "NCM333_pristine" / "empty.png").write_bytes(b"")
    good = next((tree / "NCM622_cycled").glob("*.png"))
    data = good.read_bytes()
    jpg = tree / "NCM622_cycled" / "cut.jpg"
    Image.open(good).convert("L").save(jpg, quality=90)
    jpg.write_bytes(jpg.read_bytes()[: len(jpg.read_bytes()) // 2])
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tree / "NCM811_pristine" / "tiny.png")
    (tree / "NCM999_weird").mkdir()
    (tree / "NCM999_weird" / "x.png").write_bytes(data)
    shutil.rmtree(tree / "NCM811_formation")
    (tree / "NCM811_formation").mkdir()
    with pytest.raises(ManifestError) as info:
        index_folder(tree)
    msg = str(info.value)
    reasons = dict(info.value.problems)
    assert any("empty.png" in p for p in reasons)
    assert any("cut.jpg" in p for p in reasons)
    assert any("tiny.png" in p for p in reasons)
    assert any("x.png" in p and "unknown label" in r for p, r in reasons.items())
    assert any("NCM811_formation" in p and "empty" in r for p, r in info.value.problems)
    assert "empty class: no usable image of NCM811_formation" in msg
    # with skip_bad they become warnings and a list beside the manifest
    with pytest.warns(UserWarning, match="skipped"):
        df = index_folder(tree, skip_bad=True)
    assert len(df) == 72 - 8
    out = write_manifest(df, tree.parent / "m.csv")
    skipped = pd.read_csv(tree.parent / "m.skipped.csv")
    assert len(skipped) == len(info.value.problems)
    assert len(read_manifest(out)) == len(df)


def test_read_manifest_errors(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest(tmp_path / "nope.csv")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ManifestError, match="missing columns"):
        read_manifest(tmp_path / "x.csv")


@needs_kaist
@pytest.mark.realdata
def test_index_kaist_counts_and_speed():
    t0 = time.time()
    df = index_folder(KAIST / "images")
    elapsed = time.time() - t0
    assert elapsed < 60, f"indexing took {elapsed:.1f} s"
    counts = df["label"].value_counts().to_dict()
    expected = {"NCM333_pristine": 100, "NCM333_formation": 41, "NCM333_cycled": 72, "NCM622_pristine": 100,
                "NCM622_formation": 41, "NCM622_cycled": 41, "NCM811_pristine": 100, "NCM811_formation": 100,
                "NCM811_cycled": 100, "NCM523_pristine": 25, "NCM523_formation": 25, "NCM523_cycled": 25}
    assert counts == expected
    ref = pd.read_csv(KAIST / "manifest.csv")
    assert set(df["sha256"]) == set(ref["sha256"])
    assert (df.loc[df.composition == "NCM523", "domain"] == "NCM523").all()
    assert ((df["bar_row"] - 896).abs() <= 2).all()


def test_file_without_date_joins_its_folder_session(tree):
    side = next((tree / "NCM622_formation").glob("*.txt"))
    side.unlink()  # like KAIST frame 1200: an image without its sidecar
    df = index_folder(tree)
    sub = df[df["label"] == "NCM622_formation"]
    assert sub["acq_date"].isna().sum() == 1
    assert sub["session"].nunique() == 1
