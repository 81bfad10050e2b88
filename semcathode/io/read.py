"""Read SEM micrographs into a grey float image plus instrument metadata; crop the data bar.

Three real metadata sources are understood, each read as the instrument wrote it:

* ``sne-sidecar``: the INI-like ``<image file>.txt`` written next to the image by SEC
  SNE tabletop SEMs (e.g. SNE-4500M Plus). Its ``Pixel Size`` is in µm for the
  instrument's scan frame (``Frame Size``, 480 px wide); it is rescaled to the width of
  the saved image.
* ``zeiss-cz-sem``: TIFF tag 34118 (``CZ_SEM``), parsed by :mod:`tifffile`.
* ``fei``: TIFF tags 34680/34682 (``FEI_SFEG`` / ``FEI_HELIOS``), parsed by
  :mod:`tifffile`. The data bar height is known from ``[Image] ResolutionY`` (or
  ``[PrivateFei] DatabarHeight``).

Fields that a source does not state are ``None``: nothing is guessed. Metadata is checked
where it enters: a pixel size outside :data:`PIXEL_SIZE_RANGE_UM` (1 nm/px .. 100 µm/px), not
finite, in an unknown unit, or derived from a non-positive ``Frame Size`` is treated as
unknown (``None``) with a :class:`SEMMetadataWarning` naming the file and the raw value, so
no infinite or negative pixel size ever leaves this module. Sidecar lengths may carry a unit
(``nm``, ``um``/``µm``, ``mm``); without one they are in µm.

Every reader checks the image size from the file header before decoding (TIFF included):
an image larger than :data:`MAX_IMAGE_PIXELS` (configurable, see :func:`max_image_pixels`)
is refused with a :class:`SEMReadError` naming the file and its dimensions.

The instrument's data bar (a band of text and scale bar at the bottom of the frame) is
found by :func:`find_data_bar`: metadata when the vendor says where it is, else a
detector looking for a bottom band dominated by near-black / near-white pixels with a
sharp edge at its top, else a fixed fraction of the height.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SEMReadError",
    "SEMMetadata",
    "SEMImage",
    "BarCrop",
    "SUPPORTED_EXTENSIONS",
    "MAX_IMAGE_PIXELS",
    "PIXEL_SIZE_RANGE_UM",
    "SEMMetadataWarning",
    "max_image_pixels",
    "read_image",
    "read_metadata",
    "read_sem",
    "find_data_bar",
    "crop_data_bar",
    "to_grey",
]

#: File name extensions :func:`read_image` accepts (lower case). The one list of the package:
#: folder scans (:mod:`semcathode.data.manifest`, the CLI) pick up exactly what the reader can read.
SUPPORTED_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
_TIFF_EXTENSIONS = (".tif", ".tiff")

#: Largest image (width x height, in pixels) any reader decodes, checked from the file header
#: before the pixels are decoded. The default equals the size at which Pillow refuses an image
#: as a decompression bomb (2 x ``PIL.Image.MAX_IMAGE_PIXELS``): about 179 MP, i.e. ~0.7 GB as
#: float32. Override per call (``max_pixels=``), with ``$SEMCATHODE_MAX_IMAGE_PIXELS``, or by
#: assigning this attribute; ``0`` disables the check (Pillow's own check still applies to
#: JPEG/PNG/BMP unless ``PIL.Image.MAX_IMAGE_PIXELS`` is raised too).
MAX_IMAGE_PIXELS: int = 178_956_970
_MAX_PIXELS_ENV = "SEMCATHODE_MAX_IMAGE_PIXELS"

#: Plausible SEM pixel sizes in µm/px (1 nm/px .. 100 µm/px). A pixel size outside this range
#: (or not finite) is treated as unknown (``None``) with a :class:`SEMMetadataWarning`.
PIXEL_SIZE_RANGE_UM: tuple[float, float] = (1e-3, 100.0)

#: ITU-R BT.601 luma weights (the same as Pillow's ``convert("L")``).
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

#: Width in pixels of the SNE scan frame when the sidecar does not state ``Frame Size``.
_SNE_DEFAULT_FRAME_WIDTH = 480

# Detection parameters of the data-bar detector (see ``_detect_bar``).
_DARK = 0.10  # a pixel <= this is "near-black"
_BRIGHT = 0.90  # a pixel >= this is "near-white"
_SEARCH_FRACTION = 0.25  # the bar lies within the bottom quarter of the frame
_BAND_MIN_MEAN = 0.80  # mean extreme-pixel fraction over the whole band
_BAND_ROW_MIN = 0.50  # a band row is "bar-like" when >= this fraction is extreme ...
_BAND_ROWS_BARLIKE = 0.85  # ... and at least this share of band rows are bar-like
_TOP_MIN_MEAN = 0.75  # the first rows of the band must be mostly extreme
_EDGE_MIN = 0.30  # extreme fraction must jump by at least this at the top edge
_ABOVE_ROW_MAX = 0.75  # the row just above the top is not mostly extreme
_INK_MIN = 0.005  # the band holds text: >= this share of its pixels is across mid-grey


class SEMMetadataWarning(UserWarning):
    """Instrument metadata that is implausible or unreadable; the value is treated as unknown."""


class SEMReadError(ValueError):
    """An SEM file could not be read; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass
