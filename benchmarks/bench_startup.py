"""Start-up time of the package and the CLI (issue 11: < 2 s on an idle machine).

Prints JSON with the median wall time of 3 runs of each command, measured as fresh processes:
``python -c "import semcathode"``, ``semcathode --help`` and ``semcathode data index`` on a
small synthetic folder (written by PIL, so this script itself imports nothing heavy). Also
lists which heavy modules ``import semcathode`` pulled in (expected: none). Do not run it while
another torch job is running. Usage: python benchmarks/bench_startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "fastai", "matplotlib", "pytorch_grad_cam", "timm", "sklearn", "papermill")


def _small_folder(root: Path, n_per_class: int = 3) -> Path:
    """A tiny nine-class folder tree of grey PNGs with a data bar (enough for ``data index``)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for comp in ("NCM333", "NCM622", "NCM811"):
        for state in ("pristine", "formation", "cycled"):
            d = root / f"{comp}_{state}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n_per_class):
                img = rng.integers(40, 200, size=(120, 160), dtype=np.uint8)
                img[-12:] = 0
                Image.fromarray(img).save(d / f"{comp}_{state}_{i:03d}.png")
    return root


def _time(cmd: list[str], runs: int, env: dict) -> dict:
    walls, rc = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        walls.append(time.perf_counter() - t0)
        rc = rc or proc.returncode
        if proc.returncode:
            sys.stderr.write(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}\n")
    return {"median_s": round(statistics.median(walls), 3), "runs_s": [round(w, 3) for w in walls], "rc": rc}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    exe = shutil.which("semcathode", path=str(Path(sys.executable).parent)) or "semcathode"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        data = _small_folder(tmp / "data")
        heavy = subprocess.run(
            [sys.executable, "-c", "import sys, semcathode; print(','.join(m for m in "
             f"{HEAVY!r} if m in sys.modules))"], capture_output=True, text=True, env=env).stdout.strip()
        result = {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1min": round(os.getloadavg()[0], 2),
            "import_semcathode": _time([sys.executable, "-c", "import semcathode"], args.runs, env),
            "semcathode_help": _time([exe, "--help"], args.runs, env),
            "semcathode_data_index": _time([exe, "data", "index", str(data), "--out", str(tmp / "m.csv")],
                                           args.runs, env),
            "heavy_modules_after_import": heavy.split(",") if heavy else [],
            "target_s": 2.0,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
