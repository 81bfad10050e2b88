"""The ``semcathode`` command: ``data index``, ``data fetch``, ``run``, ``predict``, ``cam``.

Errors and exit codes (every command):

* ``0``: everything worked.
* ``1``: a batch command (``data index --skip-bad``, ``predict``, ``cam``) did its work for the
  good files but some files failed; each bad file is listed on its own line
  (``bad: <file>: <reason>``) and the output (manifest, CSV, overlays) holds the good ones
  (``predict``: failed files keep a row whose ``error`` column says why). ``run``: a notebook
  failed.
* ``2``: bad input: the command did nothing (nothing written, nothing replaced) and ends with a
  one-line ``error: ...`` naming the file or key and the problem. Also when every file of a
  batch failed, or when ``data index`` finds bad files without ``--skip-bad``.
* ``130``: interrupted (Ctrl-C); one line, no traceback.

A traceback is shown only with ``--debug``; an unexpected failure otherwise ends with one line
(exit 1). Warnings (e.g. an implausible pixel size in a file's metadata) are printed as one
``warning: ...`` line each. File names that are not valid UTF-8 are printed with their odd bytes
as ``\\xNN``.

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
from typing import Any, Callable, Sequence

from ._console import error, list_bad, say, show_warning

__all__ = ["main", "build_parser", "CliError"]


class CliError(Exception):
    """Bad command-line input; the message is the one line shown to the user (exit code 2)."""


# --------------------------------------------------------------------------- checks


def _out_file(path: str, what: str = "--out") -> Path:
    """A file path to write: not an existing folder, its parent not a file."""
    p = Path(path)
    if p.is_dir():
        raise CliError(f"{what} {p} is a directory; give a file name (e.g. {p / 'predictions.csv'})")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CliError(f"{what} {p}: {parent} is a file, not a folder")
            break
    return p


def _out_dir(path: str, what: str = "--out") -> Path:
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CliError(f"{what} {p} is a file; give a folder for the output")
    return p


def _pixel_size(value: float | None) -> float | None:
    if value is None:
        return None
    from ..io.metadata import PIXEL_SIZE_RANGE_UM

    lo, hi = PIXEL_SIZE_RANGE_UM
    if not lo <= value <= hi:  # also refuses nan and inf
        raise CliError(f"--pixel-size {value:g} µm/px is outside the plausible SEM range {lo:g}..{hi:g} µm/px")
    return value


def _load_model(path: str) -> Any:
    from ..models.export import load_model

    return load_model(path)


# --------------------------------------------------------------------------- commands


def _cmd_index(args: argparse.Namespace) -> int:
    from ..data.duplicates import find_duplicates
    from ..data.manifest import ManifestError, index_folder, skipped_path, write_manifest
    from ..data.schema import Schema

    out = _out_file(args.out)
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
    try:
        df = index_folder(root, schema=schema, labels_csv=args.labels_csv, skip_bad=args.skip_bad,
                          min_size=args.min_size)
    except ManifestError as exc:
        if len(exc.problems) == 1:
            path, reason = exc.problems[0]
            raise CliError(f"{path}: {reason}") from None
        list_bad(exc.problems)
        raise CliError(f"{len(exc.problems)} problem(s) found while indexing {root} (listed above); nothing written. "
                       "Fix them, or use --skip-bad to index the good files") from None
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


def _cmd_fetch(args: argparse.Namespace) -> int:
    from ..data.download import attribution, fetch

    def progress(i: int, n: int, f: str) -> None:
        if i == n or i % 100 == 0:
            say(f"  {i}/{n} {f}")

    fetch(args.name, args.dest, mirror=args.mirror, progress=progress)
    say(attribution(args.name))
    say(f"dataset {args.name} verified in {args.dest}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from ..config.run import load_config

    overrides = list(args.set or [])
    if args.data:
        if not Path(args.data).is_dir():
            raise CliError(f"--data {args.data}: folder does not exist")
        overrides.append(f"data.data_dir={args.data}")
    cfg = load_config(args.profile, args.config, overrides, default_profile="demo")  # every key checked here
    out = _out_dir(args.out or str(Path("reports") / cfg.profile))
    from .run import PipelineError, run_pipeline

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
    out = _out_file(args.out)
    px = _pixel_size(args.pixel_size)
    from ..models.export import predict_paths

    model = _load_model(args.model).optimize()
    kwargs = {"pixel_size_um": px} if px is not None else {}
    df = predict_paths(model, args.inputs, **kwargs)
    if df.empty:
        raise CliError(f"no images found in {', '.join(args.inputs)} (supported: {_extensions()})")
    err = df["error"].fillna("").astype(str) if "error" in df.columns else None
    failed = err != "" if err is not None else None
    n_bad = int(failed.sum()) if failed is not None else 0
    if n_bad:
        list_bad(list(zip(df.loc[failed, "path"].astype(str), err[failed])))
    if n_bad == len(df):
        raise CliError(f"none of the {len(df)} image(s) could be predicted (listed above); {out} not written")
    from .._files import atomic_write_csv

    atomic_write_csv(out, df)
    say(f"wrote {len(df) - n_bad} predictions to {out}")
    if n_bad:
        say(f"{n_bad} of {len(df)} image(s) failed (listed above; their rows in {out} give the error)", err=True)
        return 1
    return 0


def _extensions() -> str:
    from ..io.read import SUPPORTED_EXTENSIONS

    return ", ".join(SUPPORTED_EXTENSIONS)


def _expand_inputs(inputs: Sequence[str], exclude: Path | None = None) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files named or found in folders (:func:`semcathode.io.find_images`); missing inputs are bad."""
    from ..io.walk import find_images

    found = find_images(inputs, exclude=exclude, missing="keep")
    return [f for f in found if f.exists()], [(str(f), "no such file or folder") for f in found if not f.exists()]


