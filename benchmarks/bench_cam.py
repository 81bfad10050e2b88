"""Grad-CAM throughput on this CPU: prints one JSON object.

``semcathode.explain.compute_cams`` (GradCAM, batches of 8) on ``tf_efficientnet_lite0`` with
9 classes (random weights: speed does not depend on them) at 224 px, with 2 torch threads.
For reference it also times a plain forward pass and pytorch-grad-cam used directly
(full backward pass to the input layers, as the library does by default).  The three are
run interleaved ``--repeats`` times; the top-level rates are the best run (least disturbed
by other processes on a shared machine), ``median`` and ``all_runs`` show the spread.

Usage: ``python benchmarks/bench_cam.py [--size 224] [--batch 8] [--batches 4] [--threads 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch


def _rate(fn, n_images: int, batches: int) -> float:
    t0 = time.perf_counter()
    for _ in range(batches):
        fn()
    return n_images * batches / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--batches", type=int, default=4, help="timed batches (after one warm-up batch)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats; best and median reported")
    ap.add_argument("--method", default="gradcam")
    args = ap.parse_args()

    import timm
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from semcathode.explain import compute_cams
    from semcathode.explain._compute import CAM_METHODS
    from semcathode.explain._layers import find_target_layer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", num_classes=9, pretrained=False).eval()
    x = torch.randn(args.batch, 3, args.size, args.size)

    def ours() -> None:
        compute_cams(model, x, method=args.method, batch_size=args.batch)

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def library_default() -> None:
        with CAM_METHODS[args.method](model=model, target_layers=[find_target_layer(model)]) as cam:
            with torch.no_grad():
                pred = model(x).argmax(1).tolist()
            cam(input_tensor=x, targets=[ClassifierOutputTarget(p) for p in pred])
        model.zero_grad(set_to_none=True)

    load = os.getloadavg()
    fns = {"cams_per_s": ours, "forward_only_images_per_s": forward, "library_default_cams_per_s": library_default}
    for fn in fns.values():
        fn()  # warm-up
    rates: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(args.repeats):
        for k, fn in fns.items():
            rates[k].append(_rate(fn, args.batch, args.batches))
    result = {
        "benchmark": "cam_throughput",
        "model": "tf_efficientnet_lite0 (9 classes, random weights)",
        "method": args.method,
        "image_size": args.size,
        "batch_size": args.batch,
        "timed_images": args.batch * args.batches,
        "torch_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        **{k: round(max(v), 2) for k, v in rates.items()},
        "median": {k: round(statistics.median(v), 2) for k, v in rates.items()},
        "all_runs": {k: [round(r, 2) for r in v] for k, v in rates.items()},
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_avg_1min_before": round(load[0], 2),
            "load_avg_1min_after": round(os.getloadavg()[0], 2),
        },
    }
    result["ms_per_cam"] = round(1000.0 / result["cams_per_s"], 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
