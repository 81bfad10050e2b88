"""The one folder walk: which files under the given paths are micrographs semcathode can read.

:func:`walk_inputs` also says what is wrong with the inputs that give nothing to read, so that no
input is skipped in silence: a path that does not exist or is a broken link, a FIFO, device or
socket (never opened: opening a FIFO would wait for a writer), and a named folder with no
micrographs in it. :func:`find_images` is the plain list for library callers.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator, Literal, Sequence

from ._read import SUPPORTED_EXTENSIONS

__all__ = ["EMPTY_FOLDER", "file_kind", "find_images", "is_image_name", "iter_inputs", "sidecar_paths", "walk_inputs"]

#: Reason given for a named folder in which no micrograph was found.
EMPTY_FOLDER = "a folder with no micrographs"


def is_image_name(path: str | Path) -> bool:
    """Whether a file name has a readable image extension and is not hidden.

    Parameters
    ----------
    path : str or Path
        A file name or path.

    Returns
    -------
    bool
        True for ``.png``, ``.tif`` … (:data:`SUPPORTED_EXTENSIONS`, any case) not starting with ``.``.

    Examples
    --------
    >>> is_image_name("a/b/frame_01.TIF"), is_image_name(".frame.png"), is_image_name("notes.txt")
    (True, False, False)
    """
    p = Path(path)
    return p.suffix.lower() in SUPPORTED_EXTENSIONS and not p.name.startswith(".")


def file_kind(mode: int) -> str:
    """What a non-regular, non-folder file is, from its ``st_mode`` (e.g. ``"a FIFO"``).

    Parameters
    ----------
    mode : int
        ``os.stat(...).st_mode`` or ``os.lstat(...).st_mode``.

    Returns
    -------
    str
        ``"a FIFO"``, ``"a character device"``, ``"a block device"``, ``"a socket"``,
        ``"a symbolic link"``, ``"a folder"``, ``"a regular file"`` or ``"a special file"``.

    Examples
    --------
    >>> import stat
    >>> file_kind(stat.S_IFIFO | 0o644), file_kind(stat.S_IFCHR)
    ('a FIFO', 'a character device')
    """
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "a special file"


def _problem(p: Path) -> str | None:
    """Why ``p`` cannot be read as a file (None when it is a regular file or a folder); never opens it."""
    try:
        mode = os.stat(p).st_mode  # follows symbolic links
    except FileNotFoundError:
        if os.path.islink(p):
            return f"broken symbolic link (its target {os.readlink(p)} does not exist)"
        return "no such file or folder"
    except OSError as exc:
        return f"cannot stat ({exc.strerror or exc})"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return f"not a regular file ({file_kind(mode)})"


def walk_inputs(inputs: Sequence[str | Path], exclude: str | Path | None = None) -> list[tuple[Path, str | None]]:
    """Files named in ``inputs`` and the micrographs found in named folders, with what is wrong.

    Parameters
    ----------
    inputs : sequence of str or Path
        Image files and/or folders. A named regular file is kept whatever its extension (the
        reader then says what is wrong with it); a named folder is searched recursively for
        images (:func:`is_image_name`), sorted, even when its own name looks like an image's.
    exclude : str or Path, optional
        A folder whose contents are skipped (e.g. the output folder inside an input folder).

    Returns
    -------
    list of (Path, str or None)
        In input order, without repeats: ``(file, None)`` for a file to read, ``(path, reason)``
        for an input or found image that cannot be read: missing (``"no such file or folder"``),
        a broken link, not a regular file (a FIFO, a device, a socket: never opened), or a
        named folder with no micrographs (:data:`EMPTY_FOLDER`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.png").write_bytes(b""); (d / "empty.jpg").mkdir()
    >>> [(p.name, why) for p, why in walk_inputs([d / "a.png", d / "empty.jpg", d / "gone.tif"])]
    [('a.png', None), ('empty.jpg', 'a folder with no micrographs'), ('gone.tif', 'no such file or folder')]
    """
    skip = Path(exclude).resolve() if exclude is not None else None
    entries: dict[Path, str | None] = {}
    for p in map(Path, inputs):
        why = _problem(p)
        if why is not None or not p.is_dir():
            entries.setdefault(p, why)
            continue
        found: list[tuple[Path, str | None]] = []
        for f in sorted(p.rglob("*")):
            if not is_image_name(f) or (skip is not None and skip in f.resolve().parents):
                continue
            why = _problem(f)
            if why is None and f.is_dir():
                continue  # a folder named like an image: its images are found by the walk
            found.append((f, why))
        if not found:
            entries.setdefault(p, EMPTY_FOLDER)
        for f, why in found:
            entries.setdefault(f, why)
    return list(entries.items())


def _walk(folder: Path, skip: Path | None) -> Iterator[tuple[Path, str | None]]:
    """The images under ``folder``, depth first, each folder's entries in name order, one folder
    listed at a time (an archive of any size is never held in memory whole)."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        yield folder, f"cannot list the folder ({exc.strerror or exc})"
        return
    for e in entries:
        p = Path(e.path)
        if skip is not None and (p == skip or p.resolve() == skip):
            continue
        if e.is_dir(follow_symlinks=False):
            yield from _walk(p, skip)
        elif is_image_name(p):
            why = _problem(p)
            if why is None and p.is_dir():  # a link to a folder named like an image
                yield from _walk(p, skip)
                continue
            yield p, why


def iter_inputs(inputs: Sequence[str | Path], exclude: str | Path | None = None) -> Iterator[tuple[Path, str | None]]:
    """:func:`walk_inputs` as a stream: the same ``(file, problem)`` pairs, found as they are needed.

    Folders are walked one at a time (``os.scandir``, entries in name order, depth first; links to
    folders are not followed, so a link loop cannot make it endless). A file found twice is given
    once only when it is named twice at the top level; inside folders every path is new.

    Parameters
    ----------
    inputs : sequence of str or Path
    exclude : str or Path, optional
        A folder whose contents are skipped.

    Yields
    ------
    (Path, str or None)

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "b").mkdir(); _ = (d / "b" / "2.png").write_bytes(b""); _ = (d / "1.png").write_bytes(b"")
    >>> [(p.relative_to(d).as_posix(), why) for p, why in iter_inputs([d, d / "gone.tif"])]
    [('1.png', None), ('b/2.png', None), ('gone.tif', 'no such file or folder')]
    """
    skip = Path(exclude).resolve() if exclude is not None else None
    named: set[Path] = set()
    for p in map(Path, inputs):
        why = _problem(p)
        if why is not None or not p.is_dir():
            if p not in named:
                named.add(p)
                yield p, why
            continue
        found = False
        for f, why in _walk(p, skip):
            found = True
            yield f, why
        if not found:
            yield p, EMPTY_FOLDER


def sidecar_paths(image: str | Path) -> list[Path]:
    """The files beside an image that its metadata may be read from (``<name>.txt``, ``<stem>.txt``).

    Parameters
    ----------
    image : str or Path
        An image file.

    Returns
    -------
    list of Path
        Both candidates, whether they exist or not.

    Examples
    --------
    >>> [p.name for p in sidecar_paths("a/frame.tif")]
    ['frame.tif.txt', 'frame.txt']
    """
    p = Path(image)
    return [p.with_name(p.name + ".txt"), p.with_suffix(".txt")]


def find_images(inputs: Sequence[str | Path], exclude: str | Path | None = None,
                missing: Literal["raise", "keep"] = "raise") -> list[Path]:
    """Files named in ``inputs``, and the readable images found recursively in named folders.

    Parameters
    ----------
    inputs : sequence of str or Path
        Image files and/or folders. Files named explicitly are kept whatever their extension
        or kind (the reader then says what is wrong with them, e.g. "not a regular file" for a
        FIFO, which it never opens); folders contribute their images (:func:`is_image_name`),
        sorted, including those that are not regular files, so that none is skipped in silence.
        :func:`walk_inputs` gives the same list with the problems found without reading.
    exclude : str or Path, optional
        A folder whose contents are skipped (e.g. the output folder inside an input folder).
    missing : {"raise", "keep"}
        A path that does not exist raises :class:`FileNotFoundError` naming it, or is kept in
        place so that the caller reports it with the other per-file problems.

    Returns
    -------
    list of Path
        In input order, without repeats.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.png", "a.tif", ".hidden.png", "notes.txt"):
    ...     _ = (d / name).write_bytes(b"")
    >>> [p.name for p in find_images([d])]
    ['a.tif', 'b.png']
    """
    named = set(map(Path, inputs))
    files: list[Path] = []
    for p, why in walk_inputs(inputs, exclude=exclude):
        if why == EMPTY_FOLDER:
            continue
        if missing == "raise" and p in named and not p.exists():
            raise FileNotFoundError(f"no such image or folder: {p}")
        files.append(p)  # the reader says what is wrong with a file it cannot read, without opening it
    return files
