"""Portable reports: absolute paths of this machine rewritten, and found where they remain."""

import json
from pathlib import Path

from semcathode.report._portable import PathRelativizer, absolute_paths, machine_relativizer, make_portable

REPO = Path(__file__).resolve().parents[2]


def test_relativizer_only_rewrites_whole_path_prefixes(tmp_path):
    r = PathRelativizer(tmp_path / "run", tmp_path / "data", None)
    run = str(tmp_path / "run")
    assert r.text(f"{run}/a.png and ({run}/b.png)") == "a.png and (b.png)"
    assert r.text(f"{run}ner/a.png") == f"{run}ner/a.png"
    assert r.text(f"/elsewhere{run}/a.png") == f"/elsewhere{run}/a.png"
    assert r.text(run) == "."


def test_make_portable_rewrites_a_report_folder(tmp_path):
    import nbformat

    run = tmp_path / "run.staging"
    (run / "01_data").mkdir(parents=True)
    (run / "01_data" / "t.csv").write_text(f"path\n{run}/01_data/x.png\n{Path.home()}/y.png\n")
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"input_path": f"{REPO}/notebooks/01_data.ipynb", "output_path": f"{run}/01_data.ipynb"}
    cell = nbformat.v4.new_code_cell("1")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=f"{REPO}/semcathode/splits.py:1: UserWarning\n")]
    nb.cells.append(cell)
    nbformat.write(nb, run / "01_data.ipynb")
    (run / "01_data.html").write_text(f"<p>{tmp_path / 'run'}/01_data/x.png</p>")
    needles = (str(tmp_path), str(Path.home()) + "/", str(REPO))
    assert set(absolute_paths(run, needles)) == {"01_data/t.csv", "01_data.ipynb", "01_data.html"}
    make_portable(run, also=(tmp_path / "run",))
    assert absolute_paths(run, needles) == {}
    meta = nbformat.read(run / "01_data.ipynb", as_version=4).metadata.papermill
    assert meta.output_path == "01_data.ipynb" and meta.input_path == "notebooks/01_data.ipynb"
    assert (run / "01_data" / "t.csv").read_text().splitlines()[1:] == ["01_data/x.png", "~/y.png"]


def test_relativizer_values_and_frames(tmp_path):
    import pandas as pd

    r = PathRelativizer(tmp_path / "run", tmp_path / "data", tmp_path / "cache")
    v = r.value({"a": tmp_path / "run" / "x.png", "b": [str(tmp_path / "data" / "c" / "d.tif"), 3],
                 "c": (str(tmp_path / "cache" / "e.npy"),)})
    assert v == {"a": "x.png", "b": ["c/d.tif", 3], "c": ["<cache>/e.npy"]}
    df = pd.DataFrame({"n": [1, 2]})
    assert r.frame(df) is df  # no text column: nothing to rewrite
    assert r.frame(pd.DataFrame({"p": [str(tmp_path / "run" / "a"), None]}))["p"].tolist()[0] == "a"


def test_machine_relativizer_hides_home_and_python(tmp_path):
    import sys

    r = machine_relativizer(tmp_path / "run", extra=(tmp_path / "final",))
    assert r.text(f"{Path.home()}/notes.txt") == "~/notes.txt"
    assert r.text(f"{Path(sys.prefix).resolve()}/lib/x.py") == "<python>/lib/x.py"
    assert r.text(f"{tmp_path / 'final'}/a.png") == "a.png"


def test_make_portable_rewrites_json_and_leaves_binary_files(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "s.json").write_text(json.dumps({"where": str(run / "a.png")}))
    (run / "x.png").write_bytes(str(run).encode() + b"\xff\xfe")
    assert make_portable(run) == [run / "s.json"]
    assert json.loads((run / "s.json").read_text()) == {"where": "a.png"}
    assert absolute_paths(run, (run,)) == {}  # the PNG is not a text file of the report
