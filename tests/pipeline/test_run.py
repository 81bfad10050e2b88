"""The notebook pipeline: resume by products, Ctrl-C, portable reports, figures inline.

Fast tests drive :func:`run_pipeline` with tiny stand-in notebooks (no training); the tests
marked ``slow`` run the real notebooks under the smoke profile.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from semcathode.config._run import load_config
from semcathode.pipeline._notebooks import NOTEBOOK_NAMES, PipelineError
from semcathode.pipeline._resume import missing_products
from semcathode.pipeline._run import package_versions, run_pipeline

REPO = Path(__file__).resolve().parents[2]

PARAMS = 'profile = "smoke"\nconfig = ""\ndata_dir = ""\nout_dir = "."'


def _stub(nbdir: Path, name: str, body: str) -> None:
    """A stand-in notebook: the parameters cell, then ``body`` with ``out`` ready."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell(PARAMS)
    p.metadata["tags"] = ["parameters"]
    nb.cells += [p, nbformat.v4.new_code_cell(f"import semcathode as sc\nout = sc.report.NotebookOutputs(out_dir, {name!r})"),
                 nbformat.v4.new_code_cell(body), nbformat.v4.new_code_cell("out.save({})")]
    nbdir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, nbdir / f"{name}.ipynb")


@pytest.fixture
def stubs(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    _stub(nbdir, "01_data", "out.table(__import__('pandas').DataFrame({'path': ['a.png']}), 'manifest')")
    _stub(nbdir, "02_pretrain", "(out.dir / 'model.safetensors').write_bytes(b'weights')\nprint('epoch 1/1 done', flush=True)")
    monkeypatch.setenv("SEMCATHODE_NOTEBOOKS", str(nbdir))
    return nbdir


def test_missing_products_of_an_unknown_or_torn_notebook(tmp_path):
    assert missing_products(tmp_path, "06_extra") == ["06_extra.ipynb", "06_extra/outputs.json"]
    (tmp_path / "06_extra").mkdir()
    (tmp_path / "06_extra.ipynb").write_text("{}")
    (tmp_path / "06_extra" / "outputs.json").write_text("{not json")
    assert missing_products(tmp_path, "06_extra") == ["06_extra/outputs.json (unreadable)"]
    (tmp_path / "06_extra" / "outputs.json").write_text('{"files": ["06_extra/t.csv"]}')
    assert missing_products(tmp_path, "06_extra") == ["06_extra/t.csv"]


def test_package_versions_name_python_and_the_result_shaping_packages():
    v = package_versions()
    assert list(v)[0] == "python" and {"torch", "timm", "numpy"} <= set(v)


def test_resume_reruns_a_notebook_whose_product_is_missing(stubs, tmp_path):
    out = tmp_path / "report"
    cfg = load_config("smoke")
    logs: list[str] = []
    run_pipeline(cfg, out, log=logs.append, html=False)
    assert (out / "02_pretrain" / "model.safetensors").exists() and missing_products(out, "02_pretrain") == []
    logs.clear()
    run_pipeline(cfg, out, log=logs.append, html=False)
    assert sum("up to date" in m for m in logs) == 2 and not any(": running" in m for m in logs)
    # a fresh clone has the committed report but not the (git-ignored) model: 02 must run
    (out / "02_pretrain" / "model.safetensors").unlink()
    assert missing_products(out, "02_pretrain") == ["02_pretrain/model.safetensors"]
    logs.clear()
    run_pipeline(cfg, out, log=logs.append, html=False)
    assert any("01_data: up to date" in m for m in logs)
    assert any("02_pretrain: running" in m and "model.safetensors" in m for m in logs)
    assert (out / "02_pretrain" / "model.safetensors").exists()
    # a file listed in outputs.json missing counts too; --force reruns everything
    (out / "01_data" / "manifest.csv").unlink()
    assert missing_products(out, "01_data") == ["01_data/manifest.csv"]
    logs.clear()
    run_pipeline(cfg, out, log=logs.append, html=False)
    assert sum(": running" in m for m in logs) == 2
    logs.clear()
    run_pipeline(cfg, out, log=logs.append, html=False, force=True)
    assert sum(": running" in m for m in logs) == 2 and not any("up to date" in m for m in logs)


def test_a_config_built_in_code_is_range_checked_before_anything_runs(stubs, tmp_path):
    from dataclasses import replace

    from semcathode.config import ConfigError

    cfg = load_config("smoke")
    bad = replace(cfg, stage1=replace(cfg.stage1, lr=-1.0))
    with pytest.raises(ConfigError, match="stage1.lr"):
        run_pipeline(bad, tmp_path / "r")
    assert not (tmp_path / "r").exists() and not (tmp_path / "r.staging").exists()


def test_stub_report_is_portable(stubs, tmp_path):
    out = tmp_path / "report"
    run_pipeline(load_config("smoke"), out, log=lambda m: None)
    assert _absolute_paths(out, tmp_path) == {}


def _absolute_paths(report: Path, *extra: Path) -> dict:
    from semcathode.report._portable import absolute_paths

    needles = [str(REPO), str(Path.home()) + os.sep, tempfile.gettempdir() + os.sep, sys.prefix,
               os.environ.get("SEMCATHODE_CACHE", ""), *map(str, extra)]
    return absolute_paths(report, tuple(n for n in needles if n))


def test_ctrl_c_prints_one_line_and_exits_130(stubs, tmp_path):
    _stub(stubs, "02_pretrain", "import time\nprint('training', flush=True)\ntime.sleep(60)")
    out = tmp_path / "report"
    code = ("import logging, sys\nfrom semcathode.config._run import load_config\nfrom semcathode.pipeline._run import run_pipeline\n"
            "logging.basicConfig(level=logging.WARNING, stream=sys.stdout)\n"
            f"run_pipeline(load_config('smoke'), {str(out)!r}, log=lambda m: print(m, flush=True), html=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    seen, t0 = [], time.time()
    while time.time() - t0 < 120:
        line = proc.stdout.readline()
        seen.append(line)
        if "02_pretrain: running" in line:
            break
    else:
        proc.kill()
        pytest.fail(f"02_pretrain never started: {seen}")
    time.sleep(3)  # let the kernel start executing
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr + stdout
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "02_pretrain" in lines[0] and "untouched" in lines[0]
    assert "semcathode run --profile smoke --out report" in lines[0]
    assert not out.exists(), "a first run never publishes a partial report"
    state = json.loads((tmp_path / "report.staging" / "run_state.json").read_text())
    assert state["notebooks"]["01_data"]["status"] == "ok"
    assert state["notebooks"]["02_pretrain"]["status"] == "interrupted"


@pytest.mark.slow
def test_wheel_ships_the_notebooks(tmp_path):
    """The wheel holds every notebook pair (installed under <prefix>/share/semcathode/notebooks)."""
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(REPO)], check=True, timeout=600, cwd=tmp_path)
    (wheel,) = tmp_path.glob("semcathode-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for nb in NOTEBOOK_NAMES:
        for suffix in (".ipynb", ".py"):
            assert any(n.endswith(f".data/data/share/semcathode/notebooks/{nb}{suffix}") for n in names), nb
    assert any(n.endswith("semcathode/config/profiles/smoke.yaml") for n in names)
    assert any(n.endswith("semcathode/data/registry/kaist-ncm.csv") for n in names)
    # the type stubs of the lazy names, and the marker that the package is typed
    for stub in ("semcathode/__init__.pyi", "semcathode/models/__init__.pyi", "semcathode/py.typed"):
        assert stub in names, stub


# ---- the real notebooks under the smoke profile -------------------------------------------


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports") / "smoke"
    logs: list[str] = []
    run_pipeline(load_config("smoke"), out, log=logs.append)
    return out, logs


def _snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): p.stat().st_mtime_ns for p in d.rglob("*") if p.is_file()}


