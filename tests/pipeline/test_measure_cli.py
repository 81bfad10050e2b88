"""``semcathode measure``: the tables, the overlays and the bad-input rules of every batch command."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
from PIL import Image

from semcathode.pipeline._cli import main


def _frames(synthetic_root, tmp_path, n=3):
    src = sorted(synthetic_root.rglob("*.png"))[:n]
    d = tmp_path / "in"
    d.mkdir()
    for f in src:
        shutil.copy(f, d / f.name)
        shutil.copy(f"{f}.txt", d / f"{f.name}.txt")
    return d


def test_measure_writes_one_row_per_micrograph_particles_and_outlines(synthetic_root, tmp_path, capsys):
    d = _frames(synthetic_root, tmp_path)
    out, parts, ov = tmp_path / "m.csv", tmp_path / "p.csv", tmp_path / "ov"
    assert main(["measure", str(d), "--out", str(out), "--particles", str(parts), "--overlay", str(ov),
                 "--workers", "1", "--set", "fines_um=2.5"]) == 0
    m, p = pd.read_csv(out, keep_default_na=False), pd.read_csv(parts)
    assert len(m) == 3 and (m.error == "").all() and (m.setting_fines_um == 2.5).all()
    assert (m.d50_um.astype(float) > 0).all() and m.n_particles.astype(int).sum() == len(p)
    assert len(list(ov.glob("*_outlines.png"))) == 3
    assert "measured 3 micrograph(s)" in capsys.readouterr().out


def test_measure_names_a_file_without_pixel_size_and_still_measures_the_others(synthetic_root, tmp_path, capsys):
    d = _frames(synthetic_root, tmp_path)
    bare = d / "bare.png"
    Image.fromarray(np.asarray(Image.open(next(d.glob("*.png"))))).save(bare)  # no sidecar
    out = tmp_path / "m.csv"
    assert main(["measure", str(d), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"bad: {bare}" in err and "--pixel-size" in err
    m = pd.read_csv(out, keep_default_na=False)
    assert len(m) == 4 and (m.error != "").sum() == 1
    assert main(["measure", str(bare), "--out", str(out), "--pixel-size", "0.7"]) == 0


def test_measure_refuses_bad_output_and_settings_before_writing(synthetic_root, tmp_path, capsys):
    d = _frames(synthetic_root, tmp_path, n=1)
    img = next(d.glob("*.png"))
    assert main(["measure", str(d), "--out", str(img)]) == 2  # an input
    assert "is an input" in capsys.readouterr().err
    mine = tmp_path / "notes.csv"
    mine.write_text("my,own\n1,2\n")
    assert main(["measure", str(d), "--out", str(mine)]) == 2  # not written by measure: needs --force
    assert mine.read_text() == "my,own\n1,2\n"
    assert main(["measure", str(d), "--out", str(tmp_path / "m.csv"), "--set", "fines_um=-1"]) == 2
    assert "fines_um" in capsys.readouterr().err
    assert main(["measure", str(d), "--out", str(tmp_path / "m.csv"), "--set", "nonsense=1"]) == 2
    assert not (tmp_path / "m.csv").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["measure", str(empty), "--out", str(tmp_path / "m.csv")]) == 2
    assert main(["measure", str(d), "--out", str(tmp_path / "m.csv")]) == 0
    assert main(["measure", str(d), "--out", str(tmp_path / "m.csv")]) == 0  # its own file: replaced


def test_measure_with_only_bad_files_writes_nothing(tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    assert main(["measure", str(broken), "--out", str(tmp_path / "m.csv")]) == 2
    assert not (tmp_path / "m.csv").exists()
    assert f"bad: {broken}" in capsys.readouterr().err
