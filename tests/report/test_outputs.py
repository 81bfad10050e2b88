import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]

from semcathode.report._outputs import NotebookOutputs, df_to_markdown, read_outputs, read_table


def test_outputs_saved_and_read_back(one_notebook_run):
    tmp_path = one_notebook_run
    saved = read_outputs(tmp_path, "01_data")
    assert saved["summary"] == {"n": 2} and "01_data/line.png" in saved["files"]
    assert read_table(tmp_path, "01_data", "t")["b"].tolist() == [0.5, 0.25]
    assert read_outputs(tmp_path, "02_pretrain") is None
    with pytest.raises(FileNotFoundError, match="run notebook 02_pretrain first"):
        read_table(tmp_path, "02_pretrain", "t")
    assert not list(tmp_path.rglob("*.tmp"))


def test_rel_links_a_file_from_the_run_folder(tmp_path):
    out = NotebookOutputs(tmp_path / "run", "05_gradcam")
    assert out.rel(out.dir / "gallery.html") == "05_gradcam/gallery.html"


def test_markdown_table():
    t = df_to_markdown(pd.DataFrame({"x": [1.23456, float("nan")], "y": ["a|b", "c"]}))
    assert "1.235" in t and "a\\|b" in t
    assert len(df_to_markdown(pd.DataFrame({"x": range(100)}), max_rows=5).splitlines()) == 2 + 5


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
    from semcathode.report import _outputs as report

    monkeypatch.setattr(report, "_in_ipython", lambda: False)
    out = NotebookOutputs(tmp_path, "01_data")
    fig, _ = plt.subplots()
    assert out.figure(fig, "empty").exists()


def test_tables_json_and_text_hold_no_absolute_paths(tmp_path):
    from semcathode.report._portable import PathRelativizer

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