class _WithPixelSize:
    """A loaded model whose readers (``load_array``, ``preprocess_path``) use a given pixel size for
    files without one."""

    def __init__(self, model: Any, pixel_size_um: float) -> None:
        self._model = model
        self._px = pixel_size_um

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def load_array(self, path: str | Path) -> Any:
        return self._model.load_array(path, pixel_size_um=self._px)

    def preprocess_path(self, path: str | Path) -> Any:
        return self._model.preprocess_path(path, pixel_size_um=self._px)


def _cam_method(method: str) -> str:
    from ..explain import compute as cam

    check: Callable[[str], str] | None = getattr(cam, "_method_key", None)
    try:
        return check(method) if check else (method if method in cam.CAM_METHODS else cam.CAM_METHODS[method])
    except (ValueError, KeyError):
        raise CliError(f"unknown CAM method {method!r}; known: {', '.join(cam.CAM_METHODS)}") from None


def _cam_target(target: str | None, classes: Sequence[str]) -> str | None:
    if target is None:
        return None
    names = [str(c) for c in classes]
    if target in names or (target.isdigit() and int(target) < len(names)):
        return target
    raise CliError(f"unknown target class {target!r}; the model's classes: {', '.join(names)} (or an index 0..{len(names) - 1})")


def _cmd_cam(args: argparse.Namespace) -> int:
    import inspect

    out = _out_dir(args.out)
    px = _pixel_size(args.pixel_size)
    method = _cam_method(args.method)
    from ..explain.gallery import cam_files

    model: Any = _load_model(args.model)
    target = _cam_target(args.target, model.classes)
    if px is not None:
        if "pixel_size_um" not in inspect.signature(model.preprocess_path).parameters:
            raise CliError("--pixel-size is not supported by this version's model pre-processing")
        model = _WithPixelSize(model, px)
    files, bad = _expand_inputs(args.inputs, exclude=out.resolve())
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
    paths = cam_files(model, good, out, method=method, target=target)
    say(f"wrote {len(paths)} overlays to {out}")
    n_failed = len(bad) + max(len(good) - len(paths), 0)
    if n_failed:
        say(f"{n_failed} input(s) failed (listed above)", err=True)
        return 1
    return 0


# --------------------------------------------------------------------------- parser


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
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    p = argparse.ArgumentParser(prog="semcathode", description=__doc__.split("\n\n")[0],
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
    return p


# --------------------------------------------------------------------------- main


def _user_error_types() -> tuple[type, ...]:
    """Exception types that mean bad input (exit 2), from the modules already imported."""
    types: list[type] = [CliError, OSError, UnicodeError]
    for module, name in (("semcathode.config.sections", "ConfigError"), ("semcathode.data.manifest", "ManifestError"),
                         ("semcathode.data.download", "DatasetError"), ("semcathode.io.read", "SEMReadError"),
                         ("semcathode.models._modelcheck", "ModelFileError")):
        mod = sys.modules.get(module)
        if mod is not None and hasattr(mod, name):
            types.append(getattr(mod, name))
    return tuple(types)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


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
            if isinstance(exc, _user_error_types()):
                error(_describe(exc))
                return 2
            error(f"unexpected {type(exc).__name__}: {_describe(exc)} (run with --debug for the traceback)")
            return 1


if __name__ == "__main__":
    sys.exit(main())
