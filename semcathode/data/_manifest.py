"""Scan folders of micrographs into a validated manifest; write and read it back.

The manifest is a :class:`pandas.DataFrame` with one row per micrograph. Columns:
``path, relpath, label, composition, state, domain, session, frame, acq_date,
pixel_size_um, magnification, voltage_kv, brightness, contrast, meta_source, width, height,
bar_row, bar_method, mean_grey, std_grey, sha256, bytes, phash``.

The scan picks up exactly the extensions the reader reads
(:data:`semcathode.io._read.SUPPORTED_EXTENSIONS`) and follows symbolic links to folders (a link
back into a folder already scanned, or a broken link, is reported). The same image (same
sha256) filed under two different labels is a problem naming every copy and its label: its
copies are not indexed. Duplicate pairs are found by :mod:`semcathode.data._duplicates`.

Nothing is skipped in silence: a FIFO, device or socket named like an image is a problem ("not a
regular file"; it is never opened), and a warning names a special file with another name, a
sub-folder without images inside a class folder (ignored), and a sidecar ``<image>.txt`` that
cannot be read (e.g. a folder or a FIFO of that name).
"""

from __future__ import annotations

import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from .._files import atomic_write_csv, sha256_file
from ..config._sections import ConfigError
from ..io._databar import crop_data_bar
from ..io._read import SEMReadError, read_sem
from ..io._walk import sidecar_paths
from ._scan import Item, check_sidecar, items_from_folders, scan
from ._schema import Schema, default_schema

__all__ = [
    "MANIFEST_COLUMNS",
    "ManifestError",
    "index_folder",
    "input_files",
    "write_manifest",
    "read_manifest",
    "skipped_path",
]

MANIFEST_COLUMNS: tuple[str, ...] = (
    "path", "relpath", "label", "composition", "state", "domain", "session", "frame",
    "acq_date", "pixel_size_um", "magnification", "voltage_kv", "brightness", "contrast",
    "meta_source", "width", "height", "bar_row", "bar_method", "mean_grey", "std_grey",
    "sha256", "bytes", "phash",
)


class ManifestError(ValueError):
    """Input that cannot go into a manifest. ``problems`` lists ``(path, reason)``."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = "\n".join(f"  - {p}: {r}" for p, r in problems)
        super().__init__(
            f"{len(problems)} problem(s) found while indexing (use skip_bad=True / --skip-bad "
            f"to skip them with a warning):\n{lines}"
        )


_FRAME = re.compile(r"(\d+)\D*$")


def _frame_number(stem: str) -> int | None:
    m = _FRAME.search(stem)
    return int(m.group(1)) if m else None


def _phash(image: np.ndarray) -> str:
    import imagehash
    from PIL import Image

    im = Image.fromarray(np.clip(image * 255.0, 0, 255).astype(np.uint8))
    return str(imagehash.phash(im, hash_size=8))


def _read_table(path: Path, what: str) -> pd.DataFrame:
    """Read a CSV the user gave; every way it can be unusable is a :class:`ManifestError`."""
    if not path.exists():
        raise ManifestError([(str(path), f"{what} does not exist")])
    if not path.is_file():
        raise ManifestError([(str(path), f"{what} is not a regular file")])
    try:
        with open(path, "rb") as fh:
            head = fh.read(8192)
    except OSError as exc:
        raise ManifestError([(str(path), f"cannot read {what} ({exc.strerror or exc})")]) from None
    if not head.strip():
        raise ManifestError([(str(path), f"{what} is empty")])
    if b"\0" in head:
        raise ManifestError([(str(path), f"{what} is a binary file, not a CSV text file")])
    try:
        return pd.read_csv(path, encoding="utf-8", encoding_errors="surrogateescape")
    except pd.errors.EmptyDataError:
        raise ManifestError([(str(path), f"{what} is empty (no header row)")]) from None
    except (pd.errors.ParserError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ManifestError([(str(path), f"{what} is not a readable CSV ({first})")]) from None


def _items_from_csv(root: Path, labels_csv: Path, schema: Schema) -> tuple[list[Item], list[tuple[str, str]]]:
    table = _read_table(labels_csv, "labels CSV")
    if not {"path", "label"} <= set(table.columns):
        raise ManifestError([(str(labels_csv), "labels CSV needs the columns 'path' and 'label' "
                              f"(found: {', '.join(map(str, table.columns))})")])
    if table.empty:
        raise ManifestError([(str(labels_csv), "labels CSV has a header but no rows")])

    def text(v: object) -> str | None:
        return v if isinstance(v, str) and v.strip() else None

    items, problems = [], []
    for i, row in enumerate(table.itertuples(index=False), start=2):  # line 1 is the header
        if text(row.path) is None:
            problems.append((f"{labels_csv}:{i}", "empty path"))
            continue
        p = Path(str(row.path))
        p = p if p.is_absolute() else root / p
        parsed = schema.parse(str(row.label)) if text(row.label) else None
        if parsed is None:
            problems.append((str(p), f"unknown label {row.label!r} in {labels_csv} line {i} "
                             f"(classes: {', '.join(schema.classes)})"))
            continue
        comp, state = parsed
        px = _csv_pixel_size(getattr(row, "pixel_size_um", None))
        if px is False:
            problems.append((str(p), f"pixel_size_um {row.pixel_size_um!r} in {labels_csv} line {i} "
                             "is not a positive number of micrometres per pixel"))
            continue
        items.append(Item(
            p, schema.label(comp, state), comp, state,
            domain=text(getattr(row, "domain", None)), session=text(getattr(row, "session", None)),
            sample_id=text(getattr(row, "sample_id", None)), pixel_size_um=px,
        ))
    return items, problems


def _csv_pixel_size(value: object) -> float | None | bool:
    """A labels-CSV ``pixel_size_um`` cell: None when empty, the float when plausible, False when not."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        px = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    if np.isnan(px):
        return None
    return px if 1e-3 <= px <= 100.0 else False


