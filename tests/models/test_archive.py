"""Archive predict: streamed, chunked, resumable, and it survives kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from semcathode.data._schema import default_schema
from semcathode.io._walk import iter_inputs, walk_inputs
from semcathode.models._archive import archive_columns, done_keys, predict_archive
from semcathode.models._export import load_model, predict_paths


def _tree(root: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        d = root / f"batch{i // 25:02d}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (80, 96), dtype=np.uint8)).save(d / f"f{i:04d}.png")
    return root


def test_the_stream_walk_finds_what_the_list_walk_finds(tmp_path):
    root = _tree(tmp_path / "t", 60)
    (root / "batch01" / "notes.txt").write_text("x")
    (root / "batch01" / "sub.png").mkdir()  # a folder named like an image: walked
    Image.fromarray(np.zeros((80, 96), np.uint8)).save(root / "batch01" / "sub.png" / "inner.png")
    assert list(iter_inputs([root, tmp_path / "gone"])) == walk_inputs([root, tmp_path / "gone"])


def test_archive_predict_equals_predict_paths_and_resume_skips_what_is_done(tiny_model_path, tmp_path):
    root = _tree(tmp_path / "t", 40)
    (root / "batch00" / "broken.png").write_bytes(b"not a png")
    model = load_model(tiny_model_path)
    out = tmp_path / "preds.csv"
    counts = predict_archive(model, [root], out, workers=2, chunk=7, batch_tiles=16)
    assert counts == {"predicted": 40, "failed": 1, "skipped": 0}
    got = pd.read_csv(out, keep_default_na=False)
    assert list(got.columns) == archive_columns(model.classes) and len(got) == 41 and got.path.is_unique
    ref = predict_paths(model, sorted(p for p in root.rglob("f*.png"))).set_index("path")
    ok = got[got.error == ""].set_index("path").loc[ref.index]
    assert (ok.pred == ref.pred).all()
    np.testing.assert_allclose(ok.confidence.astype(float), ref.confidence.astype(float), atol=1e-5)
    assert "broken.png" in got[got.error != ""].error.iloc[0]
    # resume: nothing left but the broken file (errors are retried), nothing repeated
    counts = predict_archive(model, [root], out, resume=True, workers=0)
    assert counts == {"predicted": 0, "failed": 1, "skipped": 40}
    # a changed file is predicted again, with --verify by content
    f = root / "batch01" / "f0030.png"
    Image.fromarray(np.full((80, 96), 7, np.uint8)).save(f)
    counts = predict_archive(model, [root], out, resume=True, workers=0)
    assert counts["predicted"] == 1 and counts["skipped"] == 39


def test_predict_is_the_table_in_memory_or_the_stream_into_a_csv(tiny_model_path, tmp_path):
    import semcathode as sc

    root = _tree(tmp_path / "t", 6)
    model = load_model(tiny_model_path)
    table = sc.predict(model, root)  # one folder, not a list
    assert table.equals(predict_paths(model, [root]))
    assert len(table) == 6 and (table.error.fillna("") == "").all()
    out = tmp_path / "preds.csv"
    assert sc.predict(model, [root], out=out, workers=0) == {"predicted": 6, "failed": 0, "skipped": 0}
    streamed = pd.read_csv(out, keep_default_na=False).set_index("path").loc[table.path]
    assert (streamed.pred.values == table.pred.values).all()
    assert sc.predict(model, [root], out=out, resume=True, workers=0)["skipped"] == 6
    with pytest.raises(TypeError, match="resume"):
        sc.predict(model, [root], resume=True)  # a stream option without a stream


def test_resume_refuses_an_output_of_another_model(tiny_model_path, tmp_path):
    out = tmp_path / "other.csv"
    out.write_text("path,pred,confidence,n_tiles,tile_agreement,ood_score,familiar,p_a,error\n")
    with pytest.raises(ValueError, match="columns"):
        predict_archive(load_model(tiny_model_path), [_tree(tmp_path / "t", 2)], out, resume=True, workers=0)


_RUN = """
import sys
from semcathode.models._archive import predict_archive
from semcathode.models._export import load_model
predict_archive(load_model(sys.argv[1]), [sys.argv[2]], sys.argv[3], resume=True, workers=0, chunk=3,
                batch_tiles=4, verify=sys.argv[4] == "1")
"""


@pytest.mark.parametrize("verify", [False, True])
def test_kill_9_leaves_a_readable_output_and_resume_finishes_it_without_repeating_a_file(tiny_model_path, tmp_path, verify):
    root = _tree(tmp_path / "t", 300)
    out = tmp_path / "preds.csv"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", _RUN, str(tiny_model_path), str(root), str(out), str(int(verify))],
                            env=env)
    t0 = time.time()
    while time.time() - t0 < 120:
        if out.exists() and out.read_bytes().count(b"\n") > 10:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = pd.read_csv(out, keep_default_na=False)
    assert 9 <= len(first) < 300, "the run was killed in the middle"
    assert (first.error == "").all() and first.path.is_unique and first.pred.isin(default_schema().classes).all()
    assert len(done_keys(out, verify)) == len(first)
    subprocess.run([sys.executable, "-c", _RUN, str(tiny_model_path), str(root), str(out), str(int(verify))],
                   env=env, check=True)
    final = pd.read_csv(out, keep_default_na=False)
    assert len(final) == 300 and final.path.is_unique  # every file once
    assert final.iloc[: len(first)].path.tolist() == first.path.tolist()  # the first run's rows kept as they were


def test_two_ranks_predict_disjoint_shards_merged_into_one_output(tiny_model_path, tmp_path):
    from semcathode.models._archive import predict_archive_ranks

    root = _tree(tmp_path / "t", 30)
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    predict_archive(load_model(tiny_model_path), [root], one, workers=0)
    counts = predict_archive_ranks(tiny_model_path, [root], two, processes=2, workers=0)
    assert counts == {"predicted": 30, "failed": 0, "skipped": 0}
    a = pd.read_csv(one).set_index("path").sort_index()
    b = pd.read_csv(two).set_index("path").sort_index()
    assert list(b.index) == list(a.index) and b.index.is_unique  # every file once, nothing else
    assert (a.pred == b.pred).all()
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-5)
    assert not list(tmp_path.glob(".two.csv.rank*"))  # the rank files are merged away
    Image.fromarray(np.zeros((80, 96), np.uint8)).save(root / "batch00" / "new.png")
    counts = predict_archive_ranks(tiny_model_path, [root], two, processes=2, workers=0, resume=True)
    assert counts == {"predicted": 1, "failed": 0, "skipped": 30}
    assert len(pd.read_csv(two)) == 31
