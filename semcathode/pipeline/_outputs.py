"""Where a command may write: the one check of every output path (see :mod:`semcathode.pipeline._cli`).

Output files (``predict --out``, ``data index --out`` and its ``<manifest>.skipped.csv``, the
overlays ``cam`` writes into its ``--out`` folder) pass one check before anything is written;
an output path is refused (exit 2, nothing written) when it is

* an input of the same command: the model file or its ``.json``, an input image or a file found
  in an input folder, the sidecar ``.txt`` of an input image, the labels CSV (compared as files,
  so links and other spellings of the same path count);
* an existing symbolic link, FIFO, device or socket (checked with ``lstat``: a link is never
  followed nor replaced), or a folder;
* an existing regular file this command did not write, unless ``--force`` (``predict``,
  ``data index``). The rule for "written by this command" looks at the file's first line only:
  ``predict`` writes a CSV whose header starts with ``path,pred,confidence,n_tiles,
  tile_agreement,ood_score,familiar`` and ends with ``error``; ``data index`` writes a manifest
  whose header starts with ``path,relpath,label`` and holds every manifest column, and a
  ``.skipped.csv`` whose header is ``path,reason``. So rerunning a command over its own earlier
  output replaces it, while an image, a model, or any other file is refused. ``--force``
  replaces such a foreign regular file, never an input, a link or a special file. In the
  ``cam`` folder an existing ``<stem>_<method>.png`` is an earlier overlay and is replaced.
"""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path
from typing import Callable, Iterable

from ._console import CliError

__all__ = ["Input", "check_out", "out_dir", "csv_header", "is_predictions", "is_manifest", "is_skipped_list", "once",
           "model_inputs", "image_inputs"]


#: An input of a command, for the output check: its path and what it is (e.g. "the model file").
Input = tuple[Path, str]


def file_kind(mode: int) -> str:
    from ..io._walk import file_kind

    return file_kind(mode)


def check_parents(p: Path, what: str) -> None:
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CliError(f"{what} {p}: {parent} is a file, not a folder")
            break


def input_role(st: os.stat_result, inputs: Iterable[Input]) -> str | None:
    """What the file with status ``st`` is among ``inputs`` (compared as files), or None."""
    for path, role in inputs:
        try:
            other = os.stat(path)
        except (OSError, ValueError):
            continue
        if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
            return role
    return None


def check_out(path: str | Path, what: str = "--out", inputs: Callable[[], Iterable[Input]] = lambda: (),
               own: Callable[[Path], bool] | None = None, own_what: str = "", force: bool = False) -> Path:
    """The one check of a file a command is about to write (see the module notes).

    Parameters
    ----------
    path : str or Path
        The output file.
    what : str
        How the message names it (e.g. ``"--out"``).
    inputs : callable
        Gives the command's inputs as ``(path, role)``; called only when ``path`` is an existing
        regular file.
    own : callable, optional
        Whether an existing regular file was written by this command (its header); None: not
        checked (the first, early check of a command, before its inputs are read).
    own_what : str
        What ``own`` recognises, for the message (e.g. ``"a predictions CSV"``).
    force : bool
        Replace an existing regular file that ``own`` does not recognise.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    CliError
        Naming the path and why it is refused; nothing has been written.
    """
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        check_parents(p, what)
        return p
    except NotADirectoryError:
        check_parents(p, what)
        raise CliError(f"{what} {p}: a parent folder is a file") from None
    if stat.S_ISLNK(st.st_mode):
        raise CliError(f"{what} {p} is a symbolic link (to {os.readlink(p)}); give the name of a new or "
                       "regular file (a link is never replaced)")
    if stat.S_ISDIR(st.st_mode):
        raise CliError(f"{what} {p} is a directory; give a file name (e.g. {p / 'predictions.csv'})")
    if not stat.S_ISREG(st.st_mode):
        raise CliError(f"{what} {p} is not a regular file ({file_kind(st.st_mode)}); give the name of a new "
                       "or regular file")
    role = input_role(st, inputs())
    if role is not None:
        raise CliError(f"{what} {p} is an input of this command ({role}); give another file name")
    if own is not None and not force and not own(p):
        raise CliError(f"{what} {p} exists and is not {own_what} written by semcathode; give another file name, "
                       "or use --force to replace it")
    return p