def _describe(item: Item, root: Path, min_size: int, bar_method: str, bar_fraction: float) -> dict | tuple[str, str]:
    path = item.path
    try:
        if not path.exists():
            return (str(path), "file does not exist")
        return _describe_file(item, root, min_size, bar_method, bar_fraction)
    except SEMReadError as exc:
        return (str(path), getattr(exc, "problem", None) or str(exc))
    except ConfigError:  # a bad limit setting ($SEMCATHODE_MAX_...) is one error for the run, not one per file
        raise
    except (OSError, ValueError, RuntimeError, MemoryError) as exc:  # one bad file never stops the batch
        return (str(path), f"{type(exc).__name__}: {exc}")


def _describe_file(item: Item, root: Path, min_size: int, bar_method: str, bar_fraction: float) -> dict | tuple[str, str]:
    path = item.path
    sem = read_sem(path, min_size=min_size)
    img = sem.image
    cropped, crop = crop_data_bar(img, sem.meta, method=bar_method, fraction=bar_fraction)
    if cropped.shape[0] < min_size:
        return (str(path), f"image too small after removing the data bar ({cropped.shape[0]} rows < {min_size})")
    meta = sem.meta
    if item.pixel_size_um is not None:
        meta = replace(meta, source=f"{meta.source}+labels-csv" if meta.source else "labels-csv")
    try:
        rel = str(path.relative_to(root))
    except ValueError:
        rel = str(path)
    return {
        "path": str(path.resolve()),
        "relpath": rel,
        "label": item.label,
        "composition": item.composition,
        "state": item.state,
        "domain": item.domain,
        "session": item.session,
        "sample_id": item.sample_id,
        "frame": _frame_number(path.stem),
        "acq_date": meta.acq_date,
        "pixel_size_um": item.pixel_size_um if item.pixel_size_um is not None else meta.pixel_size_um,
        "magnification": meta.magnification,
        "voltage_kv": meta.voltage_kv,
        "brightness": meta.brightness,
        "contrast": meta.contrast,
        "meta_source": meta.source,
        "width": int(img.shape[1]),
        "height": int(img.shape[0]),
        "bar_row": int(crop.row),
        "bar_method": crop.method,
        "mean_grey": float(cropped.mean() * 255.0),
        "std_grey": float(cropped.std() * 255.0),
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "phash": _phash(cropped),
    }


