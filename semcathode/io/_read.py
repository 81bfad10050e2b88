"""Read SEM micrographs: grey float pixels with size guards, plus their instrument metadata.

:func:`read_sem` is the entry point: pixels (:func:`read_image`), bit depth and metadata
(:func:`semcathode.io._metadata.read_metadata`). Every reader checks the image from the file
header before decoding (TIFF included, see :func:`semcathode.io._guards.check_decoded_size`):
an image with more than 4 samples per pixel, larger than :data:`MAX_IMAGE_PIXELS` pixels or
larger than :data:`MAX_IMAGE_BYTES` bytes decoded (configurable, see :func:`max_image_pixels`
and :func:`max_image_bytes`) is refused with a :class:`SEMReadError` naming the file and its
dimensions. Of a multi-page TIFF only the first page is read. Warnings and log lines of the
libraries (tifffile, Pillow, numpy) become one :class:`SEMReadWarning` naming the file. The data
bar is cut off by :mod:`semcathode.io._databar`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._guards import (
    MAX_BYTES_ENV,
    MAX_PIXELS_ENV,
    SUPPORTED_EXTENSIONS,
    TIFF_EXTENSIONS,
    SEMReadError,
    SEMReadWarning,
    check_decoded_size,
    check_path,
)
from ..config._limits import env_limit, short_text
from ._pixels import finite_check, to_grey, to_unit
from ._quiet import library_calls, one_warning
from ._metadata import SEMMetadata, read_metadata

__all__ = [
    "SEMReadError",
    "SEMReadWarning",
    "SEMImage",
    "SUPPORTED_EXTENSIONS",
    "MAX_IMAGE_PIXELS",
    "MAX_IMAGE_BYTES",
    "max_image_pixels",
    "max_image_bytes",
    "read_image",
    "read_sem",
    "to_grey",
    "to_unit",
]

#: Largest image (width x height, in pixels) any reader decodes, checked from the file header
#: before the pixels are decoded. The default equals the size at which Pillow refuses an image
#: as a decompression bomb (2 x ``PIL.Image.MAX_IMAGE_PIXELS``): about 179 MP, i.e. ~0.7 GB as
#: float32. Override per call (``max_pixels=``), with ``$SEMCATHODE_MAX_IMAGE_PIXELS``, or by
#: assigning this attribute; ``0`` disables the check (Pillow's own check still applies to
#: JPEG/PNG/BMP unless ``PIL.Image.MAX_IMAGE_PIXELS`` is raised too).
MAX_IMAGE_PIXELS: int = 178_956_970

#: Largest decoded image in bytes (width x height x planes x samples per pixel x bytes per
#: sample), checked from the header like :data:`MAX_IMAGE_PIXELS`: 2 GiB. Override per call
#: (``max_bytes=``), with ``$SEMCATHODE_MAX_IMAGE_BYTES`` (``4000000000``, ``4GB``, ``4GiB``), or
#: by assigning this attribute; ``0`` disables the check.
MAX_IMAGE_BYTES: int = 2 * 2**30


@dataclass
class SEMImage:
    """A micrograph as read from disk.

    Attributes
    ----------
    path : Path
        The file read.
    image : numpy.ndarray
        ``float32`` grey image ``(H, W)`` in ``[0, 1]``: the full frame, data bar included.
    meta : SEMMetadata
        Instrument metadata.
    bit_depth : int
        Bits per stored sample (8 or 16 for usual SEM files).
    """

    path: Path
    image: np.ndarray
    meta: SEMMetadata
    bit_depth: int


def max_image_pixels(max_pixels: int | None = None) -> int:
    """The image-size limit in force: ``max_pixels``, else ``$SEMCATHODE_MAX_IMAGE_PIXELS``, else
    :data:`MAX_IMAGE_PIXELS` (``0`` = no limit).

    Parameters
    ----------
    max_pixels : int, optional
        An explicit limit (negative values count as ``0``).

    Returns
    -------
    int
        Largest width x height a reader decodes; ``0`` means no limit.

    Raises
    ------
    ConfigError
        The environment variable is not a non-negative number (a :class:`ValueError`).
    """
    if max_pixels is not None:
        return max(int(max_pixels), 0)
    return env_limit(MAX_PIXELS_ENV, MAX_IMAGE_PIXELS, what="a number of pixels")


def max_image_bytes(max_bytes: int | None = None) -> int:
    """The decoded-size limit in force: ``max_bytes``, else ``$SEMCATHODE_MAX_IMAGE_BYTES``, else
    :data:`MAX_IMAGE_BYTES` (``0`` = no limit).

    Parameters
    ----------
    max_bytes : int, optional
        An explicit limit in bytes (negative values count as ``0``).

    Returns
    -------
    int
        Largest decoded image (width x height x planes x samples x bytes per sample) a reader
        decodes; ``0`` means no limit.

    Raises
    ------
    ConfigError
        The environment variable is not a size in bytes (``4000000000``, ``4GB``, ``4GiB``);
        a :class:`ValueError`.
    """
    if max_bytes is not None:
        return max(int(max_bytes), 0)
    return env_limit(MAX_BYTES_ENV, MAX_IMAGE_BYTES, what="a size in bytes", byte_units=True)


def _tiff_guard(path: Path, page: object, max_pixels: int, max_bytes: int) -> None:
    """The size guard on a TIFF page, from its tags: samples, bytes per sample, depth, chunk size."""
    width, height = int(page.imagewidth), int(page.imagelength)
    depth = int(getattr(page, "imagedepth", 1) or 1)
    dtype = page.dtype
    itemsize = dtype.itemsize if dtype is not None else max((int(page.bitspersample) + 7) // 8, 1)
    samples = int(page.samplesperpixel)
    check_decoded_size(path, width, height, max_pixels=max_pixels, max_bytes=max_bytes,
                       samples=samples, itemsize=itemsize, planes=depth)
    # tifffile decodes tile by tile (strip by strip): a declared tile larger than the image counts too
    chunks = tuple(int(c) for c in (getattr(page, "chunks", None) or ()))
    if max_bytes and chunks and math.prod(chunks) * itemsize > max_bytes:
        raise SEMReadError(path, f"TIFF tiles of {'x'.join(map(str, chunks))} samples decode to more than "
                                 f"the limit of {max_bytes:,} bytes (${MAX_BYTES_ENV})")


def _read_tiff(path: Path, max_pixels: int, max_bytes: int) -> tuple[np.ndarray, int]:
    import tifffile

    try:
        with library_calls(path), tifffile.TiffFile(path) as tif:
            try:  # the first page only: never walk (or count) the pages of the file
                page = tif.pages.first
            except IndexError:
                raise SEMReadError(path, "TIFF file has no pages") from None
            _tiff_guard(path, page, max_pixels, max_bytes)
            data = page.asarray()
            photometric = int(page.photometric)
            bps = int(page.bitspersample)
            axes = page.axes
            colormap = page.colormap
            extrasamples = tuple(getattr(page, "extrasamples", ()) or ())
    except SEMReadError:
        raise
    except MemoryError:
        raise SEMReadError(path, "not enough memory to decode this TIFF") from None
    except Exception as exc:  # tifffile raises many types on corrupt data
        raise SEMReadError(path, f"cannot decode TIFF ({type(exc).__name__}: {short_text(exc)})") from exc
    finite_check(path, data)

    # Bring the sample axis last; of any extra leading axes (depth, ...) keep the first.
    has_samples = "S" in axes and data.ndim == len(axes)
    if has_samples:
        data = np.moveaxis(data, axes.index("S"), -1)
    while data.ndim > (3 if has_samples else 2):
        data = data[0]
    if data.ndim < 2 or min(data.shape[:2]) == 0:
        raise SEMReadError(path, f"unsupported TIFF image shape {data.shape}")

    if photometric == 3:  # PALETTE
        if colormap is None:
            raise SEMReadError(path, "palette TIFF without a ColorMap tag")
        cmap = np.asarray(colormap)
        if cmap.ndim == 1:
            cmap = cmap[np.newaxis, :]
        # TIFF colour maps are 16-bit; some writers store 8-bit values in them.
        cmax = 255.0 if cmap.max() <= 255 else 65535.0
        lut = cmap.astype(np.float32) / np.float32(cmax)  # (C, N)
        idx = data.astype(np.intp)
        if idx.ndim != 2 or idx.max(initial=0) >= lut.shape[1]:
            raise SEMReadError(path, "palette indices do not match the ColorMap")
        rgb = np.moveaxis(lut[:, idx], 0, -1)
        return to_grey(rgb), bps

    if data.ndim == 3:  # keep the colour samples (alpha and extra samples dropped) before scaling
        if photometric in (5,):  # SEPARATED (CMYK)
            raise SEMReadError(path, "CMYK TIFF is not supported")
        n_colour = data.shape[-1] - len(extrasamples)
        if n_colour <= 0:
            n_colour = data.shape[-1]
        data = data[..., : 3 if n_colour >= 3 else 1]
    if np.issubdtype(data.dtype, np.integer) and 0 < bps < data.dtype.itemsize * 8:
        scaled = to_unit(data, float(2**bps - 1))
    else:
        scaled = to_unit(data)
    grey = to_grey(scaled)
    if photometric == 0:  # MINISWHITE
        grey = 1.0 - grey
    return np.ascontiguousarray(grey, dtype=np.float32), bps


def _pillow_guard(path: Path, im: object, max_pixels: int, max_bytes: int) -> None:
    """The size guard on an opened (not yet decoded) Pillow image: its size and mode."""
    from PIL import ImageMode

    try:
        desc = ImageMode.getmode(im.mode)
        samples, itemsize = len(desc.bands), np.dtype(desc.typestr).itemsize
    except (KeyError, TypeError, ValueError):
        samples, itemsize = len(im.getbands()), 4  # an unusual mode: count the widest sample
    check_decoded_size(path, int(im.size[0]), int(im.size[1]), max_pixels=max_pixels, max_bytes=max_bytes,
                       samples=samples, itemsize=itemsize)


def _read_pillow(path: Path, max_pixels: int, max_bytes: int) -> tuple[np.ndarray, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with library_calls(path), Image.open(path) as im:
            _pillow_guard(path, im, max_pixels, max_bytes)
            im.load()  # actually decode (the first frame only): truncated data must fail here
            return _pillow_pixels(path, im)
    except SEMReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise SEMReadError(path, f"image too large: {short_text(exc)}") from exc
    except MemoryError:
        raise SEMReadError(path, "not enough memory to decode this image") from None
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        raise SEMReadError(path, f"cannot decode image ({type(exc).__name__}: {short_text(exc)})") from exc


def _pillow_pixels(path: Path, im: object) -> tuple[np.ndarray, int]:
    """Grey ``[0, 1]`` pixels and bit depth of a decoded Pillow image."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        arr = np.asarray(im).astype(np.uint16)
        return to_unit(arr), 16
    if mode == "I":
        arr = np.asarray(im)
        # Pillow opens 16-bit grey PNGs as 32-bit "I" (older versions).
        bits = 16 if path.suffix.lower() == ".png" else 32
        return to_unit(arr, float(2**bits - 1)), bits
    if mode == "F":
        arr = np.asarray(im)
        finite_check(path, arr)
        return to_unit(arr), 32
    if mode == "L":
        return to_unit(np.asarray(im)), 8
    if mode == "LA":
        return to_unit(np.asarray(im)[..., 0]), 8
    if mode == "1":
        return to_unit(np.asarray(im.convert("L"))), 1
    if mode in ("RGB", "RGBA"):
        return to_grey(to_unit(np.asarray(im)[..., :3])), 8
    # P, PA, CMYK, YCbCr, LAB, HSV...: let Pillow apply the palette / colour space.
    rgb = im.convert("RGBA" if mode in ("P", "PA") else "RGB")
    return to_grey(to_unit(np.asarray(rgb)[..., :3])), 8


