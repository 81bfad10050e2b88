"""``benchmarks/compare_reports.py``: how a regenerated report is checked against the committed one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_reports.py"


def _report(root: Path, f1: float, train_s: float, note: str) -> Path:
    (root / "02_pretrain").mkdir(parents=True)
    pd.DataFrame({"arm": ["stage1", "stage1"], "macro_f1": [f1, f1], "train_s": [train_s, 1.0],
                  "acq_date": ["2019-12-03", None]}).to_csv(
        root / "02_pretrain" / "arm_results.csv", index=False)
    (root / "02_pretrain" / "metrics.json").write_text(json.dumps({"tail": {"macro_f1": f1}, "note": note}))
    (root / "outputs.json").write_text(json.dumps({"written": train_s}))  # bookkeeping: never compared
    return root


def _run(*args) -> tuple[int, list[str]]:
    r = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert r.stderr == "" or r.returncode == 2, r.stderr
    return r.returncode, r.stdout.strip().splitlines()


def test_equal_reports_pass_and_timings_are_left_out(tmp_path):
    old = _report(tmp_path / "old", 0.9619, 7.5, "float32")
    new = _report(tmp_path / "new", 0.9619 + 1e-5, 12.0, "float32")
    rc, lines = _run(old, new, "--tol", "5e-4")
    assert rc == 0 and json.loads(lines[-1]) == {"files_equal": 2, "files_differing": 0, "missing": 0, "tol": 5e-4}


def test_a_changed_number_text_or_missing_file_is_named(tmp_path):
    old = _report(tmp_path / "old", 0.9619, 7.5, "float32")
    new = _report(tmp_path / "new", 0.9790, 7.5, "bfloat16")
    (old / "03_finetune").mkdir()
    (old / "03_finetune" / "predictions.csv").write_text("pred\nNCM333_cycled\n")
    rc, lines = _run(old, new, "--tol", "5e-4")
    assert rc == 1
    assert any(l.startswith("DIFF 02_pretrain/arm_results.csv") and "macro_f1" in l for l in lines)
    assert any(l.startswith("DIFF 02_pretrain/metrics.json") and ".tail.macro_f1: 0.9619 vs 0.979" in l
               and "float32 vs bfloat16" in l for l in lines)
    assert "MISSING 03_finetune/predictions.csv" in lines
    assert json.loads(lines[-1])["files_differing"] == 2
    # a looser tolerance accepts the number, never the text
    rc, lines = _run(old, new, "--tol", "0.05")
    assert rc == 1 and not any("arm_results" in l for l in lines) and any("metrics.json" in l for l in lines)


def test_a_folder_that_is_not_there_is_an_error(tmp_path):
    rc, _ = _run(tmp_path / "nowhere", tmp_path)
    assert rc == 2
