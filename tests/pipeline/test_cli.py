import pandas as pd
import pytest

from semcathode.pipeline._cli import build_parser, main

from conftest import KAIST, needs_kaist


def _sha(path):
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_data_index_writes_manifest(synthetic_root, tmp_path, capsys):
    out = tmp_path / "m.csv"
    assert main(["data", "index", str(synthetic_root), "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert len(df) == 72 and df["label"].nunique() == 9
    text = capsys.readouterr().out
    assert "NCM811_cycled" in text and "indexed 72 images" in text


def test_data_index_reports_bad_files(synthetic_root, tmp_path, capsys):
    import shutil

    root = tmp_path / "d"
    shutil.copytree(synthetic_root, root)
    (root / "NCM333_pristine" / "broken.png").write_bytes(b"not an image")
    assert main(["data", "index", str(root), "--out", str(tmp_path / "m.csv")]) == 2
    assert "broken.png" in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists()
    capsys.readouterr()
    # --skip-bad: the good files are indexed, the bad one is listed, exit code 1 says some failed
    assert main(["data", "index", str(root), "--out", str(tmp_path / "m.csv"), "--skip-bad"]) == 1
    assert (tmp_path / "m.skipped.csv").exists()
    err = capsys.readouterr().err
    assert "skipped: " in err and "broken.png" in err
    assert len(pd.read_csv(tmp_path / "m.csv")) == 72


def test_run_rejects_bad_config(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage1:\n  learning_rate: 0.1\n")
    assert main(["run", "--profile", "smoke", "--config", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "stage1.learning_rate" in capsys.readouterr().err
    assert main(["run", "--profile", "smoke", "--set", "stage1.epochs=lots", "--out", str(tmp_path / "r")]) == 2
    assert "stage1.epochs" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_parser_has_all_commands():
    p = build_parser()
    for argv in (["data", "index", "d", "--out", "m"], ["data", "fetch", "kaist-ncm", "d"], ["run"],
                 ["predict", "m", "x", "--out", "o"], ["cam", "m", "x", "--out", "o"]):
        assert callable(p.parse_args(argv).func)


def test_fetch_from_mirror_cli(tmp_path, capsys, monkeypatch, synthetic_root):
    import semcathode.data._download as ds
    import shutil

    f = next((synthetic_root / "NCM333_cycled").glob("*.png"))
    (tmp_path / "mirror" / "images").mkdir(parents=True)
    shutil.copy(f, tmp_path / "mirror" / "images" / f.name)
    reg = pd.DataFrame([(f"images/{f.name}", _sha(f), f.stat().st_size, "0" * 40, f.name)],
                       columns=["file", "sha256", "bytes", "upstream_commit", "upstream_path"])
    monkeypatch.setattr(ds, "registry", lambda name="kaist-ncm": reg)
    assert main(["data", "fetch", "kaist-ncm", str(tmp_path / "dest"), "--mirror", str(tmp_path / "mirror")]) == 0
    assert "verified" in capsys.readouterr().out


@needs_kaist
@pytest.mark.realdata
def test_index_kaist_cli(tmp_path, capsys):
    assert main(["data", "index", str(KAIST), "--out", str(tmp_path / "m.csv")]) == 0
    text = capsys.readouterr().out
    assert "indexed 770 images" in text and "NCM523_cycled" in text
