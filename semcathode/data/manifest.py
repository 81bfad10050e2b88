"""Scan folders of micrographs into a validated manifest; write and read it back.

The manifest is a :class:`pandas.DataFrame` with one row per micrograph. Columns:
``path, relpath, label, composition, state, domain, session, frame, acq_date,
pixel_size_um, magnification, voltage_kv, brightness, contrast, meta_source, width, height,
bar_row, bar_method, mean_grey, std_grey, sha256, bytes, phash``.

The scan picks up exactly the extensions the reader reads
(:data:`semcathode.io.SUPPORTED_EXTENSIONS`) and follows symbolic links to folders (a link
back into a folder already scanned, or a broken link, is reported). The same image (same
sha256) filed under two different labels is a problem naming every copy and its label: its
copies are not indexed. Duplicate pairs are found by :mod:`semcathode.data.duplicates`.
"""

from __future__ import annotations

import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .._files import atomic_write_csv, sha256_file
from ..io.databar import crop_data_bar
from ..io.read import SUPPORTED_EXTENSIONS, SEMReadError, read_sem
from .schema import Schema, default_schema

__all__ = [
    "ManifestError",
    "index_folder",
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


@dataclass
class _Item:
    path: Path
    label: str | None
    composition: str | None
    state: str | None
    domain: str | None = None
    session: str | None = None
    sample_id: str | None = None
    pixel_size_um: float | None = None  # the user's value from the labels CSV; overrides the file's


_FRAME = re.compile(r"(\d+)\D*$")


def _frame_number(stem: str) -> int | None:
    m = _FRAME.search(stem)
    return int(m.group(1)) if m else None


def _phash(image: np.ndarray) -> str:
    import imagehash
    from PIL import Image

    im = Image.fromarray(np.clip(image * 255.0, 0, 255).astype(np.uint8))
    return str(imagehash.phash(im, hash_size=8))


def _is_broken_link(p: Path) -> bool:
    return p.is_symlink() and not p.exists()


def _scan(root: Path, schema: Schema) -> tuple[list[Path], list[Path], list[tuple[str, str]]]:
    """Image files and folders under ``root``, following symbolic links to folders.

    Returns ``(files, folders, problems)``; a broken link that looks like an image or a class
    folder, a link back into a folder already scanned, and an unreadable folder are problems.
    """
    files: list[Path] = []
    dirs: list[Path] = []
    problems: list[tuple[str, str]] = []
    seen: dict[str, Path] = {}

    def visit(d: Path) -> None:
        real = os.path.realpath(d)
        if real in seen:
            problems.append((str(d), f"symbolic link to a folder already scanned ({seen[real]}); skipped"))
            return
        seen[real] = d
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            problems.append((str(d), f"cannot list folder ({exc.strerror or exc})"))
            return
        for e in entries:
            p = Path(e.path)
            if _is_broken_link(p):
                if p.suffix.lower() in SUPPORTED_EXTENSIONS or schema.parse(p.name):
                    problems.append((str(p), f"broken symbolic link (its target {os.readlink(p)} does not exist)"))
                continue
            try:
                is_dir = e.is_dir()  # follows symbolic links
                is_file = not is_dir and e.is_file()
            except OSError as exc:
                problems.append((str(p), f"cannot stat ({exc.strerror or exc})"))
                continue
            if is_dir:
                dirs.append(p)
                visit(p)
            elif is_file and p.suffix.lower() in SUPPORTED_EXTENSIONS:
                files.append(p)

    visit(root)
    return sorted(files), sorted(dirs), problems


def _items_from_folders(root: Path, schema: Schema) -> tuple[list[_Item], list[tuple[str, str]], list[Path]]:
    items: list[_Item] = []
    class_dirs: list[Path] = []
    files, dirs, problems = _scan(root, schema)
    dirs_with_images = {p.parent for p in files}
    for d in dirs:
        parsed = schema.parse(d.name)
        if parsed and d not in dirs_with_images and not any(d in f.parents for f in files):
            link = f" (symbolic link to {os.path.realpath(d)})" if d.is_symlink() else ""
            problems.append((str(d), f"empty class folder{link}: no images with a supported extension "
                             f"({', '.join(SUPPORTED_EXTENSIONS)})"))
    for f in files:
        label_dir = f.parent
        parsed = schema.parse(label_dir.name)
        if parsed is None:
            problems.append((str(f), f"unknown label: folder name {label_dir.name!r} is not a class of the schema "
                             f"(classes: {', '.join(schema.classes)}; also recognised: {', '.join(schema.extra_compositions)})"))
            continue
        comp, state = parsed
        class_dirs.append(label_dir)
        items.append(_Item(f, schema.label(comp, state), comp, state))
    return items, problems, class_dirs


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


def _items_from_csv(root: Path, labels_csv: Path, schema: Schema) -> tuple[list[_Item], list[tuple[str, str]]]:
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
        items.append(_Item(
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


def _describe(item: _Item, root: Path, min_size: int, bar_method: str, bar_fraction: float) -> dict | tuple[str, str]:
    path = item.path
    try:
        if not path.exists():
            return (str(path), "file does not exist")
        return _describe_file(item, root, min_size, bar_method, bar_fraction)
    except SEMReadError as exc:
        return (str(path), getattr(exc, "problem", None) or str(exc))
    except (OSError, ValueError, RuntimeError, MemoryError) as exc:  # one bad file never stops the batch
        return (str(path), f"{type(exc).__name__}: {exc}")


def _describe_file(item: _Item, root: Path, min_size: int, bar_method: str, bar_fraction: float) -> dict | tuple[str, str]:
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
        Data-bar removal (see :func:`semcathode.io.find_data_bar`).
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
    >>> from semcathode.data import write_synthetic_dataset
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
    if labels_csv:
        items, problems = _items_from_csv(root, Path(labels_csv), schema)
    else:
        items, problems, _ = _items_from_folders(root, schema)
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
