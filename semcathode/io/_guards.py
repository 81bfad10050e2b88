"""The checks every SEM reader runs on a file before opening it, and the error they raise.

Private to :mod:`semcathode.io`: the pixel reader (:mod:`semcathode.io.read`) and the metadata
reader (:mod:`semcathode.io.metadata`) both start here, so neither imports the other for it.
:data:`SUPPORTED_EXTENSIONS` and :class:`SEMReadError` are public through
:mod:`semcathode.io.read`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SUPPORTED_EXTENSIONS", "TIFF_EXTENSIONS", "SEMReadError", "check_path"]

#: File name extensions :func:`semcathode.io.read.read_image` accepts (lower case). The one list
#: of the package: folder scans (:mod:`semcathode.io.walk`) pick up exactly what the reader can read.
SUPPORTED_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")

#: Extensions read with :mod:`tifffile` (pixels and vendor tags).
TIFF_EXTENSIONS: tuple[str, ...] = (".tif", ".tiff")


class SEMReadError(ValueError):
    """An SEM file could not be read; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def check_path(path: str | Path) -> Path:
    """The path of a readable SEM file, checked before anything is opened.

    Parameters
    ----------
    path : str or Path
        The image file.

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    SEMReadError
        Unsupported extension, missing file, not a regular file, or empty file.
    """
    p = Path(path)
    if p.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise SEMReadError(
            p,
            f"unsupported file extension {p.suffix!r} "
            f"(supported: {', '.join(SUPPORTED_EXTENSIONS)})",
        )
    if not p.exists():
        raise SEMReadError(p, "file does not exist")
    if not p.is_file():
        raise SEMReadError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise SEMReadError(p, "file is empty (0 bytes)")
    return p
