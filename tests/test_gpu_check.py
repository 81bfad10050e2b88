"""``benchmarks/gpu_check.sh --cpu``: the GPU check runs, in its tiny CPU setting, before a GPU is at hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def test_gpu_check_runs_on_cpu_and_prints_its_json(tmp_path):
    r = subprocess.run(["bash", str(SCRIPT), "--cpu"], capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "PYTHON": sys.executable, "SEMCATHODE_CACHE": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout[r.stdout.index("{"):])
    assert out["mode"] == "cpu" and out["gpu_peak_memory_mib"] is None
    assert out["predict_tiles"] == 64 and out["predict_failed"] == 0
    assert out["stage1_img_per_s"] > 0 and out["predict_tiles_per_s"] > 0 and out["total_s"] < 300
    # the demo's trunk-cache path: every source micrograph's tiles cached once, then the linear head trained
    assert out["cache_views"] > 0 and out["cache_tiles"] >= out["cache_views"] and out["cache_tiles_per_s"] > 0
    assert out["top_stage1_s"] > 0 and out["maps_held_on_gpu"] is False
    assert "predict_compiled_tiles" not in out  # compiling is measured in gpu mode (or with --compile)


def test_gpu_mode_without_a_gpu_says_so():
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the real check is run by hand (8 minutes)")
    r = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "PYTHON": sys.executable})
    assert r.returncode == 2 and "no CUDA device" in r.stdout