def _png_outputs(nb_path: Path) -> int:
    nb = nbformat.read(nb_path, as_version=4)
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.slow
def test_smoke_runs_all_notebooks_and_writes_the_index(smoke_report):
    out, logs = smoke_report
    for nb in NOTEBOOK_NAMES:
        assert (out / f"{nb}.ipynb").exists() and (out / f"{nb}.html").exists()
        assert missing_products(out, nb) == [], nb
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
    assert set(state["notebooks"]) == set(NOTEBOOK_NAMES)
    assert all(v["status"] == "ok" and v["wall_s"] > 0 for v in state["notebooks"].values())
    assert (out / "config.yaml").exists() and "config_hash" in (out / "config.yaml").read_text()
    assert not out.with_name(out.name + ".staging").exists()
    assert any("02_pretrain: running" in m for m in logs)


@pytest.mark.slow
def test_smoke_notebooks_show_their_figures_inline(smoke_report):
    out, _ = smoke_report
    for nb in NOTEBOOK_NAMES:
        listed = json.loads((out / nb / "outputs.json").read_text())
        n_figures = sum(len(s["figures"]) for s in listed["sections"])
        assert _png_outputs(out / f"{nb}.ipynb") >= n_figures, nb
        assert (out / f"{nb}.html").read_text().count("data:image/png;base64") >= n_figures, nb
    cam_figs = [f for s in json.loads((out / "05_gradcam" / "outputs.json").read_text())["sections"]
                for f in s["figures"] if "cam_grid" in f["path"]]
    assert cam_figs and _png_outputs(out / "05_gradcam.ipynb") >= len(cam_figs)


