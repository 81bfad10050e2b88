"""The report index: README.md and index.html from the notebooks' outputs and the run state."""

import json


from semcathode.report._index import RUN_STATE, read_run_state, write_index
from semcathode.report._outputs import NotebookOutputs


def test_outputs_and_index(one_notebook_run):
    tmp_path = one_notebook_run
    (tmp_path / "run_state.json").write_text(json.dumps({"profile": "smoke", "config_hash": "abc",
                                                         "notebooks": {"01_data": {"wall_s": 3.0}}}))
    md, html = write_index(tmp_path, notebooks=[("01_data", "Dataset")])
    text = md.read_text()
    assert "## Dataset" in text and "### Dataset summary" in text and "![A line](01_data/line.png)" in text
    assert "| a | b |" in text and "01_data 3.0 s" in text and "Some **words**." in text
    assert "<img" in html.read_text() and "<table>" in html.read_text()
    assert not list(tmp_path.rglob("*.tmp"))


def test_index_defaults_to_the_notebook_folders_and_the_config_profile(tmp_path):
    for name in ("02_pretrain", "01_data"):
        out = NotebookOutputs(tmp_path, name)
        out.text("Notes", f"From {name}.")
        out.save()
    (tmp_path / "figures").mkdir()  # a folder without outputs.json is not a notebook
    md, _ = write_index(tmp_path, profile="demo")
    text = md.read_text()
    assert "profile `demo`" in text and "- [01_data](#" in text
    assert text.index("## 01_data") < text.index("## 02_pretrain") and "## figures" not in text
    assert "Wall time per notebook" not in text and "hash `?`" in text


def test_run_state_absent_or_torn_reads_as_empty(tmp_path):
    assert read_run_state(tmp_path) == {}
    (tmp_path / RUN_STATE).write_text('{"profile": "sm')
    assert read_run_state(tmp_path) == {}
    (tmp_path / RUN_STATE).write_text('[1, 2]')
    assert read_run_state(tmp_path) == {}
    (tmp_path / RUN_STATE).write_text(json.dumps({"profile": "smoke"}))
    assert read_run_state(tmp_path) == {"profile": "smoke"}


def test_provenance_lists_versions_and_attribution(tmp_path):
    NotebookOutputs(tmp_path, "01_data").save()
    (tmp_path / RUN_STATE).write_text(json.dumps({"profile": "smoke", "versions": {"python": "3.11", "torch": "2.4"},
                                                  "notebooks": {"01_data": {"wall_s": 1.5}, "02_pretrain": {"wall_s": 2}}}))
    (tmp_path / "ATTRIBUTION.md").write_text("KAIST")
    text = write_index(tmp_path, notebooks=[("01_data", "Dataset")])[0].read_text()
    assert "- Package versions: python 3.11, torch 2.4" in text and "[ATTRIBUTION.md](ATTRIBUTION.md)" in text
    assert "(total 3.5 s)" in text
