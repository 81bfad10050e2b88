import json

import matplotlib.pyplot as plt
import pandas as pd

from semcathode.report import NotebookOutputs, df_to_markdown, provenance_note, read_outputs, read_table, write_index


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
    md, html = write_index(tmp_path)
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