class SEMMetadata:
    """Instrument metadata of one micrograph; ``None`` wherever the source is silent.

    Attributes
    ----------
    pixel_size_um : float or None
        Micrometres per pixel at the width of the image as stored (or at the ``width``
        passed to :func:`read_metadata`).
    magnification : float or None
        Nominal magnification (e.g. 500.0 for ``x500``).
    voltage_kv : float or None
        Accelerating voltage in kV.
    detector : str or None
        Detector name or mode (``SED``, ``HE-SE2``, ``ETD`` ...).
    acq_date : str or None
        Acquisition date, ISO ``YYYY-MM-DD``.
    brightness, contrast : float or None
        Brightness / contrast settings in the instrument's own units.
    instrument : str or None
        Instrument model.
    source : str
        ``'sne-sidecar'``, ``'zeiss-cz-sem'``, ``'fei'`` or ``'none'``.
    bar_top : int or None
        First row of the data bar when the vendor metadata tells it.
    """

    pixel_size_um: float | None = None
    magnification: float | None = None
    voltage_kv: float | None = None
    detector: str | None = None
    acq_date: str | None = None
    brightness: float | None = None
    contrast: float | None = None
    instrument: str | None = None
    source: str = "none"
    bar_top: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain ``dict`` (JSON-serialisable)."""
        return dataclasses.asdict(self)


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


@dataclass(frozen=True)
class BarCrop:
    """Where the data bar starts.

    Attributes
    ----------
    row : int
        First row of the data bar, i.e. the number of rows kept (``H`` when nothing is cut).
    method : str
        ``'metadata'``, ``'detected'``, ``'fraction'`` or ``'none'``.
    """

    row: int
    method: str


# --------------------------------------------------------------------------- pixels


def _check_path(path: str | Path) -> Path:
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


def _scale(arr: np.ndarray, max_value: float | None = None) -> np.ndarray:
    """Scale an array to float32 ``[0, 1]``: integers by their range, floats clipped or min-max."""
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
        scaled = _scale(data, float(2**bps - 1))
    else:
        scaled = _scale(data)
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
                return _scale(arr), 16
            if mode == "I":
                arr = np.asarray(im)
                # Pillow opens 16-bit grey PNGs as 32-bit "I" (older versions).
                bits = 16 if path.suffix.lower() == ".png" else 32
                return _scale(arr, float(2**bits - 1)), bits
            if mode == "F":
                return _scale(np.asarray(im)), 32
            if mode == "L":
                return _scale(np.asarray(im)), 8
            if mode == "LA":
                return _scale(np.asarray(im)[..., 0]), 8
            if mode == "1":
                return np.asarray(im.convert("L")).astype(np.float32) / 255.0, 1
            if mode in ("RGB", "RGBA"):
                return to_grey(_scale(np.asarray(im))), 8
            # P, PA, CMYK, YCbCr, LAB, HSV...: let Pillow apply the palette / colour space.
            rgb = im.convert("RGBA" if mode in ("P", "PA") else "RGB")
            return to_grey(_scale(np.asarray(rgb))), 8
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
    p = _check_path(path)
    limit = max_image_pixels(max_pixels)
    if p.suffix.lower() in _TIFF_EXTENSIONS:
        img, bits = _read_tiff(p, limit)
    else:
        img, bits = _read_pillow(p, limit)
    if img.ndim != 2 or img.size == 0:
        raise SEMReadError(p, f"decoded to an unusable array of shape {img.shape}")
    return np.ascontiguousarray(img, dtype=np.float32), int(bits)


# --------------------------------------------------------------------------- metadata


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")

_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?![\d.])")

_LENGTH_TO_UM = {
    "pm": 1e-6,
    "nm": 1e-3,
    "um": 1.0,
    "µm": 1.0,  # micro sign U+00B5
    "μm": 1.0,  # Greek mu U+03BC
    "mm": 1e3,
    "cm": 1e4,
    "m": 1e6,
}
_VOLT_TO_KV = {"v": 1e-3, "kv": 1.0}
_UNIT = re.compile(r"\s*([A-Za-zµμ]+)")


def _first_number(text: Any) -> float | None:
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float, np.integer, np.floating)):
        v = float(text)
        return v if np.isfinite(v) else None
    if not isinstance(text, str):
        return None
    m = _NUMBER.search(text)
    if not m:
        return None
    v = float(m.group())
    return v if math.isfinite(v) else None  # '1e999' is no number an instrument writes


def _warn_meta(where: Path, message: str) -> None:
    warnings.warn(f"{where}: {message}", SEMMetadataWarning, stacklevel=4)


def _plausible_pixel(value_um: float | None, where: Path, raw: Any) -> float | None:
    """``value_um`` when finite and within :data:`PIXEL_SIZE_RANGE_UM`, else ``None`` with a warning."""
    if value_um is None:
        return None
    lo, hi = PIXEL_SIZE_RANGE_UM
    if not (math.isfinite(value_um) and lo <= value_um <= hi):
        _warn_meta(
            where,
            f"pixel size {raw!r} gives {value_um:.4g} µm/px, outside the plausible SEM range "
            f"{lo:g}..{hi:g} µm/px; pixel size treated as unknown",
        )
        return None
    return float(value_um)


def _parse_length(raw: str, default_unit: str = "um") -> tuple[float | None, str]:
    """``'0.7'``, ``'0.7 um'``, ``'700 nm'``, ``'0.7 mm'`` -> (µm, '') or (None, problem)."""
    m = _NUMBER.search(raw)
    if not m:
        return None, "no number"
    number = float(m.group())
    if not math.isfinite(number):
        return None, "not a finite number"
    u = _UNIT.match(raw[m.end():])
    unit = u.group(1) if u else default_unit
    factor = _LENGTH_TO_UM.get(unit, _LENGTH_TO_UM.get(unit.lower()))
    if factor is None:
        return None, f"unknown unit {unit!r} (known: nm, um, µm, mm)"
    return number * factor, ""


def _value_unit(entry: Any) -> tuple[Any, str]:
    """Split a tifffile CZ_SEM entry ``(name, value[, unit])`` into ``(value, unit)``.

    When tifffile could not split a value such as ``'50.00 K X'`` the unit stays inside
    the string; it is then separated here.
    """
    if isinstance(entry, tuple):
        value = entry[1] if len(entry) > 1 else None
        unit = str(entry[2]) if len(entry) > 2 else ""
    else:
        value, unit = entry, ""
    if isinstance(value, str) and not unit:
        m = _NUMBER.search(value)
        if m:
            unit = value[m.end() :].strip()
    return value, unit


def _length_um(value: Any, unit: str) -> float | None:
    number = _first_number(value)
    if number is None:
        return None
    key = unit.strip().replace(" ", "")
    factor = _LENGTH_TO_UM.get(key, _LENGTH_TO_UM.get(key.lower()))
    if factor is None:
        return None
    return number * factor


def _voltage_kv(value: Any, unit: str) -> float | None:
    number = _first_number(value)
    if number is None:
        return None
    factor = _VOLT_TO_KV.get(unit.strip().lower())
    if factor is None:
        return None
    return number * factor


def _magnification(value: Any, unit: str = "") -> float | None:
    """Parse ``(105, 'X')``, ``'x500'``, ``'x1,000'``, ``'50.00 K X'`` or ``'1.2 M X'``."""
    if isinstance(value, str):
        value = _THOUSANDS.sub(lambda m: m.group().replace(",", ""), value)
    number = _first_number(value)
    if number is None or number <= 0:
        return None
    rest = unit
    if isinstance(value, str):
        m = _NUMBER.search(value)
        rest = value[m.end() :] + " " + unit if m else unit
    tokens = rest.replace("x", " ").replace("X", " ").split()
    prefix = tokens[0] if tokens else ""
    return number * {"k": 1e3, "K": 1e3, "M": 1e6}.get(prefix, 1.0)


def _iso_date(text: Any, formats: tuple[str, ...]) -> str | None:
    if not isinstance(text, str):
        return None
    text = text.strip()
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    m = re.search(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", text)
    if m:
        try:
            return datetime(int(m.group(1)), int(m.group(2)), int(m.group(3))).date().isoformat()
        except ValueError:
            return None
    return None


def _clean_str(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    s = str(value).strip()
    return s or None


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header, without decoding the pixels."""
    try:
        if path.suffix.lower() in _TIFF_EXTENSIONS:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = tif.pages.first
                return int(page.imagewidth), int(page.imagelength)
        from PIL import Image

        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except Exception:
        return None


