"""Compare two report folders: every CSV and JSON, numbers to a tolerance, text exactly.

Used to check that a change of the code leaves a run's results as they were: regenerate the
report (``make demo`` on a fresh clone, empty ``SEMCATHODE_CACHE``) and compare it with the
committed one::

    python benchmarks/compare_reports.py reports/demo /tmp/demo/x/reports/demo --tol 5e-4

Prints one line per file that differs (``DIFF``) or is missing from the new folder (``MISSING``),
then one JSON line: files equal, differing and missing, and the tolerance. Columns and keys that
record how long something took or which machine ran it (``--ignore``, default
:data:`TIMING_KEYS`) are left out. The exit status is 1 when a file differs or is missing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

#: Bookkeeping files that change on every run (times, states, absolute paths, provenance).
SKIP_FILES = frozenset({"run_state.json", "outputs.json", "weights_provenance.json"})
#: Columns and JSON keys that record time taken, not a result.
TIMING_KEYS = ("train_s", "wall_s", "seconds", "elapsed_s", "duration_s")


def _flat(x: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _flat(v, f"{prefix}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _flat(v, f"{prefix}[{i}]")
    else:
        yield prefix, x


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def compare_csv(a: Path, b: Path, tol: float, ignore: tuple[str, ...]) -> str | None:
    """None when the two tables agree; else what differs (the worst column)."""
    x, y = pd.read_csv(a), pd.read_csv(b)
    x, y = x.drop(columns=[c for c in ignore if c in x]), y.drop(columns=[c for c in ignore if c in y])
    if list(x.columns) != list(y.columns) or x.shape != y.shape:
        return f"shape or columns {x.shape} vs {y.shape}, columns only in one: {sorted(set(x.columns) ^ set(y.columns))}"
    worst, where = 0.0, ""
    for c in x.columns:
        if pd.api.types.is_numeric_dtype(x[c]) and pd.api.types.is_numeric_dtype(y[c]):
            both_nan = x[c].isna() & y[c].isna()
            d = (x[c].astype(float) - y[c].astype(float)).abs()[~both_nan].fillna(math.inf)
            if len(d) and float(d.max()) > worst:
                worst, where = float(d.max()), c
        else:
            both_missing = x[c].isna() & y[c].isna()
            n = int(((x[c].astype(str) != y[c].astype(str)) & ~both_missing).sum())
            if n:
                return f"{n} text cell(s) differ in {c}"
    return None if worst <= tol else f"max |diff| {worst:.3g} in {where}"


def compare_json(a: Path, b: Path, tol: float, ignore: tuple[str, ...]) -> str | None:
    """None when the two documents agree; else up to four differing keys."""
    try:
        x, y = dict(_flat(json.loads(a.read_text()))), dict(_flat(json.loads(b.read_text())))
    except (OSError, ValueError) as exc:
        return f"unreadable: {exc}"
    bad = []
    for k in sorted(x.keys() | y.keys()):
        if k.rsplit(".", 1)[-1] in ignore:
            continue
        u, v = x.get(k), y.get(k)
        if _is_number(u) and _is_number(v):
            if abs(u - v) > tol:
                bad.append(f"{k}: {u} vs {v}")
        elif u != v:
            bad.append(f"{k}: {str(u)[:60]} vs {str(v)[:60]}")
    if not bad:
        return None
    return "; ".join(bad[:4]) + (f" (+{len(bad) - 4} more)" if len(bad) > 4 else "")


def compare_reports(old: Path, new: Path, tol: float = 1e-6, ignore: tuple[str, ...] = TIMING_KEYS) -> dict:
    """Every CSV and JSON under ``old`` against the file of the same relative path under ``new``."""
    equal, differing, missing = [], {}, []
    for f in sorted(old.rglob("*")):
        if f.suffix not in (".csv", ".json") or f.name in SKIP_FILES or ".staging" in f.parts:
            continue
        rel = f.relative_to(old)
        g = new / rel
        if not g.is_file():
            missing.append(str(rel))
            continue
        why = (compare_csv if f.suffix == ".csv" else compare_json)(f, g, tol, ignore)
        if why is None:
            equal.append(str(rel))
        else:
            differing[str(rel)] = why
    return {"equal": equal, "differing": differing, "missing": missing, "tol": tol}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--tol", type=float, default=1e-6, help="largest allowed absolute difference of a number")
    p.add_argument("--ignore", nargs="*", default=list(TIMING_KEYS), help="columns and JSON keys left out")
    a = p.parse_args(argv)
    for folder in (a.old, a.new):
        if not folder.is_dir():
            p.error(f"{folder}: not a folder")
    r = compare_reports(a.old, a.new, a.tol, tuple(a.ignore))
    for rel, why in r["differing"].items():
        print(f"DIFF {rel}: {why}")
    for rel in r["missing"]:
        print(f"MISSING {rel}")
    print(json.dumps({"files_equal": len(r["equal"]), "files_differing": len(r["differing"]),
                      "missing": len(r["missing"]), "tol": a.tol}))
    return 1 if r["differing"] or r["missing"] else 0


if __name__ == "__main__":
    sys.exit(main())
