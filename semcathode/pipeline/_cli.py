"""The ``semcathode`` command: ``data index``, ``data fetch``, ``run``, ``predict``, ``cam``, ``measure``.

Errors and exit codes (every command):

* ``0``: everything worked.
* ``1``: a batch command (``data index --skip-bad``, ``predict``, ``cam``, ``measure``) did its work for the
  good files but some files failed; each bad file is listed on its own line
  (``bad: <file>: <reason>``) and the output (manifest, CSV, overlays) holds the good ones
  (``predict``, ``measure``: failed files keep a row whose ``error`` column says why). ``run``: a notebook
  failed.
* ``2``: bad input: the command did nothing (nothing written, nothing replaced) and ends with a
  one-line ``error: ...`` naming the file or key and the problem. Also when every file of a
  batch failed, or when ``data index`` finds bad files without ``--skip-bad``.
* ``130``: interrupted (Ctrl-C); one line, no traceback.

A traceback is shown only with ``--debug``; an unexpected failure otherwise ends with one line
(exit 1). Input that cannot be loaded because it is nested too deeply or too large for memory
(a YAML config, a model file) is bad input naming the file (exit 2). Warnings (e.g. an
implausible pixel size in a file's metadata) are printed as one ``warning: ...`` line each.
Every printed line goes through :func:`~semcathode.pipeline._console.safe`: file names that are
not valid UTF-8 show their odd bytes as ``\\xNN``, and control characters in names (newline,
``ESC``, bidi controls such as U+202E) are shown escaped (``\\n``, ``\\x1b``, ``\\u202e``),
so no name can colour the terminal or forge a line of its own.

Inputs that give nothing to read are never skipped in silence: a missing path, a FIFO, device
or socket (never opened) and a named folder with no micrographs (even one named ``dir.jpg``)
are each a ``bad:`` line (``predict`` also gives them a row with the ``error``).

Output files (``predict --out``, ``data index --out`` and its ``<manifest>.skipped.csv``, the
overlays ``cam`` writes into its ``--out`` folder) pass one check before anything is written
(:mod:`semcathode.pipeline._outputs`): never an input of the command, a link, a special file or
a folder; an existing file this command did not write only with ``--force``.

Heavy modules (torch, fastai, pandas, the package's own submodules) are imported inside the
command functions, so ``semcathode --help`` and argument errors are fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:  # pragma: no cover - types only (the CLI imports torch only when a command needs it)
    from ..models._export import ExportedModel

from ._console import CliError, describe, error, escape_name, list_bad, safe, say, show_warning, user_error_types
from ._outputs import (Input, check_out, image_inputs, is_manifest, is_predictions, is_skipped_list, model_inputs,
                       once, out_dir)
from ._outputs import pixel_size_arg as _pixel_size
from ._outputs import supported_extensions as _extensions

__all__ = ["main", "build_parser", "CliError"]


# --------------------------------------------------------------------------- checks


def _too_deep_or_big(exc: BaseException, what: str) -> CliError:
    """Bad input for a file that could not be loaded: too deeply nested or too large."""
    why = ("is nested too deeply to load (RecursionError)" if isinstance(exc, RecursionError)
           else "is too large to load into memory (MemoryError)")
    return CliError(f"{what} {why}")


def _load_model(path: str) -> Any:
    from ..models._export import load_model

    try:
        return load_model(path)
    except (RecursionError, MemoryError) as exc:
        files = " / ".join(dict.fromkeys(str(p) for p, _ in model_inputs(path)[1:]))
        raise _too_deep_or_big(exc, f"{files}: the model") from None


# --------------------------------------------------------------------------- commands


def _cmd_index(args: argparse.Namespace) -> int:
    from ..data._duplicates import find_duplicates
    from ..data._manifest import ManifestError, index_folder, skipped_path, write_manifest
    from ..data._schema import Schema

    out = Path(args.out)
    if args.min_size < 1:
        raise CliError(f"--min-size must be >= 1 px, got {args.min_size}")
    schema = Schema(compositions=tuple(args.compositions), extra_compositions=tuple(args.extra))
    t0 = time.time()
    root = Path(args.dir)
    if not root.exists():
        raise CliError(f"{root}: folder does not exist")
    if not root.is_dir():
        raise CliError(f"{root}: not a folder")
    if (root / "images").is_dir() and (root / "manifest.csv").exists():
        root = root / "images"  # the KAIST mirror layout
    inputs = _index_inputs(root, args.labels_csv, schema)
    side = skipped_path(out)
    check_out(out, inputs=inputs)
    check_out(side, "the list of skipped files", inputs=inputs)
    try:
        df = index_folder(root, schema=schema, labels_csv=args.labels_csv, skip_bad=args.skip_bad,
                          min_size=args.min_size)
    except ManifestError as exc:
        if len(exc.problems) == 1:
            path, reason = exc.problems[0]
            raise CliError(escape_name(f"{path}: {reason}", path)) from None
        list_bad(exc.problems)
        raise CliError(f"{len(exc.problems)} problem(s) found while indexing {root} (listed above); nothing written. "
                       "Fix them, or use --skip-bad to index the good files") from None
    check_out(out, inputs=inputs, own=is_manifest, own_what="a manifest", force=args.force)
    check_out(side, "the list of skipped files", inputs=inputs, own=is_skipped_list,
               own_what="a list of skipped files (path,reason)", force=args.force)
    write_manifest(df, out)
    counts = df.groupby(["label"], sort=False).size()
    say(f"indexed {len(df)} images into {out} in {time.time() - t0:.1f} s")
    for label, n in counts.items():
        say(f"  {label:<20} {n:5d}")
    dups = find_duplicates(df)
    say(f"duplicates: {int((dups['kind'] == 'exact').sum())} exact, {int((dups['kind'] == 'near').sum())} near")
    skipped = df.attrs.get("skipped")
    if skipped:
        list_bad([(s["path"], s["reason"]) for s in skipped], "skipped")
        say(f"skipped {len(skipped)} file(s) or folder(s) (listed above and in {skipped_path(out)})", err=True)
        return 1
    return 0


def _index_inputs(root: Path, labels_csv: str | None, schema: Any) -> Callable[[], list[Input]]:
    """The files ``data index`` reads (listed when first needed)."""
    def make() -> list[Input]:
        from ..data._manifest import input_files

        labels = Path(labels_csv) if labels_csv else None
        return [(f, "the labels CSV" if labels is not None and f == labels else
                 "the sidecar of an input image" if f.suffix.lower() == ".txt" else "an input image")
                for f in input_files(root, labels, schema)]

    return once(make)


def _cmd_fetch(args: argparse.Namespace) -> int:
    from ..data._download import attribution, fetch

    def progress(i: int, n: int, f: str) -> None:
        if i == n or i % 100 == 0:
            say(f"  {i}/{n} {f}")

    fetch(args.name, args.dest, mirror=args.mirror, progress=progress)
    say(attribution(args.name))
    say(f"dataset {args.name} verified in {args.dest}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from ..config._run import load_config

    overrides = list(args.set or [])
    if args.data:
        if not Path(args.data).is_dir():
            raise CliError(f"--data {args.data}: folder does not exist")
        overrides.append(f"data.data_dir={args.data}")
    if getattr(args, "processes", None) is not None:
        overrides.append(f"distributed.processes={args.processes}")
    try:
        cfg = load_config(args.profile, args.config, overrides, default_profile="demo")  # every key checked here
    except (RecursionError, MemoryError) as exc:
        what = " and ".join(([str(args.config)] if args.config else []) + (["the --set values"] if overrides else []))
        raise _too_deep_or_big(exc, f"{what or 'the configuration'}: the configuration") from None
    out = out_dir(args.out or str(Path("reports") / cfg.profile))
    from ._run import PipelineError, run_pipeline

    if not args.quiet:  # papermill logs the notebooks' streamed output at INFO level
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("    %(message)s"))
        pm_log = logging.getLogger("papermill")
        pm_log.addHandler(handler)
        pm_log.setLevel(logging.INFO)
    try:
        run_pipeline(cfg, out, notebooks=args.notebooks, log_output=not args.quiet, force=args.force)
    except PipelineError as exc:
        error(str(exc))
        return 1
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from ..io._walk import walk_inputs

    if args.stream or args.resume:
        from ._archive import cmd_archive

        return cmd_archive(args, _load_model)
    if args.verify:
        raise CliError("--verify applies to --resume")
    if args.compile:
        raise CliError("--compile applies to archive mode (--stream or --resume)")

    out = Path(args.out)
    px = _pixel_size(args.pixel_size)
    entries = walk_inputs(args.inputs)
    files = [f for f, why in entries if why is None]
    inputs = once(lambda: model_inputs(args.model) + image_inputs(files))
    check_out(out, inputs=inputs)
    model = _load_model(args.model).optimize()
    df = _predict_table(model, entries, px)
    if df.empty:
        raise CliError(f"no images found in {', '.join(args.inputs)} (supported: {_extensions()})")
    err = df["error"].fillna("").astype(str)
    failed = err != ""
    n_bad = int(failed.sum())
    if n_bad:
        list_bad(list(zip(df.loc[failed, "path"].astype(str), err[failed])))
    if n_bad == len(df):
        raise CliError(f"none of the {len(df)} image(s) could be predicted (listed above); {out} not written")
    from .._files import atomic_write_csv

    check_out(out, inputs=inputs, own=is_predictions, own_what="a predictions CSV", force=args.force)
    atomic_write_csv(out, df)
    say(f"wrote {len(df) - n_bad} predictions to {out}")
    if n_bad:
        say(f"{n_bad} of {len(df)} image(s) failed (listed above; their rows in {out} give the error)", err=True)
        return 1
    return 0


def _predict_table(model: "ExportedModel", entries: Sequence[tuple[Path, str | None]], px: float | None) -> Any:
    """Predictions of the readable inputs, and a row with the ``error`` for every input that is not.

    Empty (no rows) when nothing was found but folders without micrographs.
    """
    import pandas as pd

    from ..io._walk import EMPTY_FOLDER
    from ..models._export import predict_paths

    files = [f for f, why in entries if why is None]
    bad = [(f, why) for f, why in entries if why is not None]
    if not files and all(why == EMPTY_FOLDER for _, why in bad):
        bad = []
    kwargs = {"pixel_size_um": px} if px is not None else {}
    df = predict_paths(model, files, **kwargs)
    if "error" not in df.columns:
        df["error"] = ""
    if not bad:
        return df
    rows = {r["path"]: r for r in df.to_dict("records")}
    rows.update({str(f): {"path": str(f), "error": f"{f}: {why}"} for f, why in bad})
    order = list(dict.fromkeys([str(f) for f, _ in entries if str(f) in rows] + list(rows)))  # input order
    return pd.DataFrame([rows[k] for k in order], columns=df.columns)


def _overlay_names(files: Sequence[Path], method: str) -> list[str]:
    """Every file name ``cam_files`` may give the overlays of ``files`` (``<stem>[-k]_<method>.png``)."""
    count: dict[str, int] = {}
    for f in dict.fromkeys(files):
        count[f.stem] = count.get(f.stem, 0) + 1
    return [f"{stem}_{method}.png" if k == 1 else f"{stem}-{k}_{method}.png"
            for stem, n in count.items() for k in range(1, n + 1)]


class _WithPixelSize:
    """A loaded model whose readers (``load_array``, ``preprocess_path``) use a given pixel size for
    files without one."""

    def __init__(self, model: "ExportedModel", pixel_size_um: float) -> None:
        self._model = model
        self._px = pixel_size_um

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def load_array(self, path: str | Path) -> Any:
        return self._model.load_array(path, pixel_size_um=self._px)

    def preprocess_path(self, path: str | Path) -> Any:
        return self._model.preprocess_path(path, pixel_size_um=self._px)


def _cam_method(method: str) -> str:
    from ..explain._compute import cam_method_key

    try:
        return cam_method_key(method)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _cam_target(target: str | None, classes: Sequence[str]) -> str | None:
    if target is None:
        return None
    names = [str(c) for c in classes]
    if target in names or (target.isdigit() and int(target) < len(names)):
        return target
    raise CliError(f"unknown target class {target!r}; the model's classes: {', '.join(names)} (or an index 0..{len(names) - 1})")


def _cmd_cam(args: argparse.Namespace) -> int:
    import inspect

    out = out_dir(args.out)
    px = _pixel_size(args.pixel_size)
    method = _cam_method(args.method)
    from ..explain import cam_files

    model: Any = _load_model(args.model)
    target = _cam_target(args.target, model.classes)
    if px is not None:
        if "pixel_size_um" not in inspect.signature(model.preprocess_path).parameters:
            raise CliError("--pixel-size is not supported by this version's model pre-processing")
        model = _WithPixelSize(model, px)
    from ..io._walk import EMPTY_FOLDER, walk_inputs

    entries = walk_inputs(args.inputs, exclude=out.resolve())
    files = [f for f, why in entries if why is None]
    bad = [(str(f), why) for f, why in entries if why is not None]
    if not files and all(why == EMPTY_FOLDER for _, why in bad):
        bad = []
    good: list[Path] = []
    for f in files:  # read each file once first: a bad file is named and never stops the others
        try:
            model.preprocess_path(f)
        except (ValueError, OSError, RuntimeError, OverflowError, MemoryError) as exc:
            bad.append((str(f), str(getattr(exc, "problem", None) or exc)))
        else:
            good.append(f)
    if bad:
        list_bad(bad)
    if not good:
        if not bad:
            raise CliError(f"no images found in {', '.join(args.inputs)} (supported: {_extensions()})")
        raise CliError(f"none of the {len(bad)} input(s) could be explained (listed above); nothing written")
    inputs = once(lambda: model_inputs(args.model) + image_inputs(files))
    for name in _overlay_names(good, method):
        check_out(out / name, "overlay", inputs=inputs)
    paths = cam_files(model, good, out, method=method, target=target)
    say(f"wrote {len(paths)} overlays to {out}")
    n_failed = len(bad) + max(len(good) - len(paths), 0)
    if n_failed:
        say(f"{n_failed} input(s) failed (listed above)", err=True)
        return 1
    return 0


# --------------------------------------------------------------------------- parser

_FORCE_HELP = ("replace an existing --out file that is not a {what} written by semcathode "
               "(never an input of the command, a link or a special file)")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose error line shows arguments as :func:`safe` does (one line, no escapes)."""

    def error(self, message: str) -> Any:  # noqa: D102 - argparse's
        self.print_usage(sys.stderr)
        self.exit(2, f"{safe(self.prog)}: error: {safe(message)}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``semcathode`` command.

    Returns
    -------
    argparse.ArgumentParser
        Sub-commands ``data index``, ``data fetch``, ``run``, ``predict`` and ``cam``; each parsed
        namespace's ``func`` runs its command.

    Examples
    --------
    >>> args = build_parser().parse_args(["run", "--profile", "smoke", "--set", "stage1.epochs=2"])
    >>> args.command, args.profile, args.set
    ('run', 'smoke', ['stage1.epochs=2'])
    """
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    p = _Parser(prog="semcathode", description=__doc__.split("\n\n")[0],
                                epilog="exit codes: 0 ok, 1 some files failed (or a notebook failed), "
                                       "2 bad input (nothing done), 130 interrupted")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="index or fetch micrograph data", parents=[common])
    dsub = data.add_subparsers(dest="data_command", required=True)
    ix = dsub.add_parser("index", help="scan a folder tree into a validated manifest CSV", parents=[common])
    ix.add_argument("dir")
    ix.add_argument("--out", required=True, help="manifest CSV to write")
    ix.add_argument("--labels-csv", default=None, help="labels from a CSV (path,label[,domain,session,sample_id])")
    ix.add_argument("--skip-bad", action="store_true",
                    help="index the good files; list the bad ones (beside the manifest); exit code 1 if any")
    ix.add_argument("--min-size", type=int, default=64)
    ix.add_argument("--compositions", nargs="+", default=["NCM333", "NCM622", "NCM811"])
    ix.add_argument("--extra", nargs="*", default=["NCM523"], help="further compositions accepted as labels")
    ix.add_argument("--force", action="store_true", help=_FORCE_HELP.format(what="manifest"))
    ix.set_defaults(func=_cmd_index)
    fx = dsub.add_parser("fetch", help="download a public dataset (hash-checked, resumable)", parents=[common])
    fx.add_argument("name", choices=["kaist-ncm"])
    fx.add_argument("dest")
    fx.add_argument("--mirror", default=None, help="copy from a local mirror (or $SEMCATHODE_DATA_MIRROR)")
    fx.set_defaults(func=_cmd_fetch)

    run = sub.add_parser("run", help="run the notebooks 01-05 into a report", parents=[common])
    run.add_argument("--profile", default=None, choices=["smoke", "demo", "paper"],
                     help="configuration profile (default: the one the --config file names, else demo)")
    run.add_argument("--config", default=None, help="YAML file overriding the profile")
    run.add_argument("--data", default=None, help="folder of micrographs (default: the profile's dataset)")
    run.add_argument("--out", default=None, help="report folder (default reports/<profile>)")
    run.add_argument("--set", action="append", help="override, e.g. --set stage1.epochs=2")
    run.add_argument("--processes", type=int, default=None, metavar="N",
                     help="train in N processes (DDP through torchrun: gloo on CPU, one GPU per rank with nccl); "
                          "the same as --set distributed.processes=N")
    run.add_argument("--notebooks", nargs="+", default=None, help="subset of notebooks")
    run.add_argument("-q", "--quiet", action="store_true", help="do not stream the notebooks' progress output")
    run.add_argument("--force", action="store_true", help="rerun every notebook (default: resume, skipping "
                     "notebooks whose configuration is unchanged and whose products exist)")
    run.set_defaults(func=_cmd_run)

    pr = sub.add_parser("predict", help="classify micrographs with an exported model", parents=[common])
    pr.add_argument("model", help="exported model (.safetensors with its .json)")
    pr.add_argument("inputs", nargs="+", help="images or folders")
    pr.add_argument("--out", required=True, help="CSV to write")
    pr.add_argument("--pixel-size", type=float, default=None, metavar="UM",
                    help="µm per pixel for files whose metadata gives none (or an implausible one)")
    pr.add_argument("--force", action="store_true", help=_FORCE_HELP.format(what="predictions CSV"))
    from ._archive import add_archive_arguments

    add_archive_arguments(pr)
    pr.set_defaults(func=_cmd_predict)

    cm = sub.add_parser("cam", help="Grad-CAM overlays with an exported model", parents=[common])
    cm.add_argument("model")
    cm.add_argument("inputs", nargs="+")
    cm.add_argument("--out", required=True, help="folder for the overlays")
    cm.add_argument("--method", default="gradcam")
    cm.add_argument("--target", default=None, help="class to explain (default: the predicted class)")
    cm.add_argument("--pixel-size", type=float, default=None, metavar="UM",
                    help="µm per pixel for files whose metadata gives none (or an implausible one)")
    cm.set_defaults(func=_cmd_cam)
    from ._measure import add_measure_parser

    add_measure_parser(sub, common)
    return p


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``semcathode`` console script.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0 ok, 1 some files (or a notebook) failed, 2 bad input, 130 interrupted
        (see the module notes).
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        try:
            return int(args.func(args) or 0)
        except KeyboardInterrupt:
            if debug:
                raise
            say("interrupted", err=True)
            return 130
        except SystemExit:  # e.g. the pipeline has said why and chosen the code (130 on Ctrl-C)
            raise
        except Exception as exc:  # noqa: BLE001 - every failure ends in one line unless --debug
            if debug:
                raise
            if isinstance(exc, user_error_types()):
                error(describe(exc))
                return 2
            error(f"unexpected {type(exc).__name__}: {describe(exc)} (run with --debug for the traceback)")
            return 1


if __name__ == "__main__":
    sys.exit(main())
