"""Data-layer benchmark: cold pre-processing vs cached loading on the KAIST images.

Prints JSON. Targets (issue 3): cached loading >= 5x faster than cold and >= 300 img/s at
224 px on 2 cores. Usage: python benchmarks/bench_data.py [--size 224] [--n 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import torch

import semcathode as sc
from semcathode.data._download import resolve_data_dir
from semcathode.data._preprocess import PreprocessCache
from semcathode.data._loaders import load_item, make_dataloaders


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--n", type=int, default=200, help="images (0 = all)")
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    data = resolve_data_dir("kaist-ncm", args.data, download=False)
    manifest = sc.index_folder(data / "images" if (data / "images").is_dir() else data)
    if args.n:
        manifest = manifest.sample(n=min(args.n, len(manifest)), random_state=0)
    params = sc.data.PreprocessParams("resize", args.size)
    with tempfile.TemporaryDirectory() as tmp:
        cache = PreprocessCache(tmp)
        t0 = time.perf_counter()
        items = sc.data.build_items(manifest, params, cache, workers=2)
        cold = time.perf_counter() - t0
        # cached: read every item back as the DataBlock does (np.load -> 3-channel tensor)
        t0 = time.perf_counter()
        for _ in range(3):
            for _, row in items.iterrows():
                load_item(row)
        cached = (time.perf_counter() - t0) / 3
        # cached through fastai DataLoaders (no augmentation), a full pass
        items = items.assign(split="valid", label=items["label"])
        items.loc[items.index[:16], "split"] = "train"
        classes = sorted(items["label"].unique())
        dls = make_dataloaders(items, classes, bs=32, augment=False)
        t0 = time.perf_counter()
        n = sum(len(xb) for xb, _ in dls.valid)
        dl_time = time.perf_counter() - t0
        rebuild = time.perf_counter()
        sc.data.build_items(manifest, params, cache, workers=2)  # all hits
        rebuild = time.perf_counter() - rebuild
    out = {
        "benchmark": "data",
        "images": len(manifest),
        "size": args.size,
        "cold_preprocess_img_per_s": round(len(manifest) / cold, 1),
        "cached_load_img_per_s": round(len(manifest) / cached, 1),
        "cached_speedup_vs_cold": round(cold / cached, 1),
        "cached_dataloader_img_per_s": round(n / dl_time, 1),
        "cache_hit_build_items_img_per_s": round(len(manifest) / rebuild, 1),
        "targets": {"cached_speedup_vs_cold": ">= 5", "cached_load_img_per_s": ">= 300"},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
