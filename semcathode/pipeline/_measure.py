"""``semcathode measure``: particle morphology of micrographs in µm, one row per micrograph.

Bad input follows ``predict``: a file without a pixel size is an error naming it unless
``--pixel-size`` is given; each bad file gets one ``bad:`` line and a row whose ``error`` says why,
the good ones are still measured (exit 1); nothing found, or nothing measurable, is exit 2 with
nothing written. ``--out`` and ``--particles`` pass the output checks of every command (never an
input, a link or a special file; an existing file that ``measure`` did not write only with
``--force``); every file is written atomically.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ._console import CliError, list_bad, say
from ._outputs import check_out, csv_header, image_inputs, once, out_dir, pixel_size_arg, supported_extensions

__all__ = ["add_measure_parser"]


def _is_measures(path: Path) -> bool:
    from ..morphology._measure_files import MEASURES_FILE_COLUMNS

    cols = csv_header(path)
    return bool(cols) and cols[:len(MEASURES_FILE_COLUMNS)] == list(MEASURES_FILE_COLUMNS) and cols[-1] == "error"


def _is_particles(path: Path) -> bool:
    from ..morphology._measure import PARTICLE_COLUMNS

    return csv_header(path) == ["path", *PARTICLE_COLUMNS]


def _settings(pairs: list[str] | None) -> Any:
    """The morphology settings, ``--set KEY=VALUE`` (``fines_um=2`` or ``morphology.fines_um=2``) checked."""
    from ..config._run import load_config

    overrides = [p if p.startswith("morphology.") else f"morphology.{p}" for p in (pairs or [])]
    return load_config("demo", None, overrides).morphology


def _cmd_measure(args: argparse.Namespace) -> int:
    from .._files import atomic_write_csv
    from ..io._walk import EMPTY_FOLDER, walk_inputs
    from ..morphology._measure_files import measure_paths
    px = pixel_size_arg(args.pixel_size)
    settings = _settings(args.set)
    if args.workers < 1:
        raise CliError(f"--workers {args.workers}: give at least 1")
    out, parts_out = Path(args.out), Path(args.particles) if args.particles else None
    if parts_out is not None and parts_out.resolve() == out.resolve():
        raise CliError(f"--particles {parts_out} is the same file as --out")
    overlay = out_dir(args.overlay, "--overlay") if args.overlay else None
    entries = walk_inputs(args.inputs, exclude=overlay.resolve() if overlay is not None else None)
    files = [f for f, why in entries if why is None]
    inputs = once(lambda: image_inputs(files))
    check_out(out, inputs=inputs)
    if parts_out is not None:
        check_out(parts_out, "--particles", inputs=inputs)
    bad = [(f, why) for f, why in entries if why is not None]
    if not files and all(why == EMPTY_FOLDER for _, why in bad):
        raise CliError(f"no images found in {', '.join(args.inputs)} (supported: {supported_extensions()})")
    if overlay is not None:
        from ..morphology._measure_files import overlay_name

        taken: set[str] = set()
        for f in files:
            check_out(overlay / overlay_name(f, taken), "overlay", inputs=inputs)
    measures, particles = measure_paths(files, settings, px, overlay_dir=overlay, workers=args.workers)
    if bad:
        import pandas as pd

        rows = {r["path"]: r for r in measures.to_dict("records")}
        rows.update({str(f): {"path": str(f), "error": f"{f}: {why}"} for f, why in bad})
        measures = pd.DataFrame([rows[str(f)] for f, _ in entries], columns=measures.columns)
        measures["error"] = measures["error"].fillna("")
    failed = measures["error"].astype(str) != ""
    n_bad = int(failed.sum())
    if n_bad:
        list_bad(list(zip(measures.loc[failed, "path"].astype(str), measures.loc[failed, "error"].astype(str))))
    if n_bad == len(measures):
        raise CliError(f"none of the {len(measures)} image(s) could be measured (listed above); {out} not written")
    check_out(out, inputs=inputs, own=_is_measures, own_what="a measures CSV", force=args.force)
    if parts_out is not None:
        check_out(parts_out, "--particles", inputs=inputs, own=_is_particles, own_what="a particles CSV",
                  force=args.force)
        atomic_write_csv(parts_out, particles, index=False)
    atomic_write_csv(out, measures, index=False)
    say(f"measured {len(measures) - n_bad} micrograph(s) ({len(particles)} particles) into {out}"
        + (f", particles in {parts_out}" if parts_out is not None else "")
        + (f", outlines in {overlay}" if overlay is not None else ""))
    if n_bad:
        say(f"{n_bad} of {len(measures)} image(s) failed (listed above; their rows in {out} give the error)", err=True)
        return 1
    return 0


def add_measure_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``measure`` to the subcommands ``sub``."""
    ms = sub.add_parser("measure", parents=[common],
                        help="particle size and shape in µm (D10/D50/D90, circularity, fines...) per micrograph")
    ms.add_argument("inputs", nargs="+", help="images or folders")
    ms.add_argument("--out", required=True, help="CSV to write: one row per micrograph")
    ms.add_argument("--particles", default=None, metavar="CSV", help="also write one row per particle")
    ms.add_argument("--overlay", default=None, metavar="DIR",
                    help="write <stem>_outlines.png for every micrograph (red: sized; yellow: cut by the border)")
    ms.add_argument("--pixel-size", type=float, default=None, metavar="UM",
                    help="µm per pixel for files whose metadata gives none (or an implausible one)")
    ms.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="a morphology setting, in µm, e.g. --set fines_um=2 (see MorphologyConfig)")
    ms.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: every core)")
    ms.add_argument("--force", action="store_true",
                    help="replace an existing --out / --particles file that measure did not write "
                         "(never an input of the command, a link or a special file)")
    ms.set_defaults(func=_cmd_measure)
