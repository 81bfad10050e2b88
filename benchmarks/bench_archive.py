"""Archive predict at scale: peak memory at 1,000 vs 10,000 files, and throughput against a plain
batched timm forward over the same tiles, in one run. Prints JSON.

A synthetic tree of small micrographs (256 x 256 grey PNGs in folders of 500, made here in a
temporary folder, never committed) is predicted by ``semcathode predict --stream`` (library
path :func:`semcathode.models._archive.predict_archive`, decoding in 2 DataLoader workers) in a child
process per size, whose peak resident memory (``ru_maxrss``) is read after it ends. The plain
forward runs in a child process too (the same start-up and warm-up), over the same tiles decoded
beforehand. The machine's speed drifts between minutes, so the throughput is measured in
``--rounds`` interleaved rounds (plain, archive with no decoding worker, archive with the default
workers of :func:`semcathode.models._archive.decode_workers`, archive with 2 workers), each ratio
taken within its round and the median ratio reported. Targets (issue 20): memory at 10k <= 1.2x
memory at 1k; archive tiles/s >= 0.9x the plain forward's.
Usage: python benchmarks/bench_archive.py [--n 10000] [--small 1000] [--size 224] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = """
import sys, time, json, resource
from semcathode.models._archive import predict_archive
from semcathode.models._export import load_model
m = load_model(sys.argv[1]).optimize()
t = time.perf_counter()
w = None if sys.argv[4] == "auto" else int(sys.argv[4])
c = predict_archive(m, [sys.argv[2]], sys.argv[3], workers=w, chunk=32, batch_tiles=32)
dt = time.perf_counter() - t
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"seconds": dt, **c, "peak_rss_mib": round(own, 1), "peak_worker_rss_mib": round(workers, 1)}))
"""

PLAIN = """
import sys, time, json, resource
from pathlib import Path
import numpy as np, torch
from PIL import Image
from semcathode.models._export import load_model
from semcathode.models._forward import normalise_batch
m = load_model(sys.argv[1]).optimize()
side = int(sys.argv[3])
files = sorted(Path(sys.argv[2]).rglob("*.png"))
tiles = np.stack([np.asarray(Image.open(f).resize((side, side), Image.BILINEAR)) for f in files])
with torch.inference_mode():
    t = time.perf_counter()
    for i in range(0, len(tiles), 32):
        m.model(normalise_batch(tiles[i:i + 32], *m.input_norm).contiguous(memory_format=torch.channels_last))
    dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "predicted": len(tiles)}))
"""


def make_tree(root: Path, n: int, side: int) -> None:
    """``n`` synthetic ``side`` x ``side`` grey PNGs in folders of 500 under ``root``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (side, side), dtype=np.uint8)
    for i in range(n):
        d = root / f"box{i // 500:03d}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.roll(base, i, axis=1)).save(d / f"m{i:06d}.png", compress_level=1)


def _child(model: Path, tree: Path, out: Path, workers: int | str) -> dict:
    """One run in its own process: its time, counts and peak memory (its own and its largest worker's)."""
    r = subprocess.run([sys.executable, "-c", CHILD, str(model), str(tree), str(out), str(workers)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def _plain(model: Path, tree: Path, side: int) -> dict:
    """The plain batched forward over the tree's tiles (decoded before the clock starts), in its own process."""
    r = subprocess.run([sys.executable, "-c", PLAIN, str(model), str(tree), str(side)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--size", type=int, default=224, help="tile side (the model's input)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds")
    args = ap.parse_args()
    import timm
    import torch

    from semcathode.data._preprocess import PreprocessParams
    from semcathode.data._schema import default_schema
    from semcathode.models._archive import decode_workers
    from semcathode.models._export import export_model

    tmp = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    classes = default_schema().classes
    net = timm.create_model("tf_efficientnet_lite0", num_classes=len(classes), pretrained=False).eval()
    model_path = export_model(net, tmp / "m.safetensors", classes, "efficientnet_lite0", "tf_efficientnet_lite0",
                              PreprocessParams("resize", args.size), "dataset", (0.5,) * 3, (0.5,) * 3)
    small, big = tmp / "small", tmp / "big"
    t = time.perf_counter()
    make_tree(small, args.small, args.size + 32)
    make_tree(big, args.n, args.size + 32)
    made = time.perf_counter() - t
    r_big = _child(model_path, big, tmp / "big.csv", "auto")
    r_small_mem = _child(model_path, small, tmp / "small.csv", "auto")
    default = decode_workers("cpu")
    arms = {"workers0": 0, "workers2": 2, **({} if default in (0, 2) else {f"workers{default}": default})}
    rounds: list[dict] = []
    for _ in range(args.rounds):  # interleaved: every ratio is taken within one round
        plain = _plain(model_path, small, args.size)
        rnd = {"plain_tiles_per_s": plain["predicted"] / plain["seconds"]}
        for name, w in arms.items():
            r = _child(model_path, small, tmp / f"small_{name}.csv", w)
            rnd[f"{name}_tiles_per_s"] = r["predicted"] / r["seconds"]
        rounds.append({k: round(v, 1) for k, v in rnd.items()})
    ratio = {name: float(np.median([r[f"{name}_tiles_per_s"] / r["plain_tiles_per_s"] for r in rounds]))
             for name in arms}
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({
        "benchmark": "archive_predict", "files_small": args.small, "files_big": args.n, "tile": args.size,
        "tree_made_s": round(made, 1),
        "small": r_small_mem, "big": r_big,
        "memory_ratio_big_over_small": round(r_big["peak_rss_mib"] / r_small_mem["peak_rss_mib"], 3),
        "memory_target": "<= 1.2",
        "archive_tiles_per_s_big": round(r_big["predicted"] / r_big["seconds"], 1),
        "default_workers": default,
        "rounds": rounds,
        "throughput_ratio_median": {k: round(v, 3) for k, v in ratio.items()},
        "throughput_ratio": round(ratio[f"workers{default}"], 3), "throughput_target": ">= 0.9",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads",
    }, indent=1))


if __name__ == "__main__":
    main()
