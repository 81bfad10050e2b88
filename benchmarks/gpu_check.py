"""One-GPU check of the paper profile: stage 1 for one seed and an archive predict of 10^4 tiles,
in at most 8 minutes. Prints JSON: training images/s, predict tiles/s, peak GPU memory, times.

``--mode gpu`` (what ``gpu_check.sh`` runs), on CUDA:

1. the ``paper`` profile on the KAIST data, seed 0, full fine-tuning, with a stage-1 epoch budget
   that fits the time limit (``--epochs``);
2. the ``demo`` profile's trunk-cache path, seed 0: the frozen trunk computed once over every
   micrograph (tiles/s), then stage 1 of the linear head on the cached maps, which are held on the
   GPU when they fit (``maps_held_on_gpu``);
3. ``predict --stream`` of the paper model over a synthetic tree whose micrographs give 10,000
   tiles, eagerly and then compiled (``torch.compile``, the compiler's time included), so that the
   JSON says whether compiling pays.

``--mode cpu`` (``gpu_check.sh --cpu``, run by the tests): the same steps in a tiny setting (the
smoke profile's synthetic data, one epoch, a 5-stage trunk with a linear head, 64 tiles, no
compile unless ``--compile``), so that the script is known to run before a GPU is at hand.
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
    ap.add_argument("--compile", action="store_true", help="cpu mode: also predict compiled (gpu mode always does)")
    args = ap.parse_args()
    import torch

    import semcathode as sc
    from semcathode.models._archive import predict_archive

    gpu = args.mode == "gpu"
    if gpu and not torch.cuda.is_available():
        print(json.dumps({"benchmark": "gpu_check", "error": "no CUDA device: run gpu_check.sh --cpu for the tiny "
                                                             "CPU setting"}))
        raise SystemExit(2)
    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    t0 = time.perf_counter()
    if gpu:
        cfg = sc.load_config("paper", overrides={"protocol.seeds": [0], "stage1.epochs": args.epochs,
                                                 "preprocess.cache_dir": str(tmp / "cache")})
        manifest = sc.data.prepare_splits(sc.data.build_manifest(cfg.data, sc.config.cache_root(cfg)), cfg.data, cfg.target)
        sc.data.write_manifest(manifest, tmp / "manifest.csv")
        study = sc.load_study(sc.config.study_settings(cfg), tmp / "manifest.csv")
        n_tiles = args.tiles
    else:
        cfg, study = sc.data.example_study(tmp / "data")
        cfg.stage1.epochs = 1
        study = study.using(stage1={"epochs": 1})
        n_tiles = 64
    prepared = time.perf_counter() - t0
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    s1 = sc.train_stage1(study, 0, cache_dir=tmp / "store", log=None)
    train_s = time.perf_counter() - t
    n_train = int((study.items["domain"].eq("source") & study.items["split"].eq("train")).sum())
    images = n_train * max(1, cfg.preprocess.crops_per_image) * cfg.stage1.epochs
    paper_peak = torch.cuda.max_memory_allocated() / 2**20 if gpu else None
    out = {
        "benchmark": "gpu_check", "mode": args.mode, "profile": cfg.profile, "backbone": cfg.model.backbone,
        "prepare_s": round(prepared, 1), "stage1_epochs": cfg.stage1.epochs, "stage1_s": round(train_s, 1),
        "stage1_images": images, "stage1_img_per_s": round(images / train_s, 1),
        "stage1_gpu_peak_memory_mib": round(paper_peak, 1) if gpu else None,
    }
    out.update(_trunk_cache_path(sc, torch, study, cfg, tmp, gpu))
    model_path = sc.study.export_trained(s1, tmp / "model.safetensors", study.classes)
    side = sc.load_model(model_path).params.size
    make_tree(tmp / "tree", n_tiles, side)  # one tile per synthetic micrograph of the model's input size
    for compiled in ((False, True) if gpu or args.compile else (False,)):
        model = sc.load_model(model_path, device="cuda" if gpu else "cpu").optimize(compile=compiled)
        px = model.params.scale_um or None  # the synthetic frames are at the model's scale: one tile each
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        counts = predict_archive(model, [tmp / "tree"], tmp / f"preds{int(compiled)}.csv", pixel_size_um=px,
                                 workers=min(8, os.cpu_count() or 1) if gpu else 0)
        predict_s = time.perf_counter() - t
        tag = "predict_compiled" if compiled else "predict"
        out.update({f"{tag}_tiles": counts["predicted"], f"{tag}_failed": counts["failed"],
                    f"{tag}_s": round(predict_s, 1), f"{tag}_tiles_per_s": round(counts["predicted"] / predict_s, 1),
                    f"{tag}_gpu_peak_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1) if gpu else None})
    out.update({
        "total_s": round(time.perf_counter() - t0, 1),
        "gpu_peak_memory_mib": round(max(v for k, v in out.items() if k.endswith("gpu_peak_memory_mib")), 1)
        if gpu else None,
        "device": torch.cuda.get_device_name(0) if gpu else f"cpu: {platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
    })
    print(json.dumps(out, indent=1))


def _trunk_cache_path(sc, torch, study, paper_cfg, tmp: Path, gpu: bool) -> dict:
    """The demo's shape: the trunk cache built once (tiles/s), then stage 1 of the top on the cached maps."""
    import copy

    from semcathode.study._train import warm_trunk_cache

    import numpy as np

    from semcathode.config import cache_root
    from semcathode.models._top import fits_on_device

    if gpu:
        cfg = sc.load_config("demo", overrides={"protocol.seeds": [0], "preprocess.cache_dir": str(tmp / "cache")})
        manifest = sc.data.prepare_splits(sc.data.build_manifest(cfg.data, sc.config.cache_root(cfg)), cfg.data, cfg.target)  # the demo's own splits
        sc.data.write_manifest(manifest, tmp / "manifest_demo.csv")
        demo = sc.load_study(sc.config.study_settings(cfg), tmp / "manifest_demo.csv")
        torch.cuda.reset_peak_memory_stats()
    else:
        cfg = copy.deepcopy(paper_cfg)
        cfg.model.trunk, cfg.model.head, cfg.model.head_layer = 5, "linear", "blocks.4"
        cfg.preprocess.cache_dir = str(tmp / "cache")  # a cold trunk cache of its own
        demo = study.using(model=cfg.model, preprocess=cfg.preprocess, cache_root=cache_root(cfg))
    fit = demo.items[demo.items["domain"].eq("source")]
    t = time.perf_counter()
    views = warm_trunk_cache(fit, demo.settings, log=None)
    cache_s = time.perf_counter() - t
    maps = sorted((cache_root(cfg) / "trunk").rglob("*.npy"))
    tiles = int(sum(np.load(p, mmap_mode="r").shape[0] for p in maps))
    nbytes = int(sum(p.stat().st_size for p in maps))
    t = time.perf_counter()
    sc.train_stage1(demo, 0, cache_dir=tmp / "store_demo", log=None)
    top_s = time.perf_counter() - t
    return {
        "cache_profile": cfg.profile, "cache_views": views, "cache_tiles": tiles, "cache_s": round(cache_s, 1),
        "cache_tiles_per_s": round(tiles / cache_s, 1) if cache_s else None, "cache_mib": round(nbytes / 2**20, 1),
        "maps_held_on_gpu": bool(gpu and fits_on_device(nbytes, "cuda")), "top_stage1_epochs": cfg.stage1.epochs,
        "top_stage1_s": round(top_s, 1),
        "top_gpu_peak_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1) if gpu else None,
    }


if __name__ == "__main__":
    main()
