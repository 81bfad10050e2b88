"""Training and prediction throughput: the semcathode learner vs a plain PyTorch loop.

Same model (tf_efficientnet_lite0, 9 classes), same cached data, same batch size, same
process. Prints JSON. Targets (issue 4): learner/plain ratio >= 0.9; predict >= 50 img/s at
224 px on 2 cores. Usage: python benchmarks/bench_train.py [--size 224] [--n 96]
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
from semcathode.data import load_item, make_dataloaders
from semcathode.learner import make_learner, seed_everything


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--n", type=int, default=96, help="training images per measured epoch")
    ap.add_argument("--bs", type=int, default=16)
    args = ap.parse_args()
    data = sc.resolve_data_dir("kaist-ncm", None, download=False)
    manifest = sc.index_folder(data / "images").sample(n=args.n + 32, random_state=0)
    classes = sc.default_schema().classes
    manifest = manifest[manifest["label"].isin(classes)]
    with tempfile.TemporaryDirectory() as tmp:
        items = sc.build_items(manifest, sc.PreprocessParams("resize", args.size), sc.PreprocessCache(tmp))
        items["split"] = "train"
        items.loc[items.index[args.n:], "split"] = "valid"
        train = items[items.split == "train"]
        mean, std = (0.5,) * 3, (0.5,) * 3
        seed_everything(0)
        dls = make_dataloaders(items, classes, bs=args.bs, mean=mean, std=std, augment=False)
        learn = make_learner(dls, len(classes), weights="packaged", channels_last=True)
        cfg = replace(sc.load_config("smoke").stage1, epochs=1, freeze_epochs=0, schedule="paper", lr=1e-3, validate=False)
        # warm-up (allocations, first-iteration costs), then one timed epoch through fit_stage
        sc.fit_stage(learn, replace(cfg, epochs=1), quiet=True)
        n_train = (len(train) // args.bs) * args.bs
        t0 = time.perf_counter()
        with learn.no_bar(), learn.no_logging():
            learn.fit(1, 1e-3)
        fa_time = time.perf_counter() - t0
        n_valid = len(dls.valid_ds)
        # the plain loop: same model class and weights, same cached tensors, same batch size
        model, _ = sc.learner.create_model("efficientnet_lite0", "packaged", len(classes))
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
                    vr = [load_item(r) for _, r in items[items.split == "valid"].iloc[i : i + args.bs].iterrows()]
                    model(((torch.stack(vr).float() / 255 - m) / s).contiguous(memory_format=torch.channels_last))
            model.train()

        plain_epoch()  # warm-up
        t0 = time.perf_counter()
        plain_epoch()
        plain_time = time.perf_counter() - t0
        # prediction through an exported model
        path = sc.export_trained(sc.protocol.TrainedModel(learn, "bench", 0, None, learn.weights_info.to_dict(), 0), f"{tmp}/m.safetensors",
                                 sc.load_config("smoke", overrides={"preprocess.size": args.size}), classes)
        em = sc.load_model(path).optimize()  # BatchNorm folded, channels_last
        x = torch.stack([em.normalise(np.load(p)) [0] for p in items["cache_path"]]).contiguous(memory_format=torch.channels_last)
        em.predict_tensor(x[:32])
        t0 = time.perf_counter()
        em.predict_tensor(x, bs=32)
        pred_rate = len(x) / (time.perf_counter() - t0)
    fa_rate = n_train / fa_time
    plain_rate = n_train / plain_time
    print(json.dumps({
        "benchmark": "train",
        "size": args.size,
        "batch_size": args.bs,
        "train_images_per_epoch": n_train,
        "semcathode_learner_train_img_per_s": round(fa_rate, 2),
        "plain_pytorch_train_img_per_s": round(plain_rate, 2),
        "ratio_learner_over_plain": round(fa_rate / plain_rate, 3),
        "predict_img_per_s": round(pred_rate, 1),
        "note": "each epoch includes the same validation pass over the valid images in both loops",
        "targets": {"ratio_learner_over_plain": ">= 0.9", "predict_img_per_s": ">= 50"},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__},
    }, indent=2))


if __name__ == "__main__":
    main()
