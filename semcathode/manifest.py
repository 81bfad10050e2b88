"""Scan folders of micrographs into a validated manifest; find duplicates.

The manifest is a :class:`pandas.DataFrame` with one row per micrograph. Columns:
``path, relpath, label, composition, state, domain, session, frame, acq_date,
pixel_size_um, magnification, voltage_kv, brightness, contrast, meta_source, width, height,
bar_row, bar_method, mean_grey, std_grey, sha256, bytes, phash``.
"""

from __future__ import annotations

import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ._files import atomic_write_csv, sha256_file
from .io import SEMReadError, crop_data_bar, read_sem
from .schema import Schema, default_schema

__all__ = [
    "IMAGE_EXTENSIONS",
    "ManifestError",
    "DuplicateWarning",
    "index_folder",
    "write_manifest",
    "read_manifest",
    "find_duplicates",
    "check_duplicates",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
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


class DuplicateWarning(UserWarning):
    """Duplicate or near-duplicate images cross splits or domains."""


@dataclass
class _Item:
    path: Path
    label: str | None
    composition: str | None
    state: str | None
    domain: str | None = None
    session: str | None = None
    sample_id: str | None = None


_FRAME = re.compile(r"(\d+)\D*$")


def _frame_number(stem: str) -> int | None:
    m = _FRAME.search(stem)
    return int(m.group(1)) if m else None


def _phash(image: np.ndarray) -> str:
    import imagehash
    from PIL import Image

    im = Image.fromarray(np.clip(image * 255.0, 0, 255).astype(np.uint8))
    return str(imagehash.phash(im, hash_size=8))


def _items_from_folders(root: Path, schema: Schema) -> tuple[list[_Item], list[tuple[str, str]], list[Path]]:
    items: list[_Item] = []
    problems: list[tuple[str, str]] = []
    class_dirs: list[Path] = []
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    dirs_with_images = {p.parent for p in files}
    for d in sorted(p for p in root.rglob("*") if p.is_dir()):
        parsed = schema.parse(d.name)
        if parsed and d not in dirs_with_images and not any(d in f.parents for f in files):
            problems.append((str(d), "empty class folder: no images"))
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


def _items_from_csv(root: Path, labels_csv: Path, schema: Schema) -> tuple[list[_Item], list[tuple[str, str]]]:
    table = pd.read_csv(labels_csv)
    if not {"path", "label"} <= set(table.columns):
        raise ManifestError([(str(labels_csv), "labels CSV needs the columns 'path' and 'label'")])
    items, problems = [], []
    for row in table.itertuples(index=False):
        p = Path(str(row.path))
        p = p if p.is_absolute() else root / p
        parsed = schema.parse(str(row.label))
        if parsed is None:
            problems.append((str(p), f"unknown label {row.label!r} in {labels_csv}"))
            continue
        comp, state = parsed
        items.append(_Item(
            p, schema.label(comp, state), comp, state,
            domain=getattr(row, "domain", None), session=getattr(row, "session", None),
            sample_id=getattr(row, "sample_id", None),
        ))
    return items, problems


def _describe(item: _Item, root: Path, min_size: int, bar_method: str, bar_fraction: float) -> dict | tuple[str, str]:
    path = item.path
    try:
        if not path.exists():
            return (str(path), "file does not exist")
        sem = read_sem(path, min_size=min_size)
    except SEMReadError as exc:
        return (str(path), getattr(exc, "problem", None) or str(exc))
    img = sem.image
    cropped, crop = crop_data_bar(img, sem.meta, method=bar_method, fraction=bar_fraction)
    if cropped.shape[0] < min_size:
        return (str(path), f"image too small after removing the data bar ({cropped.shape[0]} rows < {min_size})")
    meta = sem.meta
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
        "pixel_size_um": meta.pixel_size_um,
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
    session, sample_id``).

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


def write_manifest(df: pd.DataFrame, path: str | Path) -> Path:
    """Write the manifest CSV atomically; skipped files go beside it as ``<name>.skipped.csv``."""
    path = Path(path)
    atomic_write_csv(path, df)
    skipped = df.attrs.get("skipped")
    if skipped:
        atomic_write_csv(path.with_name(path.stem + ".skipped.csv"), pd.DataFrame(skipped, columns=["path", "reason"]))
    return path


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest CSV written by :func:`write_manifest`."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError([(str(path), "manifest file does not exist")])
    df = pd.read_csv(path)
    missing = {"path", "label", "sha256"} - set(df.columns)
    if missing:
        raise ManifestError([(str(path), f"not a manifest: missing columns {sorted(missing)}")])
    return df


def find_duplicates(df: pd.DataFrame, max_distance: int = 4) -> pd.DataFrame:
    """Exact (sha256) and near-duplicate (perceptual hash) pairs.

    Parameters
    ----------
    df : DataFrame
        Manifest with ``sha256`` and ``phash`` columns.
    max_distance : int
        Largest Hamming distance between 64-bit perceptual hashes that counts as a
        near-duplicate.

    Returns
    -------
    DataFrame
        Columns ``a, b`` (row indices), ``path_a, path_b, kind`` (``exact``/``near``),
        ``distance``.
    """
    pairs = []
    for _, grp in df.groupby("sha256"):
        idx = list(grp.index)
        for i in range(len(idx)):
            for j in range(i + 1, len(idx)):
                pairs.append((idx[i], idx[j], "exact", 0))
    exact = {(a, b) for a, b, _, _ in pairs}
    if "phash" in df.columns and len(df) > 1:
        bits = np.array([[int(c) for c in bin(int(h, 16))[2:].zfill(64)] for h in df["phash"]], dtype=np.uint8)
        dist = (bits[:, None, :] != bits[None, :, :]).sum(-1)
        ii, jj = np.nonzero(np.triu(dist <= max_distance, k=1))
        for i, j in zip(ii, jj):
            a, b = int(df.index[i]), int(df.index[j])
            if (a, b) not in exact:
                pairs.append((a, b, "near", int(dist[i, j])))
    out = pd.DataFrame(pairs, columns=["a", "b", "kind", "distance"])
    out["path_a"] = [df.loc[a, "path"] for a in out["a"]]
    out["path_b"] = [df.loc[b, "path"] for b in out["b"]]
    return out


def check_duplicates(df: pd.DataFrame, dups: pd.DataFrame, columns: Iterable[str] = ("split", "domain")) -> list[str]:
    """Warn (and return the messages) for duplicate pairs whose members differ in ``columns``."""
    messages = []
    for col in columns:
        if col not in df.columns or dups.empty:
            continue
        for row in dups.itertuples(index=False):
            va, vb = df.loc[row.a, col], df.loc[row.b, col]
            if va != vb:
                messages.append(
                    f"{row.kind} duplicate crosses {col} ({va} vs {vb}): {row.path_a} ~ {row.path_b}"
                )
    for m in messages:
        warnings.warn(m, DuplicateWarning, stacklevel=2)
    return messages
