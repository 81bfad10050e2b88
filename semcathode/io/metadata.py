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
(``nm``, ``um``/``µm``, ``mm``); without one they are in µm.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._guards import TIFF_EXTENSIONS, SEMReadError, check_path
from ._units import (
    NUMBER,
    clean_str,
    first_number,
    iso_date,
    length_um,
    magnification,
    parse_length,
    value_unit,
    voltage_kv,
)

__all__ = ["SEMMetadata", "SEMMetadataWarning", "PIXEL_SIZE_RANGE_UM", "read_metadata"]

#: Plausible SEM pixel sizes in µm/px (1 nm/px .. 100 µm/px). A pixel size outside this range
#: (or not finite) is treated as unknown (``None``) with a :class:`SEMMetadataWarning`.
PIXEL_SIZE_RANGE_UM: tuple[float, float] = (1e-3, 100.0)

#: Width in pixels of the SNE scan frame when the sidecar does not state ``Frame Size``.
_SNE_DEFAULT_FRAME_WIDTH = 480


class SEMMetadataWarning(UserWarning):
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


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header, without decoding the pixels."""
    try:
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
    meta.instrument = clean_str(get("model"))
    meta.acq_date = iso_date(get("date", "image info"), ())
    volt = get("acceleated voltage") or get("accelerated voltage")
    if volt:
        m = re.search(rf"({NUMBER.pattern})\s*(k?v)", volt, re.IGNORECASE)
        if m:
            meta.voltage_kv = voltage_kv(m.group(1), m.group(2))
    mag = get("magnification", "image info")
    if mag:
        meta.magnification = magnification(mag)
    meta.detector = clean_str(get("detector mode"))
    meta.brightness = first_number(get("brightness", "image process"))
    meta.contrast = first_number(get("contrast", "image process"))
    meta.pixel_size_um = _sne_pixel_size(sidecar, get("pixel size"), get("frame size") or get("image size"), width)
    return meta


def _sne_pixel_size(sidecar: Path, raw_pixel: str | None, raw_frame: str | None, width: int | None) -> float | None:
    """µm/px at ``width`` from the sidecar's ``Pixel Size`` (µm unless a unit is given) and
    ``Frame Size``; ``None`` (with a :class:`SEMMetadataWarning`) when either is implausible."""
    if raw_pixel is None:
        return None
    pixel, problem = parse_length(raw_pixel)
    if pixel is None:
        _warn_meta(sidecar, f"Pixel Size {raw_pixel!r} is unreadable ({problem}); pixel size treated as unknown")
        return None
    if not pixel > 0:
        _warn_meta(sidecar, f"Pixel Size {raw_pixel!r} is not positive; pixel size treated as unknown")
        return None
    if raw_frame is None:
        frame_w = float(_SNE_DEFAULT_FRAME_WIDTH)
    else:
        m = NUMBER.search(raw_frame)
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
            value, unit = value_unit(sem[key])
            um = length_um(value, unit)
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
        meta.magnification = magnification(*value_unit(sem["ap_mag"]))
    for key in ("ap_actualkv", "ap_manualkv"):
        if key in sem:
            kv = voltage_kv(*value_unit(sem[key]))
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
    if "ap_brightness" in sem:
        meta.brightness = first_number(value_unit(sem["ap_brightness"])[0])
    if "ap_contrast" in sem:
        meta.contrast = first_number(value_unit(sem["ap_contrast"])[0])
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
    res_x = first_number(image.get("ResolutionX"))
    ref_w = res_x if res_x else float(page_width)
    pw = first_number(scan.get("PixelWidth")) or first_number(sect("EScan").get("PixelWidth"))
    if pw is not None:  # metres -> µm
        meta.pixel_size_um = _plausible_pixel(pw * 1e6 * ref_w / float(width or page_width), where,
                                              f"PixelWidth = {pw!r} m")
    hv = first_number(beam.get("HV"))
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
    if p.suffix.lower() in TIFF_EXTENSIONS:
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
