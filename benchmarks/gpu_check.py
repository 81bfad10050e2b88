"""One-GPU check of the paper profile: stage 1 for one seed and an archive predict of 10^4 tiles,
in at most 8 minutes. Prints JSON: training images/s, predict tiles/s, peak GPU memory, times.

``--mode gpu`` (what ``gpu_check.sh`` runs): the ``paper`` profile on the KAIST data, seed 0, on
CUDA, with a stage-1 epoch budget that fits the time limit (``--epochs``), then ``predict
--stream`` over a synthetic tree whose micrographs give 10,000 tiles. ``--mode cpu`` (``gpu_check.sh
--cpu``, run by the tests): the same steps in a tiny setting (the smoke profile's synthetic data,
one epoch, 64 tiles), so that the script is known to run before a GPU is at hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from bench_archive import make_tree  # this folder is on the path when a script here runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("gpu", "cpu"), default="gpu")
    ap.add_argument("--epochs", type=int, default=3, help="gpu mode: stage-1 epochs (the 8-minute budget)")
    ap.add_argument("--tiles", type=int, default=10000, help="gpu mode: tiles to predict")
    args = ap.parse_args()
    import torch

    import semcathode as sc
    from semcathode.models.archive import predict_archive

    gpu = args.mode == "gpu"
    if gpu and not torch.cuda.is_available():
        print(json.dumps({"benchmark": "gpu_check", "error": "no CUDA device: run gpu_check.sh --cpu for the tiny "
                                                             "CPU setting"}))
        raise SystemExit(2)
    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    t0 = time.perf_counter()
    if gpu:
        cfg = sc.load_config("paper", overrides={"protocol.seeds": [0], "stage1.epochs": args.epochs})
        manifest = sc.data.prepare_splits(sc.data.build_manifest(cfg), cfg)
        sc.data.write_manifest(manifest, tmp / "manifest.csv")
        study = sc.load_study(cfg, tmp / "manifest.csv")
        n_tiles = args.tiles
    else:
        cfg, study = sc.data.example_study(tmp / "data")
        cfg.stage1.epochs = 1
        n_tiles = 64
    prepared = time.perf_counter() - t0
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    s1 = sc.train_stage1(study.items, cfg, 0, study.classes, cache_dir=tmp / "store", log=None)
    train_s = time.perf_counter() - t
    n_train = int((study.items["domain"].eq("source") & study.items["split"].eq("train")).sum())
    images = n_train * max(1, cfg.preprocess.crops_per_image) * cfg.stage1.epochs
    model_path = sc.models.export_trained(s1, tmp / "model.safetensors", cfg, study.classes)
    model = sc.load_model(model_path, device="cuda" if gpu else "cpu")
    side = model.params.size
    files = n_tiles  # one tile per synthetic micrograph of the model's input size
    px = model.params.scale_um or None  # the synthetic frames are at the model's scale: one tile each
    make_tree(tmp / "tree", files, side)
    t = time.perf_counter()
    counts = predict_archive(model, [tmp / "tree"], tmp / "preds.csv", pixel_size_um=px,
                             workers=min(8, os.cpu_count() or 1) if gpu else 0)
    predict_s = time.perf_counter() - t
    out = {
        "benchmark": "gpu_check", "mode": args.mode, "profile": cfg.profile, "backbone": cfg.model.backbone,
        "prepare_s": round(prepared, 1), "stage1_epochs": cfg.stage1.epochs, "stage1_s": round(train_s, 1),
        "stage1_images": images, "stage1_img_per_s": round(images / train_s, 1),
        "predict_tiles": counts["predicted"], "predict_failed": counts["failed"], "predict_s": round(predict_s, 1),
        "predict_tiles_per_s": round(counts["predicted"] / predict_s, 1),
        "total_s": round(time.perf_counter() - t0, 1),
        "gpu_peak_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1) if gpu else None,
        "device": torch.cuda.get_device_name(0) if gpu else f"cpu: {platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