def index_folder(
    root: str | Path,
    schema: Schema | None = None,
    labels_csv: str | Path | None = None,
    skip_bad: bool = False,
    min_size: int = 64,
    bar_method: str = "auto",
    bar_fraction: float = 0.0667,
    workers: int = 2,
) -> pd.DataFrame:
    """Scan a folder tree of micrographs into a validated manifest.

    Labels come from folder names (``NCM333_pristine`` or the upstream ``333_formation``
    layout) or from ``labels_csv`` (columns ``path,label`` and optionally ``domain,
    session, sample_id, pixel_size_um``). A ``pixel_size_um`` value in the CSV is the user's
    explicit pixel size (µm/px): it overrides the file's own metadata, and ``meta_source`` then
    ends in ``labels-csv``; an implausible value is a problem naming the file and the line.

    Parameters
    ----------
    root : str or Path
        Folder to scan recursively.
    schema : Schema, optional
        Class taxonomy; default nine classes with NCM523 recognised.
    labels_csv : str or Path, optional
        Labels from a CSV instead of folder names.
    skip_bad : bool
        Turn problems into warnings; the skipped files are listed in ``df.attrs["skipped"]`` (dicts of path and reason).
    min_size : int
        Smallest usable height/width in pixels.
    bar_method, bar_fraction
        Data-bar removal (see :func:`semcathode.io._databar.find_data_bar`).
    workers : int
        Threads for decoding.

    Returns
    -------
    pandas.DataFrame
        The manifest, sorted by label, session and frame.

    Raises
    ------
    ManifestError
        Listing every bad file with its reason (unless ``skip_bad``).

    Examples
    --------
    >>> import tempfile
    >>> from semcathode.data._synthetic import write_synthetic_dataset
    >>> root = tempfile.mkdtemp()
    >>> _ = write_synthetic_dataset(root, n_per_class=1, size=(80, 96))
    >>> df = index_folder(root)
    >>> len(df), df["label"].iloc[0], df["meta_source"].iloc[0], int(df["bar_row"].iloc[0])
    (9, 'NCM333_pristine', 'sne-sidecar', 75)
    """
    root = Path(root)
    if not root.is_dir():
        raise ManifestError([(str(root), "not a folder")])
    schema = schema or default_schema()
    notes: list[tuple[str, str]] = []
    if labels_csv:
        items, problems = _items_from_csv(root, Path(labels_csv), schema)
    else:
        items, problems, _, notes = items_from_folders(root, schema)
    for path, note in notes:
        warnings.warn(f"{path}: {note}", stacklevel=2)
    for item in items:  # here, not in the decoding threads: a warning is never lost to another thread
        check_sidecar(item.path)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(lambda it: _describe(it, root, min_size, bar_method, bar_fraction), items))
    rows = [r for r in results if isinstance(r, dict)]
    problems += [r for r in results if isinstance(r, tuple)]
    rows, conflicts = _label_conflicts(rows)
    problems += conflicts
    present = {r["label"] for r in rows}
    for cls in schema.classes:
        if cls not in present:
            problems.append((str(root), f"empty class: no usable image of {cls}"))
    if problems and not skip_bad:
        raise ManifestError(problems)
    if problems:
        warnings.warn(
            f"skipped {len(problems)} problem(s) while indexing {root}:\n"
            + "\n".join(f"  - {p}: {r}" for p, r in problems),
            stacklevel=2,
        )
    df = pd.DataFrame(rows)
    if df.empty:
        raise ManifestError(problems or [(str(root), "no images found")])
    df["domain"] = [
        d if isinstance(d, str) and d else ("source" if c in schema.compositions else c)
        for d, c in zip(df["domain"], df["composition"])
    ]
    # session: the user's column, else acquisition date | folder; a file without a date (e.g. a
    # missing sidecar) belongs to its folder's most common date rather than to a session of its own
    folder = df["path"].map(lambda p: Path(p).parent.name)
    usual = df.assign(folder=folder).dropna(subset=["acq_date"]).groupby("folder")["acq_date"].agg(
        lambda d: d.mode().iloc[0])
    df["session"] = [
        s if isinstance(s, str) and s else f"{a if isinstance(a, str) and a else usual.get(f, 'unknown-date')}|{f}"
        for s, a, f in zip(df["session"], df["acq_date"], folder)
    ]
    if df["sample_id"].isna().all():
        df = df.drop(columns="sample_id")
    comps = {c: i for i, c in enumerate(schema.known_compositions)}
    states = {s: i for i, s in enumerate(schema.states)}
    df["_o"] = [comps.get(c, len(comps)) * 100 + states.get(s, 99) for c, s in zip(df["composition"], df["state"])]
    df = df.sort_values(["_o", "label", "session", "frame", "path"]).drop(columns="_o").reset_index(drop=True)
    df.attrs["skipped"] = [{"path": p, "reason": r} for p, r in problems]
    df.attrs["root"] = str(root.resolve())
    return df


