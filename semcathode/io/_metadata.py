"""Instrument metadata of SEM micrographs: SNE sidecars, Zeiss and FEI TIFF tags.

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
(``nm``, ``um``/``µm``, ``mm``); without one they are in µm. Numbers may use one decimal comma
(``0,7``); one that could be read two ways (``1,234``, ``1.234,5``) is refused with a warning.

Sidecars are read only up to :data:`MAX_SIDECAR_BYTES` (``$SEMCATHODE_MAX_SIDECAR_BYTES``): a
larger one is skipped with a warning, and ``<stem>.txt`` is recognised from its first 4 KiB. Every
raw value quoted in a warning is cut to a short line.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config._limits import env_limit, short_repr, short_text
from ._guards import TIFF_EXTENSIONS, SEMReadError, SEMReadWarning, check_path
from ._quiet import library_calls, one_warning
from ._sidecar import find_sidecar, parse_sne, read_sidecar
from ._units import (
    NO_NUMBER,
    NUMBER,
    NUMBER_TEXT,
    clean_str,
    first_number,
    iso_date,
    length_um,
    magnification,
    parse_length,
    parse_number,
    value_unit,
    voltage_kv,
)

__all__ = [
    "SEMMetadata",
    "SEMMetadataWarning",
    "PIXEL_SIZE_RANGE_UM",
    "MAX_SIDECAR_BYTES",
    "max_sidecar_bytes",
    "read_metadata",
]

#: Plausible SEM pixel sizes in µm/px (1 nm/px .. 100 µm/px). A pixel size outside this range
#: (or not finite) is treated as unknown (``None``) with a :class:`SEMMetadataWarning`.
PIXEL_SIZE_RANGE_UM: tuple[float, float] = (1e-3, 100.0)

#: Largest sidecar read, in bytes (SNE sidecars are about 2 KB); a larger one is skipped with a
#: :class:`SEMMetadataWarning`. ``$SEMCATHODE_MAX_SIDECAR_BYTES`` overrides it (``0`` = no limit).
MAX_SIDECAR_BYTES: int = 1 << 20
_MAX_SIDECAR_ENV = "SEMCATHODE_MAX_SIDECAR_BYTES"

#: Width in pixels of the SNE scan frame when the sidecar does not state ``Frame Size``.
_SNE_DEFAULT_FRAME_WIDTH = 480
#: ``'15 kV'``, ``'15,5 kV'``, ``'500V'`` in an SNE ``Accelerated Voltage`` line.
_VOLTAGE = re.compile(rf"({NUMBER_TEXT.pattern})\s*(k?v)", re.IGNORECASE)


class SEMMetadataWarning(SEMReadWarning):
    """Instrument metadata that is implausible or unreadable; the value is treated as unknown."""


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
        """Return the fields as a plain ``dict`` (JSON-serialisable).

        Returns
        -------
        dict
            Field name -> value.
        """
        return dataclasses.asdict(self)


def _warn_meta(where: Path, message: str) -> None:
    warnings.warn(f"{where}: {message}", SEMMetadataWarning, stacklevel=4)


def _checked(where: Path, label: str, raw: Any, parsed: float | None) -> float | None:
    """``parsed``; when it is ``None`` but ``raw`` holds an unreadable number (``'1,234'``,
    ``'1e999'``), a :class:`SEMMetadataWarning` naming the file, the field and the raw value."""
    if parsed is None and isinstance(raw, str):
        problem = parse_number(raw)[1]
        if problem and problem != NO_NUMBER:
            _warn_meta(where, f"{label} {short_repr(raw)}: {problem}; treated as unknown")
    return parsed


def _plausible_pixel(value_um: float | None, where: Path, raw: Any) -> float | None:
    """``value_um`` when finite and within :data:`PIXEL_SIZE_RANGE_UM`, else ``None`` with a warning."""
    if value_um is None:
        return None
    lo, hi = PIXEL_SIZE_RANGE_UM
    if not (math.isfinite(value_um) and lo <= value_um <= hi):
        _warn_meta(
            where,
            f"pixel size {short_repr(raw, 160)} gives {value_um:.4g} µm/px, outside the plausible SEM range "
            f"{lo:g}..{hi:g} µm/px; pixel size treated as unknown",
        )
        return None
    return float(value_um)


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header, without decoding the pixels."""
    try:
        with library_calls(path):
            if path.suffix.lower() in TIFF_EXTENSIONS:
                import tifffile

                with tifffile.TiffFile(path) as tif:
                    page = tif.pages.first
                    return int(page.imagewidth), int(page.imagelength)
            from PIL import Image

            with Image.open(path) as im:
                return int(im.size[0]), int(im.size[1])
    except Exception:
        return None


def max_sidecar_bytes() -> int:
    """The sidecar size limit in force: ``$SEMCATHODE_MAX_SIDECAR_BYTES``, else :data:`MAX_SIDECAR_BYTES`.

    Returns
    -------
    int
        Largest sidecar read, in bytes; ``0`` means no limit.

    Raises
    ------
    ConfigError
        The variable is set to something other than a size in bytes (``2000000``, ``2MB``, ``2MiB``).
    """
    return env_limit(_MAX_SIDECAR_ENV, MAX_SIDECAR_BYTES, what="a size in bytes", byte_units=True)