def read_image(
    path: str | Path, max_pixels: int | None = None, max_bytes: int | None = None
) -> tuple[np.ndarray, int]:
    """Read an image file as a grey ``float32`` array in ``[0, 1]``.

    Parameters
    ----------
    path : str or Path
        JPEG, PNG, TIFF or BMP file. Palette images get their palette applied, colour images
        are reduced to luminance (alpha dropped); of a multi-page TIFF only the first page is
        read (the others are never decoded).
    max_pixels : int, optional
        Largest width x height decoded (see :func:`max_image_pixels`); the check reads only
        the file header, so a decompression bomb is refused before it takes memory.
    max_bytes : int, optional
        Largest decoded size in bytes (see :func:`max_image_bytes`), checked from the header
        like ``max_pixels``: it counts samples per pixel, bytes per sample and planes.

    Returns
    -------
    image : numpy.ndarray
        ``float32`` ``(H, W)`` in ``[0, 1]``: integer samples divided by their range,
        floats kept when already in ``[0, 1]``, else min-max scaled.
    bit_depth : int
        Bits per stored sample (8 or 16 for usual SEM files).

    Raises
    ------
    SEMReadError
        Missing, empty, unsupported, too large or undecodable file; more than 4 samples per
        pixel; a float image without any finite value.
    ConfigError
        ``$SEMCATHODE_MAX_IMAGE_PIXELS`` or ``$SEMCATHODE_MAX_IMAGE_BYTES`` is not a valid limit.

    Warns
    -----
    SEMReadWarning
        Once per file: what tifffile / Pillow logged or warned while reading it, or float
        samples that are NaN or infinite (they take the nearest finite extreme).
    """
    p = check_path(path)
    pixels, nbytes = max_image_pixels(max_pixels), max_image_bytes(max_bytes)
    with one_warning(p):
        if p.suffix.lower() in TIFF_EXTENSIONS:
            img, bits = _read_tiff(p, pixels, nbytes)
        else:
            img, bits = _read_pillow(p, pixels, nbytes)
    if img.ndim != 2 or img.size == 0:
        raise SEMReadError(p, f"decoded to an unusable array of shape {img.shape}")
    return np.ascontiguousarray(img, dtype=np.float32), int(bits)


