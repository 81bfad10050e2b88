"""Where a run resumes (``pipeline/_resume.py``): the plan step of ``run_pipeline``, on its own."""

from __future__ import annotations

from semcathode.pipeline._resume import plan_resume

NBS = ["01_data", "02_pretrain", "03_finetune", "04_ablation", "05_gradcam"]
HASHES = {nb: f"h{i}" for i, nb in enumerate(NBS)}


def _ok(**changes):
    recs = {nb: {"hash": HASHES[nb], "status": "ok"} for nb in NBS}
    recs.update(changes)
    return recs


def test_everything_up_to_date_runs_nothing_and_force_runs_everything():
    assert plan_resume(_ok(), HASHES, lambda nb: [], NBS) == (len(NBS), "")
    assert plan_resume(_ok(), HASHES, lambda nb: [], NBS, force=True) == (0, "--force")


def test_the_first_notebook_that_must_run_and_why():
    assert plan_resume(_ok(**{"03_finetune": {"hash": "old", "status": "ok"}}), HASHES, lambda nb: [], NBS) == (
        2, "configuration changed")
    recs = _ok()
    del recs["04_ablation"]
    assert plan_resume(recs, HASHES, lambda nb: [], NBS) == (3, "not run yet")
    assert plan_resume(_ok(**{"02_pretrain": {"hash": "h1", "status": "failed", "cell": 4}}), HASHES,
                       lambda nb: [], NBS) == (1, "last status failed")
    lacks = {"05_gradcam": ["05_gradcam/a.png", "05_gradcam/b.png", "05_gradcam/c.png", "05_gradcam/d.png"]}
    assert plan_resume(_ok(), HASHES, lambda nb: lacks.get(nb, []), NBS) == (
        4, "missing 05_gradcam/a.png, 05_gradcam/b.png, 05_gradcam/c.png …")
    # the earliest reason wins: a later stale notebook does not hide an earlier missing product
    assert plan_resume(_ok(**{"04_ablation": {"hash": "old", "status": "ok"}}), HASHES,
                       lambda nb: ["02_pretrain/model.safetensors"] if nb == "02_pretrain" else [], NBS) == (
        1, "missing 02_pretrain/model.safetensors")
