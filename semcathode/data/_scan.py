"""The folder scans of :func:`semcathode.data.index_folder` and of ``factory.check_data_dir``: image
files, class folders and what is odd about them (private to :mod:`semcathode.data`).

Special files are never opened: a FIFO, device or socket named like an image is a problem, any
other special file, a sub-folder without images inside a class folder and a sidecar that cannot
be read as a text file are notes (warnings).
"""

from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..io._metadata import SEMMetadataWarning
from ..io._read import SUPPORTED_EXTENSIONS
from ..io._walk import file_kind, is_image_name, sidecar_paths
from ._schema import Schema

__all__ = ["Item", "scan", "items_from_folders", "check_sidecar", "has_images"]


@dataclass
class Item:
    path: Path
    label: str | None
    composition: str | None
    state: str | None
    domain: str | None = None
    session: str | None = None
    sample_id: str | None = None
    pixel_size_um: float | None = None  # the user's value from the labels CSV; overrides the file's


def _is_broken_link(p: Path) -> bool:
    return p.is_symlink() and not p.exists()


def scan(root: Path, schema: Schema) -> tuple[list[Path], list[Path], list[tuple[str, str]], list[tuple[str, str]]]:
    """Image files and folders under ``root``, following symbolic links to folders.

    Returns ``(files, folders, problems, notes)``; a broken link that looks like an image or a
    class folder, a link back into a folder already scanned, an unreadable folder and a special
    file (FIFO, device, socket) named like an image are problems; any other special file is a
    note (a warning). Special files are never opened.
    """
    files: list[Path] = []
    dirs: list[Path] = []
    problems: list[tuple[str, str]] = []
    notes: list[tuple[str, str]] = []
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
            elif not is_file:
                _special_file(p, problems, notes)

    visit(root)
    return sorted(files), sorted(dirs), problems, notes


def _special_file(p: Path, problems: list[tuple[str, str]], notes: list[tuple[str, str]]) -> None:
    """Record a FIFO, device or socket met by the scan (without opening it)."""
    try:
        kind = file_kind(os.stat(p).st_mode)
    except OSError as exc:
        problems.append((str(p), f"cannot stat ({exc.strerror or exc})"))
        return
    if p.suffix.lower() in SUPPORTED_EXTENSIONS:
        problems.append((str(p), f"not a regular file ({kind})"))
    else:
        notes.append((str(p), f"not a regular file ({kind}); ignored"))


def items_from_folders(
    root: Path, schema: Schema
) -> tuple[list[Item], list[tuple[str, str]], list[Path], list[tuple[str, str]]]:
    """Items labelled by their folder; also the problems, the class folders and the notes (warnings)."""
    items: list[Item] = []
    class_dirs: list[Path] = []
    files, dirs, problems, notes = scan(root, schema)
    dirs_with_images = {p.parent for p in files}
    sidecars = {sidecar_paths(f)[0] for f in files}  # a folder named like one is warned about as a sidecar
    reported = {Path(p) for p, _ in problems}  # e.g. a link back to a folder already scanned
    for d in dirs:
        parsed = schema.parse(d.name)
        has_images = d in dirs_with_images or any(d in f.parents for f in files)
        if parsed and not has_images:
            link = f" (symbolic link to {os.path.realpath(d)})" if d.is_symlink() else ""
            problems.append((str(d), f"empty class folder{link}: no images with a supported extension "
                             f"({', '.join(SUPPORTED_EXTENSIONS)})"))
        elif (not has_images and d.parent != root and d not in sidecars and d not in reported
              and schema.parse(d.parent.name)):
            notes.append((str(d), f"sub-folder inside class folder {d.parent.name} ignored "
                          f"(no images with a supported extension in it)"))
    for f in files:
        label_dir = f.parent
        parsed = schema.parse(label_dir.name)
        if parsed is None:
            problems.append((str(f), f"unknown label: folder name {label_dir.name!r} is not a class of the schema "
                             f"(classes: {', '.join(schema.classes)}; also recognised: {', '.join(schema.extra_compositions)})"))
            continue
        comp, state = parsed
        class_dirs.append(label_dir)
        items.append(Item(f, schema.label(comp, state), comp, state))
    return items, problems, class_dirs, notes


def check_sidecar(path: Path) -> None:
    """Warn when the sidecar ``<image>.txt`` exists but cannot be read as a text file (never opened)."""
    side = sidecar_paths(path)[0]
    try:
        mode = os.stat(side).st_mode
    except FileNotFoundError:
        if os.path.islink(side):
            warnings.warn(f"{side}: cannot read sidecar (broken symbolic link); the metadata of {path.name} "
                          "(pixel size, date) is not read", SEMMetadataWarning, stacklevel=3)
        return
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or exc
        warnings.warn(f"{side}: cannot read sidecar ({why}); the metadata of {path.name} (pixel size, date) "
                      "is not read", SEMMetadataWarning, stacklevel=3)
        return
    if not stat.S_ISREG(mode):
        warnings.warn(f"{side}: cannot read sidecar: not a regular file ({file_kind(mode)}); the metadata of "
                      f"{path.name} (pixel size, date) is not read", SEMMetadataWarning, stacklevel=3)


def has_images(root: Path) -> bool:
    """Whether the tree under ``root`` (links followed, each folder once) holds an image file."""
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        try:
            st = os.stat(folder)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:  # a link loop
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        if any(is_image_name(f) for f in files):
            return True
    return False
