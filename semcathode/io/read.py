"""Read SEM micrographs: grey float pixels with size guards, plus their instrument metadata.

:func:`read_sem` is the entry point: pixels (:func:`read_image`), bit depth and metadata
(:func:`semcathode.io.metadata.read_metadata`). Every reader checks the image size from the
file header before decoding (TIFF included): an image larger than :data:`MAX_IMAGE_PIXELS`
(configurable, see :func:`max_image_pixels`) is refused with a :class:`SEMReadError` naming
the file and its dimensions. The data bar is cut off by :mod:`semcathode.io.databar`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._guards import SUPPORTED_EXTENSIONS, TIFF_EXTENSIONS, SEMReadError, check_path
from .metadata import SEMMetadata, read_metadata

__all__ = [
    "SEMReadError",
    "SEMImage",
    "SUPPORTED_EXTENSIONS",
    "MAX_IMAGE_PIXELS",
    "max_image_pixels",
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
_MAX_PIXELS_ENV = "SEMCATHODE_MAX_IMAGE_PIXELS"

#: ITU-R BT.601 luma weights (the same as Pillow's ``convert("L")``).
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


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


def to_unit(arr: np.ndarray, max_value: float | None = None) -> np.ndarray:
    """Scale an array to float32 ``[0, 1]``: integers by their range, floats kept or min-max scaled.

    Parameters
    ----------
    arr : numpy.ndarray
        Pixel values of any shape: bool, integer or float.
    max_value : float, optional
        The value that maps to 1 for integer input (e.g. ``4095`` for 12-bit samples);
        default the dtype's maximum.

    Returns
    -------
    numpy.ndarray
        ``float32``, same shape: integers divided by their range and clipped; floats kept when
        already in ``[0, 1]`` (non-finite values set to 0), else min-max scaled.

    Examples
    --------
    >>> import numpy as np
    >>> to_unit(np.array([0, 51, 255], dtype=np.uint8)).tolist()
    [0.0, 0.20000000298023224, 1.0]
    """
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        if max_value is None:
            max_value = float(np.iinfo(arr.dtype).max)
        out = arr.astype(np.float32) / np.float32(max_value)
        return np.clip(out, 0.0, 1.0, out=out)
    out = arr.astype(np.float32)
    finite = np.isfinite(out)
    if not finite.all():
        out[~finite] = 0.0
    lo, hi = (float(out.min()), float(out.max())) if out.size else (0.0, 0.0)
    if lo >= 0.0 and hi <= 1.0:
        return out
    if hi > lo:
        return (out - lo) / np.float32(hi - lo)
    return np.zeros_like(out)


def to_grey(arr: np.ndarray) -> np.ndarray:
    """Luminance of an ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` float array (alpha dropped).

    Parameters
    ----------
    arr : numpy.ndarray
        Image with values already scaled to ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        ``float32`` ``(H, W)``. For grey stored as RGB the result equals the channel.
    """
    if arr.ndim == 2:
        return arr.astype(np.float32, copy=False)
    if arr.ndim == 3 and arr.shape[2] == 1:
        return arr[..., 0].astype(np.float32, copy=False)
    if arr.ndim == 3 and arr.shape[2] == 2:  # grey + alpha
        return arr[..., 0].astype(np.float32, copy=False)
    if arr.ndim == 3 and arr.shape[2] >= 3:
        rgb = arr[..., :3].astype(np.float32, copy=False)
        grey = rgb @ _LUMA
        return np.clip(grey, 0.0, 1.0, out=grey)
    raise ValueError(f"cannot make a grey image from an array of shape {arr.shape}")


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
    ValueError
        The environment variable is not a non-negative integer.
    """
    if max_pixels is not None:
        return max(int(max_pixels), 0)
    env = os.environ.get(_MAX_PIXELS_ENV, "").strip()
    if env:
        try:
            value = int(float(env))
        except ValueError:
            raise ValueError(f"${_MAX_PIXELS_ENV}={env!r} is not a number of pixels") from None
        if value < 0:
            raise ValueError(f"${_MAX_PIXELS_ENV}={env!r} must be >= 0 (0 = no limit)")
        return value
    return max(int(MAX_IMAGE_PIXELS), 0)


def _check_pixels(path: Path, width: int, height: int, limit: int, extra: str = "") -> None:
    """Refuse an image larger than ``limit`` pixels before anything is decoded."""
    if width <= 0 or height <= 0:
        raise SEMReadError(path, f"header gives an image of {width}x{height} px")
    if limit and width * height > limit:
        raise SEMReadError(
            path,
            f"image is {width}x{height} px{extra} ({width * height:,} pixels), more than the limit of "
            f"{limit:,} pixels; raise it with ${_MAX_PIXELS_ENV} or max_pixels= if this is intended",
        )


def _read_tiff(path: Path, limit: int) -> tuple[np.ndarray, int]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.pages:
                raise SEMReadError(path, "TIFF file has no pages")
            page = tif.pages.first
            depth = int(getattr(page, "imagedepth", 1) or 1)
            _check_pixels(path, int(page.imagewidth), int(page.imagelength) * depth, limit,
                          f" x {depth} planes" if depth > 1 else "")
            data = page.asarray()
            photometric = int(page.photometric)
            bps = int(page.bitspersample)
            axes = page.axes
            colormap = page.colormap
            extrasamples = tuple(getattr(page, "extrasamples", ()) or ())
    except SEMReadError:
        raise
    except Exception as exc:  # tifffile raises many types on corrupt data
        raise SEMReadError(path, f"cannot decode TIFF ({type(exc).__name__}: {exc})") from exc

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

    if np.issubdtype(data.dtype, np.integer) and 0 < bps < data.dtype.itemsize * 8:
        scaled = to_unit(data, float(2**bps - 1))
    else:
        scaled = to_unit(data)
    if scaled.ndim == 3:
        if photometric in (5,):  # SEPARATED (CMYK)
            raise SEMReadError(path, "CMYK TIFF is not supported")
        n_colour = scaled.shape[-1] - len(extrasamples)
        if n_colour <= 0:
            n_colour = scaled.shape[-1]
        scaled = scaled[..., : 3 if n_colour >= 3 else 1]
    grey = to_grey(scaled)
    if photometric == 0:  # MINISWHITE
        grey = 1.0 - grey
    return np.ascontiguousarray(grey, dtype=np.float32), bps


def _read_pillow(path: Path, limit: int) -> tuple[np.ndarray, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            _check_pixels(path, int(im.size[0]), int(im.size[1]), limit)
            im.load()  # actually decode: truncated data must fail here
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
                return to_unit(np.asarray(im)), 32
            if mode == "L":
                return to_unit(np.asarray(im)), 8
            if mode == "LA":
                return to_unit(np.asarray(im)[..., 0]), 8
            if mode == "1":
                return to_unit(np.asarray(im.convert("L"))), 1
            if mode in ("RGB", "RGBA"):
                return to_grey(to_unit(np.asarray(im))), 8
            # P, PA, CMYK, YCbCr, LAB, HSV...: let Pillow apply the palette / colour space.
            rgb = im.convert("RGBA" if mode in ("P", "PA") else "RGB")
            return to_grey(to_unit(np.asarray(rgb))), 8
    except SEMReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise SEMReadError(path, f"image too large: {exc}") from exc
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        raise SEMReadError(path, f"cannot decode image ({type(exc).__name__}: {exc})") from exc


def read_image(path: str | Path, max_pixels: int | None = None) -> tuple[np.ndarray, int]:
    """Read an image file as a grey ``float32`` array in ``[0, 1]``.

    Parameters
    ----------
    path : str or Path
        JPEG, PNG, TIFF or BMP file. Palette images get their palette applied, colour images
        are reduced to luminance (alpha dropped); multi-page TIFFs give their first page.
    max_pixels : int, optional
        Largest width x height decoded (see :func:`max_image_pixels`); the check reads only
        the file header, so a decompression bomb is refused before it takes memory.

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
        Missing, empty, unsupported, too large or undecodable file.
    """
    p = check_path(path)
    limit = max_image_pixels(max_pixels)
    if p.suffix.lower() in TIFF_EXTENSIONS:
        img, bits = _read_tiff(p, limit)
    else:
        img, bits = _read_pillow(p, limit)
    if img.ndim != 2 or img.size == 0:
        raise SEMReadError(p, f"decoded to an unusable array of shape {img.shape}")
    return np.ascontiguousarray(img, dtype=np.float32), int(bits)


def read_sem(path: str | Path, min_size: int = 64, max_pixels: int | None = None) -> SEMImage:
    """Read an SEM micrograph: grey pixels, bit depth and metadata.

    Parameters
    ----------
    path : str or Path
        JPEG, PNG, TIFF or BMP file.
    min_size : int
        Smallest accepted height and width in pixels.
    max_pixels : int, optional
        Largest accepted width x height, checked before decoding (see :func:`max_image_pixels`).

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
        A pixel size or frame size outside the plausible range (it is then ``None``).

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
    image, bits = read_image(p, max_pixels=max_pixels)
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
