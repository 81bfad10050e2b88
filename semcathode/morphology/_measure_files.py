"""Measure micrograph files: read, cut the data bar, segment, measure; one row per micrograph.

A file that cannot be read, or carries no pixel size when none is given, gets a row with its
``error`` and no measures; the other files are not affected (the rules of ``predict``).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..config._sections import MorphologyConfig
from ._measure import MEASURE_COLUMNS, micrograph_measures, particle_table
from ._segment import Segmentation, segment_particles

__all__ = ["MEASURES_FILE_COLUMNS", "measure_file", "measure_paths", "overlay_name", "read_bar_free"]

#: Columns of the measures table of :func:`measure_paths` (besides the measures).
MEASURES_FILE_COLUMNS: tuple[str, ...] = ("path", "pixel_size_um", "pixel_size_source", "work_pixel_size_um",
                                          "threshold_method", "threshold", "unevenness", "height_px", "width_px")


def read_bar_free(path: str | Path, pixel_size_um: float | None = None) -> tuple[np.ndarray, float, str]:
    """A micrograph without its data bar, and its pixel size.

    Parameters
    ----------
    path : str or Path
    pixel_size_um : float, optional
        µm/px for a file that carries none (the file's own value wins).

    Returns
    -------
    grey : numpy.ndarray
        float32 ``(H, W)`` in [0, 1].
    pixel_size_um : float
    source : str
        ``'file'`` (metadata or sidecar) or ``'given'``.

    Raises
    ------
    SEMReadError
        The file cannot be read as a micrograph.
    ValueError
        Neither the file nor ``pixel_size_um`` gives a pixel size.
    """
    from ..io._databar import crop_data_bar
    from ..io._read import read_sem

    sem = read_sem(path)
    grey, _ = crop_data_bar(sem.image, sem.meta)
    px = sem.meta.pixel_size_um
    if px is not None:
        return np.ascontiguousarray(grey, np.float32), float(px), "file"
    if pixel_size_um is None:
        raise ValueError(f"{path}: no pixel size in the file's metadata or sidecar; give one with --pixel-size "
                         "(µm per pixel): every measure is in µm")
    return np.ascontiguousarray(grey, np.float32), float(pixel_size_um), "given"


def measure_file(path: str | Path, settings: MorphologyConfig | None = None,
                 pixel_size_um: float | None = None) -> tuple[dict[str, Any], pd.DataFrame, Segmentation, np.ndarray]:
    """Segment and measure one micrograph file.

    Parameters
    ----------
    path : str or Path
    settings : MorphologyConfig, optional
    pixel_size_um : float, optional
        For a file without one.

    Returns
    -------
    row : dict
        :data:`MEASURES_FILE_COLUMNS` and :data:`~semcathode.morphology._measure.MEASURE_COLUMNS`.
    particles : DataFrame
        :func:`~semcathode.morphology._measure.particle_table` with the file's ``path``.
    seg : Segmentation
    grey : numpy.ndarray
        The bar-free micrograph at its own resolution.
    """
    grey, px, source = read_bar_free(path, pixel_size_um)
    seg = segment_particles(grey, px, settings)
    parts = particle_table(seg)
    row: dict[str, Any] = {"path": str(path), "pixel_size_source": source, "height_px": grey.shape[0],
                           "width_px": grey.shape[1], **seg.stated(), **micrograph_measures(seg, parts)}
    return row, parts.assign(path=str(path)), seg, grey


def overlay_name(path: Path, taken: set[str]) -> str:
    """The outline overlay's file name for ``path``, unique among ``taken`` (which it joins).

    Two micrographs of the same stem in different folders get ``<stem>_outlines.png`` and
    ``<stem>-2_outlines.png``.

    Parameters
    ----------
    path : Path
    taken : set of str
        Names given so far (updated).

    Returns
    -------
    str

    Examples
    --------
    >>> taken = set()
    >>> overlay_name(Path("a/m.tif"), taken), overlay_name(Path("b/m.tif"), taken)
    ('m_outlines.png', 'm-2_outlines.png')
    """
    name, k = f"{path.stem}_outlines.png", 1
    while name in taken:
        k += 1
        name = f"{path.stem}-{k}_outlines.png"
    taken.add(name)
    return name


def _one(job: tuple[str, dict, float | None, str | None]) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """One file of a batch (a top-level function, so that a process pool can run it)."""
    from ..io._read import SEMReadError

    path, settings, px, overlay = job
    try:
        row, parts, seg, grey = measure_file(path, MorphologyConfig(**settings), px)
    except (SEMReadError, ValueError, OSError) as exc:
        msg = str(exc)
        return {"path": path, "error": msg if path in msg else f"{path}: {msg}"}, None
    if overlay:
        from ._overlay import save_outlines

        save_outlines(overlay, grey, seg)
        row["overlay"] = overlay
    row["error"] = ""
    return row, parts


def measure_paths(paths: Sequence[str | Path], settings: MorphologyConfig | None = None,
                  pixel_size_um: float | None = None, overlay_dir: str | Path | None = None,
                  workers: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measure micrograph files: one row per file, and one per particle.

    Parameters
    ----------
    paths : sequence of str or Path
        Files (expand folders with :func:`semcathode.io.find_images`).
    settings : MorphologyConfig, optional
        Lengths in µm; each row states the values used (``setting_*``).
    pixel_size_um : float, optional
        µm/px for files that carry none; without it such a file is an error naming it.
    overlay_dir : str or Path, optional
        Write ``<stem>_outlines.png`` here for every measured file (red: particles in the size
        statistics; yellow: cut by the border).
    workers : int
        Processes (1: this one). The rows keep the order of ``paths`` either way.

    Returns
    -------
    measures : DataFrame
        :data:`MEASURES_FILE_COLUMNS`, :data:`~semcathode.morphology._measure.MEASURE_COLUMNS`, the
        ``setting_*`` columns, ``overlay`` (when written) and ``error`` (empty when measured).
    particles : DataFrame
        ``path`` and :data:`~semcathode.morphology._measure.PARTICLE_COLUMNS`, every measured file.

    Examples
    --------
    >>> import tempfile
    >>> import semcathode as sc
    >>> tmp = tempfile.mkdtemp()
    >>> cfg, study = sc.data.example_study(tmp)
    >>> measures, particles = measure_paths(study.manifest["path"][:2].tolist() + [f"{tmp}/missing.png"])
    >>> len(measures), bool((measures["d50_um"][:2] > 0).all()), measures["error"].iloc[-1] != ""
    (3, True, True)
    """
    s = asdict(settings or MorphologyConfig())
    taken: set[str] = set()
    jobs = [(str(p), s, pixel_size_um,
             str(Path(overlay_dir) / overlay_name(Path(p), taken)) if overlay_dir is not None else None)
            for p in paths]
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
            done = list(pool.map(_one, jobs, chunksize=max(1, len(jobs) // (8 * workers))))
    else:
        done = [_one(j) for j in jobs]
    rows = [r for r, _ in done]
    parts = [p for _, p in done if p is not None and len(p)]
    cols = list(MEASURES_FILE_COLUMNS) + list(MEASURE_COLUMNS)
    measures = pd.DataFrame(rows)
    extra = [c for c in measures.columns if c not in cols and c != "error"]
    measures = measures.reindex(columns=cols + extra + ["error"])
    measures["error"] = measures["error"].fillna("")
    for c in ("height_px", "width_px", "n_particles", "n_sized"):  # whole numbers, empty for a failed file
        measures[c] = measures[c].astype("Int64")
    from ._measure import PARTICLE_COLUMNS

    particles = (pd.concat(parts, ignore_index=True) if parts
                 else pd.DataFrame(columns=["path", *PARTICLE_COLUMNS]))
    return measures, particles[["path", *PARTICLE_COLUMNS]]
