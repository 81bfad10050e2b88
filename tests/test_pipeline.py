"""End-to-end: the smoke profile through every notebook with papermill, resume, failure."""

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from semcathode.config import load_config
from semcathode.pipeline import NOTEBOOKS, PipelineError, notebook_hashes, run_pipeline

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports") / "smoke"
    logs: list[str] = []
    run_pipeline(load_config("smoke"), out, log=logs.append)
    return out, logs


def _snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): p.stat().st_mtime_ns for p in d.rglob("*") if p.is_file()}


def test_smoke_runs_all_notebooks_and_writes_the_index(smoke_report):
    out, logs = smoke_report
    present = [nb for nb in NOTEBOOKS if (REPO / "notebooks" / f"{nb}.ipynb").exists()]
    assert len(present) == 5
    for nb in present:
        assert (out / f"{nb}.ipynb").exists() and (out / f"{nb}.html").exists()
        assert (out / nb / "outputs.json").exists()
        executed = nbformat.read(out / f"{nb}.ipynb", as_version=4)
        assert any("parameters" in c.metadata.get("tags", []) for c in executed.cells)
    readme = (out / "README.md").read_text()
    for heading in ["## Dataset", "### Dataset summary", "### Splits", "### Duplicates",
                    "## Stage 1: pretraining", "### Linear-probe baseline", "### Backbone and weights",
                    "### Headline results", "### Confusion matrices", "### Target domain",
                    "### Shortcut and confounds", "### Acquisition-shift robustness",
                    "### Data-poor learning curve", "## Grad-CAM", "## Run provenance"]:
        assert heading in readme, heading
    assert "SIMULATED INSTRUMENT SHIFT" in readme
    assert (out / "index.html").read_text().count("<img") >= 5
    state = json.loads((out / "run_state.json").read_text())
    assert set(state["notebooks"]) == set(present)
    assert all(v["status"] == "ok" and v["wall_s"] > 0 for v in state["notebooks"].values())
    assert (out / "config.yaml").exists() and "config_hash" in (out / "config.yaml").read_text()
    assert not out.with_name(out.name + ".staging").exists()
    assert any("02_pretrain: running" in m for m in logs)


def test_resume_skips_completed_notebooks(smoke_report):
    out, _ = smoke_report
    logs: list[str] = []
    run_pipeline(load_config("smoke"), out, log=logs.append)
    assert sum("up to date" in m for m in logs) == 5
    assert not any(": running" in m for m in logs)
    # a changed stage-2 setting reruns 03 onwards only
    logs.clear()
    cfg = load_config("smoke", overrides={"stage2.lr": 0.002})
    run_pipeline(cfg, out, log=logs.append, notebooks=["01_data", "02_pretrain", "03_finetune"])
    assert [m.split(":")[0].split()[-1] for m in logs if "up to date" in m] == ["01_data", "02_pretrain"]
    assert any("03_finetune: running" in m for m in logs)


def test_hash_chain_invalidates_downstream():
    a = notebook_hashes(load_config("smoke"))
    b = notebook_hashes(load_config("smoke", overrides={"stage1.epochs": 2}))
    assert a["01_data"] == b["01_data"]
    assert all(a[nb] != b[nb] for nb in NOTEBOOKS[1:])


def test_failure_in_notebook_03_keeps_previous_report(smoke_report, tmp_path, monkeypatch):
    out, _ = smoke_report
    nbdir = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", nbdir)
    nb = nbformat.read(nbdir / "03_finetune.ipynb", as_version=4)
    bad_index = 4
    nb.cells.insert(bad_index, nbformat.v4.new_code_cell("raise RuntimeError('injected failure')"))
    nbformat.write(nb, nbdir / "03_finetune.ipynb")
    monkeypatch.setenv("SEMCATHODE_NOTEBOOKS", str(nbdir))
    before = _snapshot(out)
    cfg = load_config("smoke", overrides={"stage2.epochs": 2})
    with pytest.raises(PipelineError) as info:
        run_pipeline(cfg, out, log=lambda m: None)
    msg = str(info.value)
    assert "03_finetune" in msg and f"cell {bad_index}" in msg and "injected failure" in msg
    assert "03_finetune.ipynb" in msg  # points to the executed notebook
    assert _snapshot(out) == before  # previous complete report untouched
    staging = out.with_name(out.name + ".staging")
    assert (staging / "03_finetune.ipynb").exists()
    shutil.rmtree(staging)
