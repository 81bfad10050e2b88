"""Forward-pass throughput against the batch size: the frozen trunk that fills the trunk cache and the
whole network that predicts and runs the CAM measures, each as the library runs it (BatchNorm folded,
channels-last) and the whole network also as loaded (unfolded). Interleaved rounds in one process,
so that a machine whose speed drifts between runs still gives fair ratios. Prints JSON.

Behind ``semcathode.models._forward.CPU_BATCH`` (the default tiles per forward pass on a CPU).
Usage: python benchmarks/bench_batch.py [--batches 2 4 8 16 32] [--tiles 192] [--rounds 3] [--trunk 6]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
import warnings

import numpy as np
import torch

from semcathode.models._export import fold_batchnorm
from semcathode.models._forward import CPU_BATCH
from semcathode.models._learner import create_model
from semcathode.models._trunk import split_network


def _rate(net: torch.nn.Module, batch: int, tiles: int, channels_last: bool) -> float:
    x = torch.randn(batch, 3, 224, 224)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        net(x)  # warm-up
        t0 = time.perf_counter()
        for _ in range(max(1, tiles // batch)):
            net(x)
        return max(1, tiles // batch) * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    ap.add_argument("--tiles", type=int, default=192, help="tiles per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--trunk", type=int, default=6, help="block stages in the trunk (the demo's 6)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    net, _ = create_model("efficientnet_lite0", "auto", 9)
    net.eval()
    trunk, _ = split_network(net, args.trunk)
    folded_trunk = fold_batchnorm(copy.deepcopy(trunk).eval()).to(memory_format=torch.channels_last)
    folded_net = fold_batchnorm(copy.deepcopy(net).eval()).to(memory_format=torch.channels_last)
    nets = {"trunk_folded": (folded_trunk, True), "network_folded": (folded_net, True), "network_as_loaded": (net, False)}
    rates: dict[str, dict[int, list[float]]] = {k: {b: [] for b in args.batches} for k in nets}
    for _ in range(args.rounds):
        for b in args.batches:
            for name, (module, cl) in nets.items():
                rates[name][b].append(_rate(module, b, args.tiles, cl))
    median = {k: {b: float(np.median(v)) for b, v in per.items()} for k, per in rates.items()}
    ref = 16 if 16 in args.batches else args.batches[-1]
    out = {
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__},
        "tiles_per_s_median": {k: {str(b): round(r, 1) for b, r in per.items()} for k, per in median.items()},
        "best_batch": {k: max(per, key=per.get) for k, per in median.items()},
        "cpu_batch": CPU_BATCH,
        f"cpu_batch_over_{ref}": {k: round(per[CPU_BATCH] / per[ref], 2) for k, per in median.items()
                                  if CPU_BATCH in per},
        "folded_cpu_batch_over_as_loaded_32": round(median["network_folded"].get(CPU_BATCH, np.nan)
                                                    / median["network_as_loaded"].get(32, np.nan), 2),
        "rounds": args.rounds,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