@pytest.mark.slow
def test_smoke_report_holds_no_absolute_path(smoke_report, tmp_path_factory):
    out, _ = smoke_report
    assert _absolute_paths(out, tmp_path_factory.getbasetemp()) == {}
    manifest = (out / "01_data" / "manifest.csv").read_text().splitlines()
    assert manifest[0].startswith("path") or ",path" in manifest[0]


@pytest.mark.slow
def test_resume_skips_completed_notebooks(smoke_report):
    out, _ = smoke_report
    logs: list[str] = []
    run_pipeline(load_config("smoke"), out, log=logs.append)
    assert sum("up to date" in m for m in logs) == 5
    assert not any(": running" in m for m in logs)
    # a changed stage-2 setting reruns 03 onwards only (the manifest's relative paths resolve again)
    logs.clear()
    cfg = load_config("smoke", overrides={"stage2.lr": 0.002})
    run_pipeline(cfg, out, log=logs.append, notebooks=["01_data", "02_pretrain", "03_finetune"])
    assert [m.split(":")[0].split()[-1] for m in logs if "up to date" in m] == ["01_data", "02_pretrain"]
    assert any("03_finetune: running" in m for m in logs)


@pytest.mark.slow
def test_failure_in_notebook_03_keeps_previous_report(smoke_report, tmp_path, monkeypatch):
    import shutil

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


REPORT_DEMO = REPO / "reports" / "demo"


@pytest.mark.skipif(not (REPORT_DEMO / "run_state.json").exists(),
                    reason="reports/demo is absent (it is regenerated by `make demo` and committed)")
def test_committed_demo_report_holds_no_absolute_path():
    found = _absolute_paths(REPORT_DEMO, Path("/work"), Path("/home"), Path("/root"), Path("/tmp"))
    assert found == {}, f"absolute paths in reports/demo: {found}"


def test_a_batch_run_turns_the_bar_off_in_its_own_config_and_leaves_the_callers(stubs, tmp_path):
    """The kernels of `semcathode run` read `distributed.progress_bar: false` from the run's
    config.yaml (no environment variable); the caller's config is untouched, and the key is in no
    hash, so a batch run and an interactive one share their products."""
    from semcathode.pipeline._notebooks import notebook_hashes

    _stub(stubs, "01_data", "out.table(__import__('pandas').DataFrame({'path': ['a.png']}), 'manifest')\n"
          "(out.dir / 'bar.txt').write_text(str(sc.load_config(profile, config).distributed.progress_bar))")
    cfg = load_config("smoke")
    assert cfg.distributed.progress_bar
    out = tmp_path / "run"
    run_pipeline(cfg, out, html=False, log=lambda m: None)
    assert (out / "01_data" / "bar.txt").read_text() == "False"  # what the kernel saw
    assert cfg.distributed.progress_bar  # the caller's object
    ran = load_config("smoke", out / "config.yaml")
    assert ran.distributed.progress_bar is False
    assert notebook_hashes(cfg, NOTEBOOK_NAMES) == notebook_hashes(ran, NOTEBOOK_NAMES)