def _sne_sidecar_path(path: Path) -> Path | None:
    """``<image>.txt`` next to the image; ``<stem>.txt`` only when it is an SNE sidecar."""
    primary = path.with_name(path.name + ".txt")
    if primary.is_file():
        return primary
    alt = path.with_suffix(".txt")
    if alt.is_file():
        try:
            head = alt.read_bytes()[:4096].decode("utf-8", errors="replace")
        except OSError:
            return None
        if "[Image Info]" in head and "Model" in head:
            return alt
    return None


def _decode_text(raw: bytes) -> str:
    for enc in ("utf-8-sig", "cp949"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", errors="replace")


def _parse_sne(text: str) -> dict[tuple[str, str], str]:
    """INI-like ``key : value`` lines; key is ``(section, name)``, first occurrence wins."""
    out: dict[tuple[str, str], str] = {}
    section = ""
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1].strip(" -\t").lower()
            continue
        if ":" not in s:
            continue
        key, value = s.split(":", 1)
        k = (section, key.strip().lower())
        out.setdefault(k, value.strip())
        out.setdefault(("*", key.strip().lower()), value.strip())
    return out


def _sne_metadata(sidecar: Path, width: int | None) -> SEMMetadata:
    text = _decode_text(sidecar.read_bytes())
    kv = _parse_sne(text)

    def get(name: str, section: str | None = None) -> str | None:
        if section is not None and (section, name) in kv:
            return kv[(section, name)] or None
        return kv.get(("*", name)) or None

    meta = SEMMetadata(source="sne-sidecar")
    meta.instrument = _clean_str(get("model"))
    meta.acq_date = _iso_date(get("date", "image info"), ())
    volt = get("acceleated voltage") or get("accelerated voltage")
    if volt:
        m = re.search(rf"({_NUMBER.pattern})\s*(k?v)", volt, re.IGNORECASE)
        if m:
            meta.voltage_kv = _voltage_kv(m.group(1), m.group(2))
    mag = get("magnification", "image info")
    if mag:
        meta.magnification = _magnification(mag)
    meta.detector = _clean_str(get("detector mode"))
    meta.brightness = _first_number(get("brightness", "image process"))
    meta.contrast = _first_number(get("contrast", "image process"))
    meta.pixel_size_um = _sne_pixel_size(sidecar, get("pixel size"), get("frame size") or get("image size"), width)
    return meta


