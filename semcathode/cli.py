"""The ``semcathode`` command: ``data index``, ``data fetch``, ``run``, ``predict``, ``cam``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]


def _cmd_index(args: argparse.Namespace) -> int:
    from .manifest import ManifestError, find_duplicates, index_folder, write_manifest
    from .schema import Schema

    schema = Schema(compositions=tuple(args.compositions), extra_compositions=tuple(args.extra))
    t0 = time.time()
    root = Path(args.dir)
    if (root / "images").is_dir() and (root / "manifest.csv").exists():
        root = root / "images"  # the KAIST mirror layout
    try:
        df = index_folder(root, schema=schema, labels_csv=args.labels_csv, skip_bad=args.skip_bad,
                          min_size=args.min_size)
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_manifest(df, args.out)
    counts = df.groupby(["label"], sort=False).size()
    print(f"indexed {len(df)} images into {args.out} in {time.time() - t0:.1f} s")
    for label, n in counts.items():
        print(f"  {label:<20} {n:5d}")
    dups = find_duplicates(df)
    print(f"duplicates: {int((dups['kind'] == 'exact').sum())} exact, {int((dups['kind'] == 'near').sum())} near")
    skipped = df.attrs.get("skipped")
    if skipped:
        print(f"skipped {len(skipped)} file(s); see {Path(args.out).with_suffix('')}.skipped.csv")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from .datasets import DatasetError, attribution, fetch

    def progress(i: int, n: int, f: str) -> None:
        if i == n or i % 100 == 0:
            print(f"  {i}/{n} {f}")

    try:
        fetch(args.name, args.dest, mirror=args.mirror, progress=progress)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(attribution(args.name))
    print(f"dataset {args.name} verified in {args.dest}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .config import ConfigError, load_config
    from .pipeline import PipelineError, run_pipeline

    overrides = list(args.set or [])
    if args.data:
        overrides.append(f"data.data_dir={args.data}")
    try:
        cfg = load_config(args.profile, args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out or Path("reports") / args.profile)
    if not args.quiet:  # papermill logs the notebooks' streamed output at INFO level
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("    %(message)s"))
        pm_log = logging.getLogger("papermill")
        pm_log.addHandler(handler)
        pm_log.setLevel(logging.INFO)
    try:
        run_pipeline(cfg, out, notebooks=args.notebooks, log_output=not args.quiet)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from .export import ModelFileError, load_model, predict_paths

    try:
        model = load_model(args.model).optimize()
    except ModelFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    df = predict_paths(model, args.inputs)
    from ._files import atomic_write_csv

    atomic_write_csv(args.out, df)
    print(f"wrote {len(df)} predictions to {args.out}")
    return 0


def _cmd_cam(args: argparse.Namespace) -> int:
    from .cam import cam_files
    from .export import ModelFileError, load_model

    try:
        model = load_model(args.model)
    except ModelFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = cam_files(model, args.inputs, args.out, method=args.method, target=args.target)
    print(f"wrote {len(paths)} overlays to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``semcathode`` command."""
    p = argparse.ArgumentParser(prog="semcathode", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="index or fetch micrograph data")
    dsub = data.add_subparsers(dest="data_command", required=True)
    ix = dsub.add_parser("index", help="scan a folder tree into a validated manifest CSV")
    ix.add_argument("dir")
    ix.add_argument("--out", required=True)
    ix.add_argument("--labels-csv", default=None, help="labels from a CSV (path,label[,domain,session,sample_id])")
    ix.add_argument("--skip-bad", action="store_true", help="skip bad files with a warning (listed beside the manifest)")
    ix.add_argument("--min-size", type=int, default=64)
    ix.add_argument("--compositions", nargs="+", default=["NCM333", "NCM622", "NCM811"])
    ix.add_argument("--extra", nargs="*", default=["NCM523"], help="further compositions accepted as labels")
    ix.set_defaults(func=_cmd_index)
    fx = dsub.add_parser("fetch", help="download a public dataset (hash-checked, resumable)")
    fx.add_argument("name", choices=["kaist-ncm"])
    fx.add_argument("dest")
    fx.add_argument("--mirror", default=None, help="copy from a local mirror (or $SEMCATHODE_DATA_MIRROR)")
    fx.set_defaults(func=_cmd_fetch)

    run = sub.add_parser("run", help="run the notebooks 01-05 into a report")
    run.add_argument("--profile", default="demo", choices=["smoke", "demo", "paper"])
    run.add_argument("--config", default=None, help="YAML file overriding the profile")
    run.add_argument("--data", default=None, help="folder of micrographs (default: the profile's dataset)")
    run.add_argument("--out", default=None, help="report folder (default reports/<profile>)")
    run.add_argument("--set", action="append", help="override, e.g. --set stage1.epochs=2")
    run.add_argument("--notebooks", nargs="+", default=None, help="subset of notebooks")
    run.add_argument("-q", "--quiet", action="store_true", help="do not stream the notebooks' progress output")
    run.set_defaults(func=_cmd_run)

    pr = sub.add_parser("predict", help="classify micrographs with an exported model")
    pr.add_argument("model", help="exported model (.safetensors with its .json)")
    pr.add_argument("inputs", nargs="+", help="images or folders")
    pr.add_argument("--out", required=True)
    pr.set_defaults(func=_cmd_predict)

    cm = sub.add_parser("cam", help="Grad-CAM overlays with an exported model")
    cm.add_argument("model")
    cm.add_argument("inputs", nargs="+")
    cm.add_argument("--out", required=True)
    cm.add_argument("--method", default="gradcam")
    cm.add_argument("--target", default=None, help="class to explain (default: the predicted class)")
    cm.set_defaults(func=_cmd_cam)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``semcathode`` console script."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