def out_dir(path: str, what: str = "--out") -> Path:
    """A folder to write into (a link to a folder is a folder): not a file or a special file."""
    p = Path(path)
    try:
        mode = os.stat(p).st_mode  # follows a link
    except FileNotFoundError:
        if os.path.islink(p):
            raise CliError(f"{what} {p} is a broken symbolic link (to {os.readlink(p)}); give a folder "
                           "for the output") from None
        check_parents(p, what)
        return p
    if stat.S_ISDIR(mode):
        return p
    if stat.S_ISREG(mode):
        raise CliError(f"{what} {p} is a file; give a folder for the output")
    raise CliError(f"{what} {p} is not a folder ({file_kind(mode)}); give a folder for the output")


def csv_header(path: Path) -> list[str] | None:
    """The first row of a CSV text file, or None (not a regular text file, no line end in 64 KiB).

    Opened without following a link and without blocking (a FIFO put there meanwhile is refused).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        head = os.read(fd, 1 << 16)
    except OSError:
        return None
    finally:
        os.close(fd)
    if b"\0" in head or b"\n" not in head:
        return None
    line = head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "surrogateescape")
    try:
        return next(csv.reader([line]), None)
    except csv.Error:
        return None


def is_predictions(path: Path) -> bool:
    """Whether ``path`` is a CSV written by ``predict`` (its header; see the module notes)."""
    from ..models._rows import PREDICTION_COLUMNS

    cols = csv_header(path)
    return bool(cols) and cols[:len(PREDICTION_COLUMNS)] == list(PREDICTION_COLUMNS) and cols[-1] == "error"


def is_manifest(path: Path) -> bool:
    """Whether ``path`` is a manifest written by ``data index`` (its header; see the module notes)."""
    from ..data._manifest import MANIFEST_COLUMNS

    cols = csv_header(path)
    return bool(cols) and cols[:3] == ["path", "relpath", "label"] and set(MANIFEST_COLUMNS) <= set(cols)


def is_skipped_list(path: Path) -> bool:
    """Whether ``path`` is a ``.skipped.csv`` written by ``data index``."""
    return csv_header(path) == ["path", "reason"]


def once(make: Callable[[], Iterable[Input]]) -> Callable[[], list[Input]]:
    """``make`` evaluated at the first call only (a command's inputs are listed once)."""
    cache: list[list[Input]] = []

    def inputs() -> list[Input]:
        if not cache:
            cache.append(list(make()))
        return cache[0]

    return inputs


def model_inputs(model: str) -> list[Input]:
    """The files ``load_model(model)`` reads: the weights and the JSON beside them."""
    p = Path(model)
    weights = p if p.suffix == ".safetensors" else p.with_suffix(".safetensors")
    return [(p, "the model file"), (weights, "the model file"), (weights.with_suffix(".json"), "the model's JSON")]


def image_inputs(files: Iterable[Path]) -> list[Input]:
    """Input images and the sidecars their metadata may be read from."""
    from ..io._walk import sidecar_paths

    out: list[Input] = []
    for f in files:
        out.append((f, "an input image"))
        out += [(side, "the sidecar of an input image") for side in sidecar_paths(f)]
    return out


def pixel_size_arg(value: float | None) -> float | None:
    """A ``--pixel-size`` value, checked against the plausible SEM range (also refuses nan and inf)."""
    if value is None:
        return None
    from ..io._metadata import PIXEL_SIZE_RANGE_UM

    lo, hi = PIXEL_SIZE_RANGE_UM
    if not lo <= value <= hi:
        raise CliError(f"--pixel-size {value:g} µm/px is outside the plausible SEM range {lo:g}..{hi:g} µm/px")
    return value


def supported_extensions() -> str:
    """The image extensions the readers take, for messages."""
    from ..io._read import SUPPORTED_EXTENSIONS

    return ", ".join(SUPPORTED_EXTENSIONS)