def test_forcing_some_notebooks_keeps_the_products_of_the_others(stubs, tmp_path):
    """`semcathode run --notebooks 01_data --force` over a complete report reruns 01 and leaves 02's
    products where they were (the swap replaces the whole folder: the staging copy must hold them)."""
    out = tmp_path / "report"
    cfg = load_config("smoke")
    run_pipeline(cfg, out, log=lambda m: None, html=False)
    model = out / "02_pretrain" / "model.safetensors"
    before = json.loads((out / "run_state.json").read_text())["notebooks"]
    executed_01 = (out / "01_data.ipynb").read_text()
    logs: list[str] = []
    run_pipeline(cfg, out, notebooks=["01_data"], log=logs.append, html=False, force=True)
    assert any("01_data: running" in m for m in logs)
    assert model.read_bytes() == b"weights" and missing_products(out, "02_pretrain") == []
    after = json.loads((out / "run_state.json").read_text())["notebooks"]
    assert after["02_pretrain"] == before["02_pretrain"]
    # 01 ran again: a new executed copy (papermill records its own start and end times in it; its
    # wall time, rounded to 0.1 s, may well be the same)
    assert (out / "01_data.ipynb").read_text() != executed_01


def test_changing_only_cam_arms_reruns_03_which_exports_the_arms_05_explains(stubs, tmp_path):
    """03 exports the models of ``cam.arms`` and 05 explains them: a run that changes only that key
    must rerun 03 (its hash covers ``cam.arms``), not skip it and leave 05 without a model file."""
    load = "cfg = sc.load_config(profile, config or None)\n"
    _stub(stubs, "03_finetune", load + "for a in cfg.cam.arms:\n    (out.dir / f'model_{a}.safetensors').write_bytes(b'w')")
    _stub(stubs, "04_ablation", "pass")
    _stub(stubs, "05_gradcam", load + "missing = [a for a in cfg.cam.arms if not (out.dir.parent / '03_finetune' / "
                               "f'model_{a}.safetensors').exists()]\nassert not missing, missing")
    out = tmp_path / "report"
    run_pipeline(load_config("smoke", overrides={"cam.arms": ["ft_only"]}), out, log=lambda m: None, html=False)
    logs: list[str] = []
    run_pipeline(load_config("smoke", overrides={"cam.arms": ["ft_only", "pre_ft_oversample"]}), out,
                 log=logs.append, html=False)
    assert any("01_data: up to date" in m for m in logs) and any("02_pretrain: up to date" in m for m in logs)
    assert any("03_finetune: running" in m for m in logs) and any("05_gradcam: running" in m for m in logs)
    assert sorted(p.name for p in (out / "03_finetune").glob("model_*.safetensors")) == [
        "model_ft_only.safetensors", "model_pre_ft_oversample.safetensors"]


def test_every_setting_a_notebook_reads_is_in_its_hash():
    """Each ``cfg.<section>.<key>`` a notebook reads directly is covered by the sections (or single
    keys) of that notebook or of one before it, so that changing it reruns the notebook. (Settings
    read inside library calls are covered by the sections of the notebook that makes the call.)"""
    import re

    from semcathode.pipeline._notebooks import NOTEBOOKS

    covered: set[str] = set()
    for nb in NOTEBOOKS:
        covered |= set(nb.sections)
        src = (REPO / "notebooks" / f"{nb.name}.py").read_text()
        for section, key in re.findall(r"\bcfg\.([a-z_0-9]+)(?:\.([a-z_0-9]+))?", src):
            if section == "profile":  # the profile's name (its settings are in the sections)
                continue
            assert section in covered or f"{section}.{key}" in covered, (
                f"{nb.name} reads cfg.{section}{'.' + key if key else ''}, which no notebook up to it hashes")