def _sidecar_text(sidecar: Path) -> str | None:
    """The text of ``sidecar``, or ``None`` (with a warning) when it is too large to be one."""
    limit = max_sidecar_bytes()
    text, size = read_sidecar(sidecar, limit)
    if text is None:
        _warn_meta(sidecar, f"{size:,} bytes, too large to be an instrument sidecar (limit {limit:,} bytes, "
                            f"raise it with ${_MAX_SIDECAR_ENV}); sidecar ignored")
    return text


def _sne_metadata(sidecar: Path, width: int | None) -> SEMMetadata:
    text = _sidecar_text(sidecar)
    if text is None:
        return SEMMetadata()
    kv = parse_sne(text)

    def get(name: str, section: str | None = None) -> str | None:
        if section is not None and (section, name) in kv:
            return kv[(section, name)] or None
        return kv.get(("*", name)) or None

    meta = SEMMetadata(source="sne-sidecar")
    meta.instrument = clean_str(get("model"))
    meta.acq_date = iso_date(get("date", "image info"), ())
    volt = get("acceleated voltage") or get("accelerated voltage")
    if volt:
        m = _VOLTAGE.search(volt, 0, 1000)
        if m:
            meta.voltage_kv = _checked(sidecar, "Accelerated Voltage", volt, voltage_kv(m.group(1), m.group(2)))
    mag = get("magnification", "image info")
    if mag:
        meta.magnification = _checked(sidecar, "Magnification", mag, magnification(mag))
    meta.detector = clean_str(get("detector mode"))
    for field, key in (("brightness", "Brightness"), ("contrast", "Contrast")):
        raw = get(key.lower(), "image process")
        setattr(meta, field, _checked(sidecar, key, raw, first_number(raw)))
    meta.pixel_size_um = _sne_pixel_size(sidecar, get("pixel size"), get("frame size") or get("image size"), width)
    return meta


def _sne_pixel_size(sidecar: Path, raw_pixel: str | None, raw_frame: str | None, width: int | None) -> float | None:
    """µm/px at ``width`` from the sidecar's ``Pixel Size`` (µm unless a unit is given) and
    ``Frame Size``; ``None`` (with a :class:`SEMMetadataWarning`) when either is implausible."""
    if raw_pixel is None:
        return None
    pixel, problem = parse_length(raw_pixel)
    if pixel is None:
        _warn_meta(sidecar, f"Pixel Size {short_repr(raw_pixel)} is unreadable ({problem}); "
                            "pixel size treated as unknown")
        return None
    if not pixel > 0:
        _warn_meta(sidecar, f"Pixel Size {short_repr(raw_pixel)} is not positive; pixel size treated as unknown")
        return None
    if raw_frame is None:
        frame_w = float(_SNE_DEFAULT_FRAME_WIDTH)
    else:
        m = NUMBER.search(raw_frame)
        frame_w = float(m.group()) if m else float("nan")
        if not (math.isfinite(frame_w) and frame_w >= 1):
            _warn_meta(sidecar, f"Frame Size {short_repr(raw_frame)} is not a positive width in pixels; "
                                "pixel size treated as unknown")
            return None
    if not width:
        _warn_meta(sidecar, "image width unknown, pixel size left unset")
        return None
    return _plausible_pixel(pixel * frame_w / float(width), sidecar, f"Pixel Size : {short_text(raw_pixel, 80)}")


