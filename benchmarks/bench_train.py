"""Training and prediction throughput of the demo representation: the semcathode learner vs a
plain PyTorch loop, seconds per epoch.

Same model (tf_efficientnet_lite0, 9 classes), same cached micrographs at the profile's physical
scale, the same random crops per micrograph, same batch size, same process. Also: one epoch with
the high-resolution early blocks frozen (``stage.freeze_early_epochs``), and whole-micrograph
prediction through the exported model (tile grid, BatchNorm folded). Prints JSON. Targets
(issue 4): learner/plain ratio >= 0.9. Usage:
python benchmarks/bench_train.py [--profile demo] [--n 96]

``--cache`` measures the trunk cache instead, in one run on the same tiles: seconds per epoch of
the top trained on cached trunk maps against the whole network trained from pixels, and the
trunk-cache build in tiles/s (issue 18: full / top >= 4):
python benchmarks/bench_train.py --cache [--n 24] [--tiles 4] [--trunk 5] [--head linear]

``--head linear`` measures the demo's model: the network cut after block 5 (trunk 6), a linear
classifier trained on the pooled cached maps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch

import semcathode as sc
from semcathode.data._download import resolve_data_dir
from semcathode.data._inputs import crop_items, grid_items
from semcathode.data._preprocess import PreprocessCache
from semcathode.data._schema import default_schema
from semcathode.models._head import linear_head
from semcathode.data._loaders import load_item, make_dataloaders
from semcathode.models._learner import create_model, fit_stage, make_learner, seed_everything
from semcathode.models._backbones import normalization
from semcathode.models._top import CachedTiles, make_top_learner
from semcathode.models._trunk import TrunkCache, TrunkSpec, split_network, trunk_digest
from semcathode.study._train import TrainedModel
from semcathode.data._factory import preprocess_params


def cache_benchmark(args: argparse.Namespace) -> None:
    """``--cache``: the top trained on cached trunk maps vs the whole network from pixels, on the same
    tiles of the same micrographs at the native 0.2625 µm/px, and the trunk-cache build in tiles/s
    (issue 18: full / top seconds per epoch >= 4)."""
    cfg = sc.load_config("demo", overrides={"preprocess.scale_um": 0.2625, "preprocess.size": 224,
                                            "preprocess.crops_per_image": args.tiles})
    params = preprocess_params(cfg.preprocess)
    data = resolve_data_dir("kaist-ncm", None, download=False)
    classes = default_schema().classes
    manifest = sc.index_folder(data / "images")
    manifest = manifest[manifest["label"].isin(classes)].sample(n=args.n, random_state=0)
    manifest["pixel_size_um"] = manifest["pixel_size_um"].fillna(cfg.preprocess.pixel_size_um or np.nan)
    mean, std = normalization("efficientnet_lite0")
    stage = replace(cfg.stage1, epochs=1, freeze_epochs=0, freeze_early_epochs=0, schedule="discriminative",
                    lr=1e-3, validate=False, batch_size=args.bs, min_steps=0)
    with tempfile.TemporaryDirectory() as tmp:
        items = sc.data.build_items(manifest, params, PreprocessCache(f"{tmp}/pre"))
        items["split"] = "train"
        # the trunk cache, cold: every tile of the grid of every micrograph, one view
        net, _ = create_model("efficientnet_lite0", "packaged", len(classes))
        if args.head == "linear":
            linear_head(net, f"blocks.{args.trunk - 1}")
        net.eval()
        trunk, top = split_network(net, args.trunk)
        spec = TrunkSpec("efficientnet_lite0", args.trunk, trunk_digest(trunk), params.size, params.tile_stride,
                         cfg.preprocess.normalize, tuple(mean), tuple(std))
        cache = TrunkCache(f"{tmp}/trunk")
        t0 = time.perf_counter()
        cache.build(items, trunk, spec, views=["full"], log=None)
        build_s = time.perf_counter() - t0
        n_tiles = sum(len(cache.load(r, spec, "full")) for _, r in items.iterrows())
        # the top on the cache: one epoch after a warm-up epoch
        seed_everything(0)
        train = CachedTiles(items, classes, cache, spec, tiles_per_epoch=args.tiles, seed=0, pooled=top.pointwise)
        learn = make_top_learner(top, train, CachedTiles(items.head(0), classes, cache, spec, tiles_per_epoch=0),
                                 bs=args.bs)
        fit_stage(learn, stage, quiet=True)
        t0 = time.perf_counter()
        fit_stage(learn, stage, quiet=True)
        top_s = time.perf_counter() - t0
        # the whole network from pixels on as many tiles of the same micrographs (random crops of 224 px)
        seed_everything(0)
        dls = make_dataloaders(items, classes, bs=args.bs, mean=mean, std=std, augment=False,
                               crops_per_image=args.tiles, tile_stride=params.tile_stride)
        full, _ = make_learner(dls, len(classes), weights="packaged", channels_last=True)
        fit_stage(full, stage, quiet=True)
        t0 = time.perf_counter()
        fit_stage(full, stage, quiet=True)
        full_s = time.perf_counter() - t0
    n_train = len(train)
    print(json.dumps({
        "benchmark": "trunk cache",
        "representation": {"scale_um": params.scale_um, "tile_px": params.size, "tile_stride": params.tile_stride},
        "trunk_depth": args.trunk,
        "head": args.head,
        "micrographs": int(len(items)),
        "tiles_in_cache": int(n_tiles),
        "trunk_cache_build_s": round(build_s, 2),
        "trunk_cache_build_tiles_per_s": round(n_tiles / build_s, 1),
        "train_tiles_per_epoch": n_train,
        "batch_size": args.bs,
        "top_on_cache_s_per_epoch": round(top_s, 2),
        "full_network_s_per_epoch": round(full_s, 2),
        "ratio_full_over_top_epoch_time": round(full_s / top_s, 2),
        "targets": {"ratio_full_over_top_epoch_time": ">= 4"},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__},
    }, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="demo", help="its preprocess section gives the representation")
    ap.add_argument("--n", type=int, default=96, help="training micrographs per measured epoch")
    ap.add_argument("--bs", type=int, default=16)
    ap.add_argument("--cache", action="store_true", help="measure the trunk cache instead (see cache_benchmark)")
    ap.add_argument("--tiles", type=int, default=4, help="--cache: tiles per micrograph per epoch (both loops)")
    ap.add_argument("--trunk", type=int, default=5, help="--cache: block stages in the frozen trunk")
    ap.add_argument("--head", default="conv", choices=["conv", "linear"],
                    help="--cache: the top after the trunk (linear: the demo's, with --trunk 6)")
    args = ap.parse_args()
    if args.cache:
        if args.n == 96:
            args.n = 24
        return cache_benchmark(args)
    pcfg = sc.load_config(args.profile)
    params = preprocess_params(pcfg.preprocess)
    k = pcfg.preprocess.crops_per_image if params.mode == "scale" else 1
    data = resolve_data_dir("kaist-ncm", None, download=False)
    manifest = sc.index_folder(data / "images").sample(n=args.n + 32, random_state=0)
    classes = default_schema().classes
    manifest = manifest[manifest["label"].isin(classes)]
    with tempfile.TemporaryDirectory() as tmp:
        manifest["pixel_size_um"] = manifest["pixel_size_um"].fillna(pcfg.preprocess.pixel_size_um or np.nan)
        items = sc.data.build_items(manifest, params, PreprocessCache(tmp))
        items["split"] = "train"
        items.loc[items.index[args.n:], "split"] = "valid"
        mean, std = (0.5,) * 3, (0.5,) * 3
        seed_everything(0)
        dls = make_dataloaders(items, classes, bs=args.bs, mean=mean, std=std, augment=False, crops_per_image=k,
                               tile_stride=params.tile_stride)
        train = crop_items(items[items.split == "train"], k)
        learn, info = make_learner(dls, len(classes), weights="packaged", channels_last=True)
        cfg = replace(sc.load_config("smoke").stage1, epochs=1, freeze_epochs=0, schedule="paper", lr=1e-3, validate=False)
        # warm-up (allocations, first-iteration costs), then one timed epoch through fit_stage
        fit_stage(learn, replace(cfg, epochs=1), quiet=True)
        n_train = (len(train) // args.bs) * args.bs
        t0 = time.perf_counter()
        with learn.no_bar(), learn.no_logging():
            learn.fit(1, 1e-3)
        fa_time = time.perf_counter() - t0
        learn.freeze_to(1)  # the high-resolution early group frozen: its backward pass is skipped
        t0 = time.perf_counter()
        with learn.no_bar(), learn.no_logging():
            learn.fit(1, 1e-3)
        early_frozen_time = time.perf_counter() - t0
        learn.unfreeze()
        valid_rows = [r for _, r in grid_items(items[items.split == "valid"], params.tile_stride, center_only=True).iterrows()]
        n_valid = len(valid_rows)
        # the plain loop: same model class and weights, same cached tensors, same batch size
        model, _ = create_model("efficientnet_lite0", "packaged", len(classes))
        model = model.to(memory_format=torch.channels_last).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        m = torch.tensor(mean).view(1, 3, 1, 1)
        s = torch.tensor(std).view(1, 3, 1, 1)
        rows = [r for _, r in train.iterrows()]
        ys = torch.tensor([classes.index(r["label"]) for r in rows])

        def plain_epoch() -> None:
            perm = torch.randperm(len(rows))
            for i in range(0, n_train, args.bs):
                idx = perm[i : i + args.bs]
                x = torch.stack([load_item(rows[j]) for j in idx.tolist()]).float().div_(255)
                x = ((x - m) / s).contiguous(memory_format=torch.channels_last)
                loss = torch.nn.functional.cross_entropy(model(x), ys[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():  # the same validation pass fastai makes
                for i in range(0, n_valid, args.bs):
                    vr = [load_item(r) for r in valid_rows[i : i + args.bs]]
                    model(((torch.stack(vr).float() / 255 - m) / s).contiguous(memory_format=torch.channels_last))
            model.train()

        plain_epoch()  # warm-up
        t0 = time.perf_counter()
        plain_epoch()
        plain_time = time.perf_counter() - t0
        # whole-micrograph prediction through an exported model (tile grid, BatchNorm folded, channels_last)
        path = sc.study.export_trained(TrainedModel(learn, "bench", 0, None, info.to_dict(), 0,
                                                    settings=sc.config.study_settings(pcfg)), f"{tmp}/m.safetensors", classes)
        em = sc.load_model(path).optimize()
        arrays = [np.load(p) for p in items["cache_path"]]
        em.predict_arrays(arrays[:2])
        t0 = time.perf_counter()
        mo = em.predict_arrays(arrays)
        pred_s = time.perf_counter() - t0
    fa_rate = n_train / fa_time
    plain_rate = n_train / plain_time
    print(json.dumps({
        "benchmark": "train",
        "profile": args.profile,
        "representation": {"mode": params.mode, "scale_um": params.scale_um, "crop_px": params.size,
                           "crops_per_micrograph": k},
        "batch_size": args.bs,
        "train_crops_per_epoch": n_train,
        "semcathode_learner_s_per_epoch": round(fa_time, 2),
        "plain_pytorch_s_per_epoch": round(plain_time, 2),
        "semcathode_learner_early_blocks_frozen_s_per_epoch": round(early_frozen_time, 2),
        "semcathode_learner_train_img_per_s": round(fa_rate, 2),
        "plain_pytorch_train_img_per_s": round(plain_rate, 2),
        "ratio_learner_over_plain": round(fa_rate / plain_rate, 3),
        "ratio_early_frozen_over_full_epoch_time": round(early_frozen_time / fa_time, 3),
        "predict_micrographs_per_s": round(len(arrays) / pred_s, 2),
        "predict_tiles_per_s": round(float(mo.n_tiles.sum()) / pred_s, 1),
        "tiles_per_micrograph": float(np.median(mo.n_tiles)),
        "note": "each epoch includes the same validation pass (one central tile per valid micrograph) in both loops",
        "targets": {"ratio_learner_over_plain": ">= 0.9"},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__},
    }, indent=2))


if __name__ == "__main__":
    main()
