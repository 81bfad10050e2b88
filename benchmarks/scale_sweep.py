"""Choose the input representation by measurement: physical scale x crop size on real KAIST data.

For every (scale µm/px, crop px) pair, stage 1 is trained once (seed 0, the demo's stage-1
schedule shortened by ``--epochs``) and scored per micrograph on the source valid split (the
split the choice is made on), the source test split and the session-tail split. Seconds per
epoch are the mean wall time of the full-network epochs. Prints JSON, one record per pair.

Run on an otherwise idle machine::

    python benchmarks/scale_sweep.py --scales 0.26 0.5 1.0 --sizes 128 224 --epochs 4
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=float, nargs="+", default=[0.26, 0.5, 1.0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    ap.add_argument("--epochs", type=int, default=4, help="full-network stage-1 epochs (plus one head-only)")
    ap.add_argument("--crops", type=int, default=1, help="random crops per micrograph per epoch")
    ap.add_argument("--early", type=int, default=0, help="epochs with the high-resolution early blocks frozen")
    ap.add_argument("--probe", action="store_true", help="also score the linear probe on the same splits")
    ap.add_argument("--set", nargs="*", default=[], help="extra config overrides KEY=VALUE")
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--out", default="", help="also write the JSON records here")
    args = ap.parse_args()

    import torch

    import semcathode as sc
    from semcathode.study._evaluation import evaluate_model
    from semcathode.study._train import train_stage1

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        base = sc.load_config(args.profile)
        manifest = sc.data.prepare_splits(sc.data.build_manifest(base.data, sc.config.cache_root(base)), base.data, base.target)
        (Path(tmp) / sc.pipeline.MANIFEST).parent.mkdir()
        sc.data.write_manifest(manifest, Path(tmp) / sc.pipeline.MANIFEST)
        for scale in args.scales:
            for size in args.sizes:
                cfg = sc.load_config(args.profile, overrides={
                    "preprocess.mode": "scale", "preprocess.scale_um": scale, "preprocess.size": size,
                    "preprocess.crops_per_image": args.crops, "stage1.epochs": args.epochs, "stage1.freeze_epochs": 1,
                    "stage1.freeze_early_epochs": args.early, "stage1.validate": False,
                    **dict(kv.split("=", 1) for kv in args.set),
                })
                t0 = time.time()
                study = sc.load_study(sc.config.study_settings(cfg), f"{tmp}/{sc.pipeline.MANIFEST}")
                prep_s = time.time() - t0
                tm = train_stage1(study, 0, cache_dir=Path(tmp) / f"store-{scale}-{size}", log=None)
                h = tm.history
                rec = {"scale_um": scale, "crop_px": size, "field_of_view_um": round(scale * size, 1),
                       "epochs": args.epochs, "crops": args.crops, "early_frozen_epochs": args.early,
                       "s_per_epoch": round(float(h.loc[h.phase.isin(["all", "late"]), "wall_s"].mean()), 1),
                       "s_per_head_epoch": round(float(h.loc[h.phase == "head", "wall_s"].mean()), 1),
                       "train_crops_per_epoch": int(len(study.rows("source", "train")) * args.crops),
                       "preprocess_s": round(prep_s, 1)}
                for split in ("valid", "test", "tail"):
                    t1 = time.time()
                    img, m, _ = evaluate_model(tm, study.rows("source", split), study.classes)
                    rec[f"{split}_macro_f1"] = round(m["macro_f1"], 3)
                    rec[f"{split}_n"] = int(m["n"])
                    rec[f"{split}_eval_s"] = round(time.time() - t1, 1)
                    rec["tiles_per_micrograph"] = int(img["n_tiles"].median())
                    wrong = img[~img["correct"]]
                    rec[f"{split}_errors"] = {f"{a}->{b}": int(n) for (a, b), n in wrong.groupby(["label", "pred"]).size().items()}
                if args.probe:
                    from semcathode.study._baselines import linear_probe

                    for split in ("valid", "test", "tail"):
                        _, pm = linear_probe(study.rows("source", "train"), study.rows("source", split), study.settings, study.classes)
                        rec[f"probe_{split}_macro_f1"] = round(pm["macro_f1"], 3)
                if args.set:
                    rec["overrides"] = args.set
                records.append(rec)
                print(json.dumps(rec), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