def input_files(root: str | Path, labels_csv: str | Path | None = None, schema: Schema | None = None) -> list[Path]:
    """Every file :func:`index_folder` would read: the images, their sidecars and the labels CSV.

    Nothing is decoded; used to refuse an output path that is one of the inputs.

    Parameters
    ----------
    root : str or Path
        The folder to index.
    labels_csv : str or Path, optional
        Labels from a CSV: its rows name the images (an unreadable CSV gives only itself).
    schema : Schema, optional
        Class taxonomy (as for :func:`index_folder`).

    Returns
    -------
    list of Path
        The files that exist, without repeats.
    """
    root = Path(root)
    schema = schema or default_schema()
    found: list[Path] = []
    if labels_csv:
        found.append(Path(labels_csv))
        try:
            images = [it.path for it in _items_from_csv(root, Path(labels_csv), schema)[0]]
        except ManifestError:
            images = []
    else:
        images = scan(root, schema)[0] if root.is_dir() else []
    for image in images:
        found += [image, *sidecar_paths(image)]
    return [p for p in dict.fromkeys(found) if os.path.lexists(p)]


def _label_conflicts(rows: list[dict]) -> tuple[list[dict], list[tuple[str, str]]]:
    """Drop every copy of an image (same sha256) filed under more than one label; say where."""
    by_sha: dict[str, list[dict]] = {}
    for r in rows:
        by_sha.setdefault(r["sha256"], []).append(r)
    bad_sha = {h for h, rs in by_sha.items() if len({r["label"] for r in rs}) > 1}
    problems = []
    for h in sorted(bad_sha):
        rs = by_sha[h]
        for r in rs:
            others = "; ".join(f"{o['path']} as {o['label']}" for o in rs if o is not r and o["label"] != r["label"])
            problems.append((r["path"], f"the same image (sha256 {h[:12]}...) is filed as {r['label']} here "
                             f"and as a different class elsewhere: {others}"))
    return [r for r in rows if r["sha256"] not in bad_sha], problems


def skipped_path(path: str | Path) -> Path:
    """Where :func:`write_manifest` lists the skipped files: ``<name>.skipped.csv`` beside it.

    Parameters
    ----------
    path : str or Path
        The manifest CSV.

    Returns
    -------
    Path
        ``<stem>.skipped.csv`` in the same folder.
    """
    path = Path(path)
    return path.with_name(path.stem + ".skipped.csv")


def write_manifest(df: pd.DataFrame, path: str | Path) -> Path:
    """Write the manifest CSV atomically; skipped files go beside it as ``<name>.skipped.csv``.

    A ``.skipped.csv`` left by an earlier index is removed when nothing was skipped this time.
    Paths that are not valid UTF-8 are written as their original bytes (see
    :mod:`semcathode._files`); :func:`read_manifest` reads them back unchanged.

    Parameters
    ----------
    df : DataFrame
        From :func:`index_folder` (its ``attrs["skipped"]`` lists the skipped files).
    path : str or Path
        The CSV to write.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    atomic_write_csv(path, df)
    skipped = df.attrs.get("skipped")
    side = skipped_path(path)
    if skipped:
        atomic_write_csv(side, pd.DataFrame(skipped, columns=["path", "reason"]))
    else:
        side.unlink(missing_ok=True)
    return path


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest CSV written by :func:`write_manifest`.

    Parameters
    ----------
    path : str or Path
        The manifest CSV.

    Returns
    -------
    DataFrame
        The manifest.

    Raises
    ------
    ManifestError
        Missing, empty, binary or unparsable file, or one without the manifest columns.
    """
    path = Path(path)
    if not path.exists():
        raise ManifestError([(str(path), "manifest file does not exist")])
    df = _read_table(path, "manifest file")
    missing = {"path", "label", "sha256"} - set(df.columns)
    if missing:
        raise ManifestError([(str(path), f"not a manifest: missing columns {sorted(missing)}")])
    return df