def _zeiss_metadata(sem: dict[str, Any], page_width: int, width: int | None, where: Path) -> SEMMetadata:
    meta = SEMMetadata(source="zeiss-cz-sem")
    unreadable = []
    for key in ("ap_image_pixel_size", "ap_pixel_size"):
        if key in sem:
            value, unit = value_unit(sem[key])
            um = length_um(value, unit)
            if um is None:
                problem = parse_number(value)[1]
                unreadable.append(f"{key} = {short_repr(value)} {short_repr(unit, 20)}"
                                  + (f" ({problem})" if problem and problem != NO_NUMBER else ""))
                continue
            meta.pixel_size_um = _plausible_pixel(um * page_width / float(width or page_width), where,
                                                  f"{key} = {short_text(value, 80)} {short_text(unit, 20)}")
            break
    else:
        if unreadable:
            _warn_meta(where, f"{'; '.join(unreadable)}: not a finite length in a known unit; "
                              "pixel size treated as unknown")
    if "ap_mag" in sem:
        value, unit = value_unit(sem["ap_mag"])
        meta.magnification = _checked(where, "ap_mag", value, magnification(value, unit))
    for key in ("ap_actualkv", "ap_manualkv"):
        if key in sem:
            value, unit = value_unit(sem[key])
            kv = _checked(where, key, value, voltage_kv(value, unit))
            if kv is not None:
                meta.voltage_kv = kv
                break
    for key in ("dp_detector_type", "dp_detector_channel"):
        if key in sem:
            det = clean_str(value_unit(sem[key])[0])
            if det:
                meta.detector = det
                break
    if "ap_date" in sem:
        meta.acq_date = iso_date(
            value_unit(sem["ap_date"])[0], ("%d %b %Y", "%d %B %Y", "%d.%m.%Y", "%m/%d/%Y")
        )
    for field, key in (("brightness", "ap_brightness"), ("contrast", "ap_contrast")):
        if key in sem:
            value = value_unit(sem[key])[0]
            setattr(meta, field, _checked(where, key, value, first_number(value)))
    model = None
    for key in ("dp_sem", "dp_column_type", "sv_serial_number"):
        if key in sem:
            model = clean_str(value_unit(sem[key])[0])
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
    def number(section: dict[str, Any], key: str) -> float | None:
        raw = section.get(key)
        return _checked(where, key, raw, first_number(raw))

    res_x = number(image, "ResolutionX")
    ref_w = res_x if res_x else float(page_width)
    pw = number(scan, "PixelWidth") or number(sect("EScan"), "PixelWidth")
    if pw is not None:  # metres -> µm
        meta.pixel_size_um = _plausible_pixel(pw * 1e6 * ref_w / float(width or page_width), where,
                                              f"PixelWidth = {pw!r} m")
    hv = number(beam, "HV")
    if hv is None:
        beam_name = beam.get("Beam")
        if isinstance(beam_name, str):
            hv = first_number(sect(beam_name).get("HV"))
    if hv is None:
        hv = first_number(sect("EBeam").get("HV"))
    if hv is not None:
        meta.voltage_kv = hv / 1000.0  # volts -> kV
    # FEI's displayed magnification is the reference canvas width over the field width.
    canvas = first_number(image.get("MagCanvasRealWidth"))
    hfw = first_number(scan.get("HorFieldsize")) or first_number(sect("EBeam").get("HFW"))
    if canvas and hfw and canvas > 0 and hfw > 0:
        meta.magnification = canvas / hfw
    det_name = clean_str(sect("Detectors").get("Name"))
    meta.detector = det_name
    if det_name:
        det = sect(det_name)
        meta.brightness = first_number(det.get("Brightness"))
        meta.contrast = first_number(det.get("Contrast"))
    user = sect("User")
    meta.acq_date = iso_date(user.get("Date"), ("%m/%d/%Y", "%d.%m.%Y", "%Y-%m-%d"))
    if meta.acq_date is None:
        created = sect("PrivateFei").get("TimeOfCreation")
        if isinstance(created, str):
            meta.acq_date = iso_date(created.split()[0] if created.split() else "", ("%d.%m.%Y",))
    system = sect("System")
    model = clean_str(system.get("SystemType"))
    if model:
        model = model.replace('"', "").strip()
    meta.instrument = f"FEI {model}" if model else "FEI"
    # Data bar: the scanned image is ResolutionY rows tall; the rest is the bar.
    res_y = first_number(image.get("ResolutionY"))
    bar_h = first_number(sect("PrivateFei").get("DatabarHeight"))
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
    p = check_path(path)
    if width is not None:
        width = int(width)
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
    with one_warning(p):
        if p.suffix.lower() in TIFF_EXTENSIONS:
            found = _tiff_metadata(p, width)
            if found is not None:
                return found
        sidecar = find_sidecar(p)
        if sidecar is not None:
            if width is None:
                size = _image_size(p)
                width = size[0] if size else None
            try:
                return _sne_metadata(sidecar, width)
            except OSError as exc:
                _warn_meta(sidecar, f"cannot read sidecar ({short_text(exc)})")
    return SEMMetadata()


def _tiff_metadata(p: Path, width: int | None) -> SEMMetadata | None:
    """FEI or Zeiss metadata from the first page's tags, else ``None`` (only that page is parsed)."""
    import tifffile

    try:
        with library_calls(p), tifffile.TiffFile(p) as tif:
            page = tif.pages.first
            pw, ph = int(page.imagewidth), int(page.imagelength)
            fei: dict[str, Any] | None = None
            if page.is_fei:  # tif.fei_metadata would count every page of the file first
                fei = {}
                for code in (34680, 34682):  # FEI_SFEG, FEI_HELIOS
                    value = page.tags.valueof(code)
                    if isinstance(value, dict):
                        fei.update(value)
            sem = page.tags.valueof(34118) if page.is_sem else None  # CZ_SEM
    except Exception as exc:
        raise SEMReadError(p, f"cannot read TIFF header ({type(exc).__name__}: {short_text(exc)})") from exc
    try:
        if fei:
            return _fei_metadata(fei, pw, ph, width, p)
        if isinstance(sem, dict) and sem:
            return _zeiss_metadata(sem, pw, width, p)
    except Exception as exc:  # malformed vendor block: say so, do not guess
        _warn_meta(p, f"cannot interpret vendor TIFF metadata ({type(exc).__name__}: {short_text(exc)})")
    return None
