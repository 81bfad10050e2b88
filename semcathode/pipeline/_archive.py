"""``semcathode predict --stream`` / ``--resume``: a whole archive, streamed, in chunks, resumable.

The files are walked as a stream (never listed whole), decoded in ``--workers`` processes, their
tiles batched across micrographs, and the rows appended to ``--out`` chunk by chunk (a killed run
leaves whole rows). ``--resume`` keeps what ``--out`` holds and skips the files whose path, size and
modification time (``--verify``: SHA-256) are already there. ``--out`` passes the output checks of
every command; with ``--resume`` it must be a predictions CSV (``--force`` does not apply).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._console import CliError, say
from ._outputs import check_out, is_predictions, model_inputs, pixel_size_arg

__all__ = ["add_archive_arguments", "cmd_archive"]


def _named_inputs(inputs: list[str]) -> list[tuple[Path, str]]:
    """The inputs ``--out`` must not be: named files, their sidecars and the model (folders are walked,
    and the walk only reads images, so a CSV inside one is never an input)."""
    from ..io._walk import sidecar_paths

    out: list[tuple[Path, str]] = []
    for s in inputs:
        p = Path(s)
        if p.is_file():
            out.append((p, "an input image"))
            out += [(c, "an input image's sidecar") for c in sidecar_paths(p)]
    return out


def cmd_archive(args: argparse.Namespace, load_model: Any) -> int:
    """Run ``predict`` in archive mode (``--stream``, ``--resume``)."""
    from ..models._archive import predict_archive

    out = Path(args.out)
    px = pixel_size_arg(args.pixel_size)
    if args.workers is not None and args.workers < 0:
        raise CliError(f"--workers {args.workers}: give 0 or more")
    inputs = lambda: model_inputs(args.model) + _named_inputs(args.inputs)  # noqa: E731
    check_out(out, inputs=inputs)
    if args.resume:
        if out.exists():
            check_out(out, inputs=inputs, own=is_predictions, own_what="a predictions CSV")
    else:
        check_out(out, inputs=inputs, own=is_predictions, own_what="a predictions CSV", force=args.force)
    missing = [s for s in args.inputs if not Path(s).exists()]
    if len(missing) == len(args.inputs):
        raise CliError(f"no such file or folder: {', '.join(missing)}")
    if args.processes < 1:
        raise CliError(f"--processes {args.processes}: give at least 1")
    model = load_model(args.model).optimize(compile=args.compile)
    try:
        if args.processes > 1:
            from ..models._archive import predict_archive_ranks

            counts = predict_archive_ranks(args.model, args.inputs, out, processes=args.processes, pixel_size_um=px,
                                           resume=args.resume, verify=args.verify, workers=args.workers,
                                           compile=args.compile)
        else:
            counts = predict_archive(model, args.inputs, out, pixel_size_um=px, resume=args.resume,
                                     verify=args.verify, workers=args.workers, log=None if args.quiet else say)
    except (ValueError, RuntimeError) as exc:
        raise CliError(str(exc)) from None
    say(f"wrote {counts['predicted']} predictions to {out}" + (f" ({counts['skipped']} already there, skipped)"
                                                              if args.resume else ""))
    if counts["failed"]:
        say(f"{counts['failed']} file(s) failed (their rows in {out} give the error)", err=True)
        return 1 if counts["predicted"] or counts["skipped"] else 2
    return 0


def add_archive_arguments(pr: argparse.ArgumentParser) -> None:
    """The archive-mode options of ``predict``."""
    pr.add_argument("--stream", action="store_true",
                    help="archive mode: stream the folders, decode in --workers processes, append rows in chunks")
    pr.add_argument("--resume", action="store_true",
                    help="archive mode, keeping --out: skip the files already in it (same path, size and mtime)")
    pr.add_argument("--verify", action="store_true", help="with --resume: recognise done files by SHA-256")
    pr.add_argument("--workers", type=int, default=None,
                    help="archive mode: decoding processes (default: none on a CPU of 2 cores or fewer, "
                         "a quarter of the cores on more, up to 8 on a GPU)")
    pr.add_argument("--processes", type=int, default=1,
                    help="archive mode: ranks, each its own process with a shard of the files, merged at the end")
    pr.add_argument("--compile", action="store_true",
                    help="archive mode: compile the network first (torch.compile; pays on a GPU over many batches)")
    pr.add_argument("-q", "--quiet", action="store_true", help="archive mode: no progress lines")
