"""Measure every micrograph of a manifest, through a cache keyed by the file, its shift and the settings.

Each row is read as the rest of the study reads it (:func:`semcathode.data._preprocess.load_bar_free`: the
manifest's data-bar row, and the simulated acquisition shift of a target row) at the manifest's
pixel size, then segmented and measured (:func:`~semcathode.morphology.segment_particles`,
:func:`~semcathode.morphology.micrograph_measures`). Measured rows are kept in one CSV per
settings under the cache folder, so a rerun measures only what it has not seen.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..config._sections import MorphologyConfig
from ._measure import MEASURE_COLUMNS, micrograph_measures, particle_table
from ._segment import segment_particles

__all__ = ["MANIFEST_KEYS", "measure_manifest", "settings_digest"]

#: Manifest columns carried into the measures table.
MANIFEST_KEYS: tuple[str, ...] = ("path", "label", "composition", "state", "domain", "session", "frame", "split",
                                  "pixel_size_um")

#: Bumped when a change of the code changes the measures of the same file and settings.
_VERSION = 1


def settings_digest(settings: MorphologyConfig) -> str:
    """12 hex digits naming the settings (and the measures' version) of a measures cache.

    Examples
    --------
    >>> settings_digest(MorphologyConfig()) == settings_digest(MorphologyConfig(fines_um=2.0))
    False
    """
    blob = json.dumps({"v": _VERSION, **asdict(settings)}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _key(row: dict[str, Any]) -> str:
    shift = row.get("shift")
    shift = shift if isinstance(shift, str) else ""
    return f"{row.get('sha256') or row['path']}|{shift}|{row.get('bar_row')}|{row.get('pixel_size_um')}"


def _pixel(row: dict[str, Any], fallback: float | None) -> float | None:
    px = row.get("pixel_size_um")
    try:
        px = float(px)
    except (TypeError, ValueError):
        px = float("nan")
    return px if np.isfinite(px) and px > 0 else fallback


def _measure_row(job: tuple[dict[str, Any], dict, float | None]) -> dict[str, Any]:
    """The measures of one manifest row (a top-level function, so that a process pool can run it)."""
    from ..data._preprocess import load_bar_free

    row, settings, fallback = job
    px = _pixel(row, fallback)
    if px is None:
        return {"error": f"{row['path']}: no pixel size in the manifest (and none given): every measure is in µm"}
    try:
        grey = load_bar_free(row)
    except (OSError, ValueError) as exc:
        return {"error": str(exc)}
    seg = segment_particles(grey, float(px), MorphologyConfig(**settings))
    out: dict[str, Any] = {"threshold_method": seg.threshold_method, "work_pixel_size_um": seg.pixel_size_um,
                           **micrograph_measures(seg, particle_table(seg)), "error": ""}
    return out


def measure_manifest(manifest: pd.DataFrame, settings: MorphologyConfig | None = None,
                     pixel_size_um: float | None = None, cache_dir: str | Path | None = None, workers: int | None = 1,
                     log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """The morphology of every micrograph of a manifest, one row each, in manifest order.

    Parameters
    ----------
    manifest : DataFrame
        Rows of :func:`semcathode.data.build_manifest` (``path``, ``label``, ``pixel_size_um``,
        ``bar_row``, ``sha256``, ``shift``...).
    settings : MorphologyConfig, optional
    pixel_size_um : float, optional
        µm/px of rows whose manifest gives none (e.g. ``cfg.preprocess.pixel_size_um``).
    cache_dir : str or Path, optional
        Folder of the measures caches (``measures-<settings digest>.csv``); None: no cache.
    workers : int, optional
        Processes for the micrographs not in the cache (None: one per core).
    log : callable, optional
        Receives one line: how many were measured and how many read from the cache.

    Returns
    -------
    DataFrame
        :data:`MANIFEST_KEYS` (those present), ``threshold_method``, ``work_pixel_size_um``,
        :data:`~semcathode.morphology._measure.MEASURE_COLUMNS` and ``error``.

    Examples
    --------
    >>> import tempfile
    >>> import semcathode as sc
    >>> cfg, study = sc.data.example_study(tempfile.mkdtemp())
    >>> m = measure_manifest(study.manifest.head(3))
    >>> len(m), bool((m["d50_um"] > 0).all()), list(m["error"])
    (3, True, ['', '', ''])
    """
    from .._files import atomic_write_csv

    s = settings or MorphologyConfig()
    rows = manifest.to_dict("records")
    keys = [_key({**r, "pixel_size_um": _pixel(r, pixel_size_um)}) for r in rows]
    cache_path = Path(cache_dir) / f"measures-{settings_digest(s)}.csv" if cache_dir is not None else None
    cached: dict[str, dict[str, Any]] = {}
    if cache_path is not None and cache_path.is_file():
        try:
            old = pd.read_csv(cache_path, keep_default_na=False, na_values=[""])
            cached = {k: r for k, r in zip(old.pop("key"), old.to_dict("records"))}
        except (ValueError, KeyError, pd.errors.ParserError):  # a damaged cache is measured again
            cached = {}
    todo = [i for i, k in enumerate(keys) if k not in cached]
    jobs = [(rows[i], asdict(s), pixel_size_um) for i in todo]
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
            done = list(pool.map(_measure_row, jobs, chunksize=max(1, len(jobs) // (8 * workers))))
    else:
        done = [_measure_row(j) for j in jobs]
    fresh = {keys[i]: d for i, d in zip(todo, done)}
    if cache_path is not None and any(d["error"] == "" for d in fresh.values()):
        keep = {**cached, **{k: d for k, d in fresh.items() if d["error"] == ""}}  # errors are not cached
        atomic_write_csv(cache_path, pd.DataFrame([{"key": k, **d} for k, d in keep.items()]), index=False)
    if log is not None:
        log(f"morphology: {len(todo)} micrograph(s) measured, {len(rows) - len(todo)} read from the cache")
    measured = pd.DataFrame([{**cached, **fresh}[k] for k in keys], index=manifest.index)
    base = manifest[[c for c in MANIFEST_KEYS if c in manifest.columns]]
    cols = ["threshold_method", "work_pixel_size_um", *MEASURE_COLUMNS, "error"]
    out = pd.concat([base, measured.reindex(columns=cols)], axis=1)
    out["error"] = out["error"].fillna("")
    return out.reset_index(drop=True)
