"""The checks every SEM reader runs on a file before decoding it, and the error they raise.

Private to :mod:`semcathode.io`: the pixel reader (:mod:`semcathode.io._read`) and the metadata
reader (:mod:`semcathode.io._metadata`) both start here, so neither imports the other for it.
:data:`SUPPORTED_EXTENSIONS`, :class:`SEMReadError` and :class:`SEMReadWarning` are public through
:mod:`semcathode.io._read`.

The size guard (:func:`check_decoded_size`) works from the file header alone: width, height,
planes, samples per pixel and bytes per sample give the decoded size before any pixel is
decoded. Limits come from ``$SEMCATHODE_MAX_...`` variables read by :func:`semcathode.config._limits.env_limit`.
"""

from __future__ import annotations

from pathlib import Path

from ..config._limits import short_repr

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "TIFF_EXTENSIONS",
    "MAX_PIXELS_ENV",
    "MAX_BYTES_ENV",
    "MAX_SAMPLES",
    "SEMReadError",
    "SEMReadWarning",
    "check_path",
    "check_decoded_size",
]

#: File name extensions :func:`semcathode.io.read_image` accepts (lower case). The one list
#: of the package: folder scans (:mod:`semcathode.io._walk`) pick up exactly what the reader can read.
SUPPORTED_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")

#: Extensions read with :mod:`tifffile` (pixels and vendor tags).
TIFF_EXTENSIONS: tuple[str, ...] = (".tif", ".tiff")

#: Environment variables of the size limits (``0`` = no limit).
MAX_PIXELS_ENV = "SEMCATHODE_MAX_IMAGE_PIXELS"
MAX_BYTES_ENV = "SEMCATHODE_MAX_IMAGE_BYTES"

#: Most samples per pixel an SEM image has: grey (1), grey + alpha (2), RGB (3) or RGBA (4).
MAX_SAMPLES = 4

class SEMReadError(ValueError):
    """An SEM file could not be read; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class SEMReadWarning(UserWarning):
    """An SEM file was read, but something in it was odd (the message names the file and what)."""


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
            f"unsupported file extension {short_repr(p.suffix)} "
            f"(supported: {', '.join(SUPPORTED_EXTENSIONS)})",
        )
    if not p.exists():
        raise SEMReadError(p, "file does not exist")
    if not p.is_file():
        raise SEMReadError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise SEMReadError(p, "file is empty (0 bytes)")
    return p


def check_decoded_size(
    path: Path,
    width: int,
    height: int,
    *,
    max_pixels: int,
    max_bytes: int,
    samples: int = 1,
    itemsize: int = 1,
    planes: int = 1,
) -> int:
    """Refuse an image from its header before it is decoded: too many samples, pixels or bytes.

    Parameters
    ----------
    path : Path
        The file, for the message.
    width, height : int
        Image size in pixels as the header gives it.
    max_pixels : int
        Largest ``width x height x planes`` (``0`` = no limit).
    max_bytes : int
        Largest decoded size in bytes (``0`` = no limit).
    samples : int
        Samples per pixel (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA).
    itemsize : int
        Bytes per decoded sample.
    planes : int
        Planes decoded together (the depth of a volumetric TIFF page; 1 otherwise).

    Returns
    -------
    int
        The decoded size in bytes (``width x height x planes x samples x itemsize``).

    Raises
    ------
    SEMReadError
        A non-positive size, more than :data:`MAX_SAMPLES` samples per pixel, or an image over
        either limit; the message gives the sizes, the limit and the setting that raises it.
    """
    if width <= 0 or height <= 0 or planes <= 0:
        raise SEMReadError(path, f"header gives an image of {width}x{height} px")
    if not 1 <= samples <= MAX_SAMPLES:
        raise SEMReadError(
            path,
            f"header gives {samples:,} samples per pixel; an SEM image has 1 (grey), 2 (grey + alpha), "
            f"3 (RGB) or 4 (RGBA)",
        )
    pixels = width * height * planes
    shape = f"{width}x{height} px" + (f" x {planes:,} planes" if planes > 1 else "")
    if max_pixels and pixels > max_pixels:
        raise SEMReadError(
            path,
            f"image is {shape} ({pixels:,} pixels), more than the limit of {max_pixels:,} pixels; "
            f"raise it with ${MAX_PIXELS_ENV} or max_pixels= if this is intended",
        )
    nbytes = pixels * max(int(samples), 1) * max(int(itemsize), 1)
    if max_bytes and nbytes > max_bytes:
        raise SEMReadError(
            path,
            f"image is {shape} x {samples} samples x {itemsize} bytes = {nbytes:,} bytes decoded, more than "
            f"the limit of {max_bytes:,} bytes; raise it with ${MAX_BYTES_ENV} or max_bytes= if this is intended",
        )
    return nbytes