def _sne_pixel_size(sidecar: Path, raw_pixel: str | None, raw_frame: str | None, width: int | None) -> float | None:
    """µm/px at ``width`` from the sidecar's ``Pixel Size`` (µm unless a unit is given) and
    ``Frame Size``; ``None`` (with a :class:`SEMMetadataWarning`) when either is implausible."""
    if raw_pixel is None:
        return None
    pixel, problem = _parse_length(raw_pixel)
    if pixel is None:
        _warn_meta(sidecar, f"Pixel Size {raw_pixel!r} is unreadable ({problem}); pixel size treated as unknown")
        return None
    if not pixel > 0:
        _warn_meta(sidecar, f"Pixel Size {raw_pixel!r} is not positive; pixel size treated as unknown")
        return None
    if raw_frame is None:
        frame_w = float(_SNE_DEFAULT_FRAME_WIDTH)
    else:
        m = _NUMBER.search(raw_frame)
        frame_w = float(m.group()) if m else float("nan")
        if not (math.isfinite(frame_w) and frame_w >= 1):
            _warn_meta(sidecar, f"Frame Size {raw_frame!r} is not a positive width in pixels; "
                                "pixel size treated as unknown")
            return None
    if not width:
        _warn_meta(sidecar, "image width unknown, pixel size left unset")
        return None
    return _plausible_pixel(pixel * frame_w / float(width), sidecar, f"Pixel Size : {raw_pixel}")


