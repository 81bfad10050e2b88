"""``semcathode predict --stream`` / ``--resume``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from semcathode.pipeline._cli import main


def _tree(root, n):
    rng = np.random.default_rng(0)
    root.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (80, 96), dtype=np.uint8)).save(root / f"f{i:03d}.png")
    return root


def test_stream_then_resume(tiny_model_path, tmp_path, capsys):
    root = _tree(tmp_path / "t", 12)
    out = tmp_path / "p.csv"
    assert main(["predict", str(tiny_model_path), str(root), "--out", str(out), "--stream", "--workers", "0", "-q"]) == 0
    assert len(pd.read_csv(out)) == 12 and "wrote 12 predictions" in capsys.readouterr().out
    Image.fromarray(np.zeros((80, 96), np.uint8)).save(root / "new.png")
    assert main(["predict", str(tiny_model_path), str(root), "--out", str(out), "--resume", "--workers", "0", "-q"]) == 0
    assert "wrote 1 predictions to" in capsys.readouterr().out  # the 12 done ones skipped
    df = pd.read_csv(out)
    assert len(df) == 13 and df.path.is_unique


def test_archive_mode_keeps_the_output_rules(tiny_model_path, tmp_path, capsys):
    root = _tree(tmp_path / "t", 2)
    mine = tmp_path / "mine.csv"
    mine.write_text("a,b\n1,2\n")
    assert main(["predict", str(tiny_model_path), str(root), "--out", str(mine), "--stream", "--workers", "0"]) == 2
    assert main(["predict", str(tiny_model_path), str(root), "--out", str(mine), "--resume", "--workers", "0"]) == 2
    assert mine.read_text() == "a,b\n1,2\n"
    img = root / "f000.png"
    assert main(["predict", str(tiny_model_path), str(img), "--out", str(img), "--stream"]) == 2
    assert "is an input" in capsys.readouterr().err
    assert main(["predict", str(tiny_model_path), str(root), "--out", str(tmp_path / "x.csv"), "--verify"]) == 2
    assert main(["predict", str(tiny_model_path), str(tmp_path / "gone"), "--out", str(tmp_path / "x.csv"),
                 "--stream"]) == 2


def test_processes_shard_and_merge(tiny_model_path, tmp_path, capsys):
    root = _tree(tmp_path / "t", 8)
    out = tmp_path / "p.csv"
    assert main(["predict", str(tiny_model_path), str(root), "--out", str(out), "--stream", "--processes", "2",
                 "--workers", "0"]) == 0
    df = pd.read_csv(out)
    assert len(df) == 8 and df.path.is_unique
    assert main(["predict", str(tiny_model_path), str(root), "--out", str(out), "--stream", "--processes", "0"]) == 2


def test_compile_belongs_to_archive_mode_and_the_default_workers_follow_the_machine(tiny_model_path, tmp_path,
                                                                                    capsys):
    from semcathode.models._archive import decode_workers

    root = _tree(tmp_path / "t", 3)
    out = tmp_path / "p.csv"
    assert main(["predict", str(tiny_model_path), str(root), "--out", str(out), "--compile"]) == 2
    assert "--compile applies to archive mode" in capsys.readouterr().err and not out.exists()
    # no --workers: decode_workers' choice for this machine (none on a CPU of 2 cores or fewer)
    assert main(["predict", str(tiny_model_path), str(root), "--out", str(out), "--stream", "-q"]) == 0
    assert len(pd.read_csv(out)) == 3
    assert decode_workers("cpu", cores=1) == 0 and decode_workers("cpu", cores=8) == 2
    assert decode_workers("cuda", cores=4) == 4 and decode_workers("cuda", cores=64) == 8