def read_sem(
    path: str | Path, min_size: int = 64, max_pixels: int | None = None, max_bytes: int | None = None
) -> SEMImage:
    """Read an SEM micrograph: grey pixels, bit depth and metadata.

    Parameters
    ----------
    path : str or Path
        JPEG, PNG, TIFF or BMP file.
    min_size : int
        Smallest accepted height and width in pixels.
    max_pixels : int, optional
        Largest accepted width x height, checked before decoding (see :func:`max_image_pixels`).
    max_bytes : int, optional
        Largest accepted decoded size in bytes, checked before decoding (see :func:`max_image_bytes`).

    Returns
    -------
    SEMImage
        The full frame (data bar included); crop with :func:`crop_data_bar`.

    Raises
    ------
    SEMReadError
        Missing, empty, unsupported, undecodable, too small or too large file.

    Warns
    -----
    SEMMetadataWarning
        A pixel size or frame size outside the plausible range (it is then ``None``), an
        unreadable number, a sidecar too large to be one.
    SEMReadWarning
        Once per file: what the image libraries said while reading it (see :func:`read_image`).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from PIL import Image
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "frame.png"
    ...     Image.fromarray(np.full((64, 96), 51, np.uint8)).save(path)
    ...     sem = read_sem(path)
    >>> sem.image.shape, sem.bit_depth, round(float(sem.image.max()), 3), sem.meta.source
    ((64, 96), 8, 0.2, 'none')
    """
    p = Path(path)
    with one_warning(p):  # the file is opened twice (pixels, tags): what libraries say is told once
        image, bits = read_image(p, max_pixels=max_pixels, max_bytes=max_bytes)
        h, w = image.shape
        if h < min_size or w < min_size:
            raise SEMReadError(p, f"image is {w}x{h} px, smaller than min_size={min_size} px")
        meta = read_metadata(p, width=w)
    if meta.bar_top is not None and not 0 < meta.bar_top <= h:
        warnings.warn(
            f"{p}: metadata bar_top={meta.bar_top} outside the image; ignored", stacklevel=2
        )
        meta.bar_top = None
    return SEMImage(path=p, image=image, meta=meta, bit_depth=bits)