def _zeiss_metadata(sem: dict[str, Any], page_width: int, width: int | None, where: Path) -> SEMMetadata:
    meta = SEMMetadata(source="zeiss-cz-sem")
    unreadable = []
    for key in ("ap_image_pixel_size", "ap_pixel_size"):
        if key in sem:
            value, unit = _value_unit(sem[key])
            um = _length_um(value, unit)
            if um is None:
                unreadable.append(f"{key} = {value!r} {unit!r}")
                continue
            meta.pixel_size_um = _plausible_pixel(um * page_width / float(width or page_width), where,
                                                  f"{key} = {value!r} {unit}")
            break
    else:
        if unreadable:
            _warn_meta(where, f"{'; '.join(unreadable)}: not a finite length in a known unit; "
                              "pixel size treated as unknown")
    if "ap_mag" in sem:
        meta.magnification = _magnification(*_value_unit(sem["ap_mag"]))
    for key in ("ap_actualkv", "ap_manualkv"):
        if key in sem:
            kv = _voltage_kv(*_value_unit(sem[key]))
            if kv is not None:
                meta.voltage_kv = kv
                break
    for key in ("dp_detector_type", "dp_detector_channel"):
        if key in sem:
            det = _clean_str(_value_unit(sem[key])[0])
            if det:
                meta.detector = det
                break
    if "ap_date" in sem:
        meta.acq_date = _iso_date(
            _value_unit(sem["ap_date"])[0], ("%d %b %Y", "%d %B %Y", "%d.%m.%Y", "%m/%d/%Y")
        )
    if "ap_brightness" in sem:
        meta.brightness = _first_number(_value_unit(sem["ap_brightness"])[0])
    if "ap_contrast" in sem:
        meta.contrast = _first_number(_value_unit(sem["ap_contrast"])[0])
    model = None
    for key in ("dp_sem", "dp_column_type", "sv_serial_number"):
        if key in sem:
            model = _clean_str(_value_unit(sem[key])[0])
            if model:
                break
    meta.instrument = f"Zeiss {model}" if model else "Zeiss"
    return meta


def _fei_metadata(
    fei: dict[str, Any], page_width: int, page_height: int, width: int | None, where: Path
) -> SEMMetadata:
    meta = SEMMetadata(source="fei")

    def sect(name: str) -> dict[str, Any]:
        v = fei.get(name)
        return v if isinstance(v, dict) else {}

    scan, beam, image = sect("Scan"), sect("Beam"), sect("Image")
    res_x = _first_number(image.get("ResolutionX"))
    ref_w = res_x if res_x else float(page_width)
    pw = _first_number(scan.get("PixelWidth")) or _first_number(sect("EScan").get("PixelWidth"))
    if pw is not None:  # metres -> µm
        meta.pixel_size_um = _plausible_pixel(pw * 1e6 * ref_w / float(width or page_width), where,
                                              f"PixelWidth = {pw!r} m")
    hv = _first_number(beam.get("HV"))
    if hv is None:
        beam_name = beam.get("Beam")
        if isinstance(beam_name, str):
            hv = _first_number(sect(beam_name).get("HV"))
    if hv is None:
        hv = _first_number(sect("EBeam").get("HV"))
    if hv is not None:
        meta.voltage_kv = hv / 1000.0  # volts -> kV
    # FEI's displayed magnification is the reference canvas width over the field width.
    canvas = _first_number(image.get("MagCanvasRealWidth"))
    hfw = _first_number(scan.get("HorFieldsize")) or _first_number(sect("EBeam").get("HFW"))
    if canvas and hfw and canvas > 0 and hfw > 0:
        meta.magnification = canvas / hfw
    det_name = _clean_str(sect("Detectors").get("Name"))
    meta.detector = det_name
    if det_name:
        det = sect(det_name)
        meta.brightness = _first_number(det.get("Brightness"))
        meta.contrast = _first_number(det.get("Contrast"))
    user = sect("User")
    meta.acq_date = _iso_date(user.get("Date"), ("%m/%d/%Y", "%d.%m.%Y", "%Y-%m-%d"))
    if meta.acq_date is None:
        created = sect("PrivateFei").get("TimeOfCreation")
        if isinstance(created, str):
            meta.acq_date = _iso_date(created.split()[0] if created.split() else "", ("%d.%m.%Y",))
    system = sect("System")
    model = _clean_str(system.get("SystemType"))
    if model:
        model = model.replace('"', "").strip()
    meta.instrument = f"FEI {model}" if model else "FEI"
    # Data bar: the scanned image is ResolutionY rows tall; the rest is the bar.
    res_y = _first_number(image.get("ResolutionY"))
    bar_h = _first_number(sect("PrivateFei").get("DatabarHeight"))
    if res_y and 0 < res_y <= page_height and (res_x is None or res_x == page_width):
        meta.bar_top = int(res_y)
    elif bar_h is not None and 0 <= bar_h < page_height:
        meta.bar_top = int(page_height - bar_h)
    return meta


