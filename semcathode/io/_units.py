"""Numbers, lengths, voltages, magnifications and dates as SEM instruments write them.

Private to :mod:`semcathode.io`: the text parsing behind :mod:`semcathode.io.metadata`. Every
parser returns ``None`` for what it cannot read; nothing is guessed.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

import numpy as np

__all__ = [
    "NUMBER",
    "first_number",
    "parse_length",
    "value_unit",
    "length_um",
    "voltage_kv",
    "magnification",
    "iso_date",
    "clean_str",
]

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")

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


def first_number(text: Any) -> float | None:
    """The first finite number in ``text`` (a string or a number), else ``None``."""
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float, np.integer, np.floating)):
        v = float(text)
        return v if np.isfinite(v) else None
    if not isinstance(text, str):
        return None
    m = NUMBER.search(text)
    if not m:
        return None
    v = float(m.group())
    return v if math.isfinite(v) else None  # '1e999' is no number an instrument writes


def parse_length(raw: str, default_unit: str = "um") -> tuple[float | None, str]:
    """``'0.7'``, ``'0.7 um'``, ``'700 nm'``, ``'0.7 mm'`` -> (µm, '') or (None, problem)."""
    m = NUMBER.search(raw)
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


def value_unit(entry: Any) -> tuple[Any, str]:
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
        m = NUMBER.search(value)
        if m:
            unit = value[m.end() :].strip()
    return value, unit


def length_um(value: Any, unit: str) -> float | None:
    """``value`` in ``unit`` (``nm``, ``um``, ``mm`` ...) as µm, else ``None``."""
    number = first_number(value)
    if number is None:
        return None
    key = unit.strip().replace(" ", "")
    factor = _LENGTH_TO_UM.get(key, _LENGTH_TO_UM.get(key.lower()))
    if factor is None:
        return None
    return number * factor


def voltage_kv(value: Any, unit: str) -> float | None:
    """``value`` in ``unit`` (``V`` or ``kV``) as kV, else ``None``."""
    number = first_number(value)
    if number is None:
        return None
    factor = _VOLT_TO_KV.get(unit.strip().lower())
    if factor is None:
        return None
    return number * factor


def magnification(value: Any, unit: str = "") -> float | None:
    """Parse ``(105, 'X')``, ``'x500'``, ``'x1,000'``, ``'50.00 K X'`` or ``'1.2 M X'``."""
    if isinstance(value, str):
        value = _THOUSANDS.sub(lambda m: m.group().replace(",", ""), value)
    number = first_number(value)
    if number is None or number <= 0:
        return None
    rest = unit
    if isinstance(value, str):
        m = NUMBER.search(value)
        rest = value[m.end() :] + " " + unit if m else unit
    tokens = rest.replace("x", " ").replace("X", " ").split()
    prefix = tokens[0] if tokens else ""
    return number * {"k": 1e3, "K": 1e3, "M": 1e6}.get(prefix, 1.0)


def iso_date(text: Any, formats: tuple[str, ...]) -> str | None:
    """``YYYY-MM-DD`` from ``text`` read with ``formats`` (or any ``Y-M-D`` inside it), else ``None``."""
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


def clean_str(value: Any) -> str | None:
    """``value`` as a stripped string, ``None`` when empty, ``None`` or a bool."""
    if value is None or isinstance(value, bool):
        return None
    s = str(value).strip()
    return s or None
