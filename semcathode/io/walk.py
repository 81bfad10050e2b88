"""The one folder walk: which files under the given paths are micrographs semcathode can read."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Sequence

from .read import SUPPORTED_EXTENSIONS

__all__ = ["find_images", "is_image_name"]


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


def find_images(inputs: Sequence[str | Path], exclude: str | Path | None = None,
                missing: Literal["raise", "keep"] = "raise") -> list[Path]:
    """Files named in ``inputs``, and the readable images found recursively in named folders.

    Parameters
    ----------
    inputs : sequence of str or Path
        Image files and/or folders. Files named explicitly are kept whatever their extension
        (the reader then says what is wrong with them); folders contribute their images
        (:func:`is_image_name`), sorted.
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
    skip = Path(exclude).resolve() if exclude is not None else None
    files: list[Path] = []
    for p in map(Path, inputs):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and is_image_name(f))
            if skip is not None:
                found = [f for f in found if skip not in f.resolve().parents]
            files.extend(found)
        elif p.exists() or missing == "keep":
            files.append(p)
        else:
            raise FileNotFoundError(f"no such image or folder: {p}")
    return list(dict.fromkeys(files))