def read_metadata(path: str | Path, width: int | None = None) -> SEMMetadata:
    """Read instrument metadata of an SEM image.

    Sources, in order: FEI TIFF tag (34680/34682), Zeiss ``CZ_SEM`` TIFF tag (34118),
    SNE sidecar ``<image file>.txt``. Fields a source does not state are ``None``.

    Parameters
    ----------
    path : str or Path
        The image file.
    width : int, optional
        Width in pixels that ``pixel_size_um`` should refer to; by default the width of
        the stored image, read from the file header.

    Returns
    -------
    SEMMetadata
        ``source='none'`` and all fields ``None`` when no metadata is found.

    Raises
    ------
    SEMReadError
        Missing, empty or unsupported file, or an undecodable TIFF header.
    """
    p = _check_path(path)
    if width is not None:
        width = int(width)
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
    if p.suffix.lower() in _TIFF_EXTENSIONS:
        import tifffile

        try:
            with tifffile.TiffFile(p) as tif:
                page = tif.pages.first
                pw, ph = int(page.imagewidth), int(page.imagelength)
                fei = tif.fei_metadata if tif.is_fei else None
                sem = tif.sem_metadata if tif.is_sem else None
        except Exception as exc:
            raise SEMReadError(p, f"cannot read TIFF header ({type(exc).__name__}: {exc})") from exc
        try:
            if fei:
                return _fei_metadata(fei, pw, ph, width, p)
            if sem:
                return _zeiss_metadata(sem, pw, width, p)
        except Exception as exc:  # malformed vendor block: say so, do not guess
            warnings.warn(
                f"{p}: cannot interpret vendor TIFF metadata ({type(exc).__name__}: {exc})",
                stacklevel=2,
            )
    sidecar = _sne_sidecar_path(p)
    if sidecar is not None:
        if width is None:
            size = _image_size(p)
            width = size[0] if size else None
        try:
            return _sne_metadata(sidecar, width)
        except OSError as exc:
            warnings.warn(f"{sidecar}: cannot read sidecar ({exc})", stacklevel=2)
    return SEMMetadata()


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


# --------------------------------------------------------------------------- data bar


