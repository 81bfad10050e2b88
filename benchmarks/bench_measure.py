"""Throughput of ``semcathode measure`` on the real KAIST micrographs: micrographs per second.

Runs the command's library path (:func:`semcathode.morphology.measure_paths`: read, cut the data
bar, segment, measure) over every KAIST frame, with ``--workers`` processes, and prints JSON:
files, seconds, micrographs/s and the budget of issue 19 (770 frames in <= 120 s on 2 cores).
Frames without a pixel size use the KAIST value (0.2625 µm/px), as ``--pixel-size`` would.
Usage: python benchmarks/bench_measure.py [--workers 2] [--limit N] [--data ../shared/data/kaist-ncm]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from semcathode.io._walk import find_images
from semcathode.morphology import measure_paths

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--limit", type=int, default=0, help="first N frames only (0: all)")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "kaist-ncm"))
    args = ap.parse_args()
    files = find_images([Path(args.data) / "images"])
    files = files[: args.limit] if args.limit else files
    t0 = time.perf_counter()
    measures, particles = measure_paths(files, pixel_size_um=0.2625, workers=args.workers)
    dt = time.perf_counter() - t0
    ok = measures["error"] == ""
    print(json.dumps({
        "benchmark": "measure", "files": len(files), "measured": int(ok.sum()), "particles": len(particles),
        "workers": args.workers, "seconds": round(dt, 2), "micrographs_per_s": round(len(files) / dt, 2),
        "budget_s_for_770": 120, "projected_s_for_770": round(770 * dt / max(len(files), 1), 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "d50_um_median": round(float(measures.loc[ok, "d50_um"].median()), 2),
    }, indent=1))


if __name__ == "__main__":
    main()
