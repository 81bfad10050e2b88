import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

REPO = Path(__file__).resolve().parents[2]

from semcathode.report.notes import provenance_note
from semcathode.report.outputs import NotebookOutputs, df_to_markdown, read_outputs, read_table, write_index


def test_outputs_and_index(tmp_path):
    out = NotebookOutputs(tmp_path, "01_data")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    out.figure(fig, "line", "A line", section="Dataset summary")
    out.table(pd.DataFrame({"a": [1, 2], "b": [0.5, 0.25]}), "t", "A table", section="Dataset summary")
    out.text("Dataset summary", "Some **words**.")
    out.save({"n": 2})
    saved = read_outputs(tmp_path, "01_data")
    assert saved["summary"] == {"n": 2} and "01_data/line.png" in saved["files"]
    assert read_table(tmp_path, "01_data", "t")["b"].tolist() == [0.5, 0.25]
    (tmp_path / "run_state.json").write_text(json.dumps({"profile": "smoke", "config_hash": "abc",
                                                         "notebooks": {"01_data": {"wall_s": 3.0}}}))
    md, html = write_index(tmp_path, notebooks=[("01_data", "Dataset")])
    text = md.read_text()
    assert "## Dataset" in text and "### Dataset summary" in text and "![A line](01_data/line.png)" in text
    assert "| a | b |" in text and "01_data 3.0 s" in text and "Some **words**." in text
    assert "<img" in html.read_text() and "<table>" in html.read_text()
    assert not list(tmp_path.rglob("*.tmp"))


def test_markdown_table_and_provenance():
    t = df_to_markdown(pd.DataFrame({"x": [1.23456, float("nan")], "y": ["a|b", "c"]}))
    assert "1.235" in t and "a\\|b" in t
    note = provenance_note({"backbone": "efficientnet_lite0", "timm_name": "tf_efficientnet_lite0",
                            "origin": "packaged", "sha256": "ab" * 32, "note": "fell back"})
    assert "tf_efficientnet_lite0" in note and "fell back" in note and "abababab" in note


def test_figure_is_shown_inline_and_saved(tmp_path):
    """Inside IPython the figure becomes an image/png output; the PNG is saved for the index."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    out = NotebookOutputs(tmp_path, "02_pretrain")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    with capture_output() as cap:
        path = out.figure(fig, "curve", "A curve", section="Training")
    pngs = [o.data["image/png"] for o in cap.outputs if "image/png" in o.data]
    assert len(pngs) == 1
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 100
    assert not plt.fignum_exists(fig.number), "closed, so the inline backend does not show it twice"
    assert not hasattr(type(path), "_repr_html_") and hasattr(path, "_ipython_display_")


def test_figure_outside_ipython_only_saves(tmp_path, monkeypatch):
    from semcathode.report import outputs as report

    monkeypatch.setattr(report, "_in_ipython", lambda: False)
    out = NotebookOutputs(tmp_path, "01_data")
    fig, _ = plt.subplots()
    assert out.figure(fig, "empty").exists()


def test_tables_json_and_text_hold_no_absolute_paths(tmp_path):
    from semcathode.report.outputs import PathRelativizer

    data = tmp_path / "data"
    run = tmp_path / "run"
    out = NotebookOutputs(run, "05_gradcam")
    out.paths = PathRelativizer(run, data, tmp_path / "cache")
    df = pd.DataFrame({"path": [str(data / "NCM333_pristine" / "a.tif"), "rel/b.tif"],
                       "overlay": [str(run / "05_gradcam" / "x.png"), None],
                       "cache_path": [str(tmp_path / "cache" / "pre" / "a.npy"), ""], "n": [1, 2]})
    out.table(df, "records", "Records from " + str(run / "05_gradcam"), section="S")
    out.json({"models": {"a": run / "03_finetune" / "model_a.safetensors"}, "list": [str(data)]}, "exported")
    out.text("S", f"see {run / '05_gradcam' / 'gallery.html'}")
    out.save({"where": str(run)})
    saved = pd.read_csv(run / "05_gradcam" / "records.csv")
    assert saved["path"].tolist() == ["NCM333_pristine/a.tif", "rel/b.tif"]
    assert saved["overlay"].tolist()[0] == "05_gradcam/x.png"
    assert saved["cache_path"].tolist()[0] == "<cache>/pre/a.npy"
    assert json.loads((run / "05_gradcam" / "exported.json").read_text()) == {
        "models": {"a": "03_finetune/model_a.safetensors"}, "list": ["."]}
    for f in (run / "05_gradcam").iterdir():
        assert str(tmp_path) not in f.read_text(), f.name


def test_relativizer_only_rewrites_whole_path_prefixes(tmp_path):
    from semcathode.report.outputs import PathRelativizer

    r = PathRelativizer(tmp_path / "run", tmp_path / "data", None)
    run = str(tmp_path / "run")
    assert r.text(f"{run}/a.png and ({run}/b.png)") == "a.png and (b.png)"
    assert r.text(f"{run}ner/a.png") == f"{run}ner/a.png"
    assert r.text(f"/elsewhere{run}/a.png") == f"/elsewhere{run}/a.png"
    assert r.text(run) == "."


def test_make_portable_rewrites_a_report_folder(tmp_path):
    import nbformat

    from semcathode.report.outputs import absolute_paths, make_portable

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