def _as_grey_float(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {arr.shape}")
    if arr.dtype == bool or np.issubdtype(arr.dtype, np.integer):
        arr = _scale(arr)
    return to_grey(arr.astype(np.float32, copy=False))


def _detect_bar(grey: np.ndarray) -> int | None:
    """Top row of a bottom data bar, or ``None`` when there is no convincing one.

    Per row, the fraction of near-black or near-white pixels (``ext``) is computed for
    the bottom quarter of the frame. A candidate top row ``t`` must satisfy:

    * the band ``[t, H)`` is bar-like: mean ``ext`` >= 0.8 and >= 85 % of its rows have
      ``ext`` >= 0.5 (text and scale bar on a flat black or white fill);
    * its first ``k`` rows are mostly extreme (mean ``ext`` >= 0.75);
    * the ``k`` rows above ``t`` are not: ``ext`` jumps by >= 0.3 at ``t``;
    * the band carries text: on its bar-like rows >= 0.5 % of the pixels lie in the
      other half of the grey range than the fill (light text on black, dark text on
      white, sharp or blurred), so a plain black vacuum region is no bar;
    * the row just above ``t`` is not mostly extreme (``ext`` < 0.75).

    Among candidates the strongest edge wins. The top must lie in the bottom quarter
    with non-bar rows above it, so an all-dark or saturated frame gives ``None``.
    """
    h, w = grey.shape
    k = max(3, h // 200)
    min_rows = max(k, h // 100)
    lo = h - int(round(_SEARCH_FRACTION * h))
    start = max(lo - k, 0)
    if h - start < min_rows + k or w < 2:
        return None
    band = grey[start:]
    dark = (band <= _DARK).mean(axis=1)
    bright = (band >= _BRIGHT).mean(axis=1)
    ext = dark + bright  # (n,) fraction of extreme pixels per row
    n = ext.size
    csum = np.concatenate([[0.0], np.cumsum(ext)])
    barlike = ext >= _BAND_ROW_MIN
    # text shows as the other half of the grey range; counted on bar-like rows only
    upper = np.where(barlike, (band >= 0.5).mean(axis=1), 0.0)
    cupper = np.concatenate([[0.0], np.cumsum(upper)])
    cbar = np.concatenate([[0.0], np.cumsum(barlike)])
    # candidate tops (indices into ext): need k rows above inside the window
    t = np.arange(max(k, lo - start + 1), n - min_rows + 1)
    if t.size == 0:
        return None
    length = n - t
    band_mean = (csum[n] - csum[t]) / length
    band_barlike = (cbar[n] - cbar[t]) / length
    top_mean = (csum[t + k] - csum[t]) / k
    above_mean = (csum[t] - csum[t - k]) / k
    edge = top_mean - above_mean
    n_barlike = np.maximum(cbar[n] - cbar[t], 1.0)
    upper_share = (cupper[n] - cupper[t]) / n_barlike
    ink = np.minimum(upper_share, 1.0 - upper_share)
    ok = (
        (band_mean >= _BAND_MIN_MEAN)
        & (band_barlike >= _BAND_ROWS_BARLIKE)
        & (top_mean >= _TOP_MIN_MEAN)
        & (edge >= _EDGE_MIN)
        & (ink >= _INK_MIN)
        & (ext[t - 1] < _ABOVE_ROW_MAX)
    )
    if not ok.any():
        return None
    score = np.where(ok, edge, -np.inf)
    best = int(t[int(np.argmax(score))])
    return start + best


_METHODS = ("auto", "metadata", "detect", "fraction", "none")


def find_data_bar(
    image: np.ndarray,
    meta: SEMMetadata | None = None,
    method: str = "auto",
    fraction: float = 0.0667,
) -> BarCrop:
    """Find the first row of the instrument's data bar at the bottom of a micrograph.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` grey image (float in ``[0, 1]`` or integer), or ``(H, W, C)`` colour.
    meta : SEMMetadata, optional
        Its ``bar_top`` is used when known.
    method : {'auto', 'metadata', 'detect', 'fraction', 'none'}
        ``'auto'``: metadata, else detection, else ``fraction``. The others force one
        way; forced ``'metadata'`` or ``'detect'`` give ``BarCrop(H, 'none')`` when they
        find nothing.
    fraction : float
        Height fraction of the bar used by ``'fraction'`` (and the ``'auto'`` fallback).

    Returns
    -------
    BarCrop
        ``row`` is the number of rows to keep.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {arr.shape}")
    h = int(arr.shape[0])
    if method == "none":
        return BarCrop(h, "none")
    if method in ("auto", "metadata"):
        top = meta.bar_top if meta is not None else None
        if top is not None and 0 < int(top) <= h:
            return BarCrop(int(top), "metadata")
        if method == "metadata":
            return BarCrop(h, "none")
    if method in ("auto", "detect"):
        row = _detect_bar(_as_grey_float(arr))
        if row is not None:
            return BarCrop(row, "detected")
        if method == "detect":
            return BarCrop(h, "none")
    cut = int(round(fraction * h))
    return BarCrop(max(h - cut, 1), "fraction")


def crop_data_bar(
    image: np.ndarray,
    meta: SEMMetadata | None = None,
    method: str = "auto",
    fraction: float = 0.0667,
) -> tuple[np.ndarray, BarCrop]:
    """Cut the data bar off the bottom of an image.

    Parameters
    ----------
    image, meta, method, fraction
        As for :func:`find_data_bar`.

    Returns
    -------
    cropped : numpy.ndarray
        ``image[:crop.row]`` (a view).
    crop : BarCrop
        Where and how the cut was decided.
    """
    crop = find_data_bar(image, meta=meta, method=method, fraction=fraction)
    return np.asarray(image)[: crop.row], crop
