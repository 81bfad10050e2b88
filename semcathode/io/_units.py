"""Numbers, lengths, voltages, magnifications and dates as SEM instruments write them.

Private to :mod:`semcathode.io`: the text parsing behind :mod:`semcathode.io._metadata`. Every
parser returns ``None`` for what it cannot read; nothing is guessed. All numbers in text are
read by :func:`parse_number`, which accepts one decimal comma (``'0,7'`` is 0.7) and refuses
what could be read two ways (``'1,234'``, ``'1.234,5'``, ``'1,234,5'``).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

import numpy as np

__all__ = [
    "NUMBER",
    "NUMBER_TEXT",
    "NO_NUMBER",
    "parse_number",
    "first_number",
    "parse_length",
    "value_unit",
    "length_um",
    "voltage_kv",
    "magnification",
    "iso_date",
    "clean_str",
]

#: A number with a decimal point only (``480`` of ``'480,480'``): for lists such as frame sizes.
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")

#: A number as an instrument may write it: digit groups joined by ``.`` or ``,`` (read by
#: :func:`parse_number`, which decides what the separators mean).
NUMBER_TEXT = re.compile(r"[-+]?(?:\d+(?:[.,]\d+)*\.?|\.\d+)(?:[eE][-+]?\d+)?")

#: The problem :func:`parse_number` gives for text without any number.
NO_NUMBER = "no number"

#: Text searched for a number: what an instrument writes is far shorter, and the search stays cheap.
_SCAN_CHARS = 10_000
#: Longest number token read; a longer one is no value an instrument writes.
_MAX_TOKEN = 100

_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d.,])")

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


def _find_number(text: str) -> re.Match[str] | None:
    """The first number token in (the start of) ``text``."""
    return NUMBER_TEXT.search(text, 0, _SCAN_CHARS)


def _token_value(token: str) -> tuple[float | None, str]:
    """The value of one :data:`NUMBER_TEXT` token, or ``(None, problem)``."""
    if len(token) > _MAX_TOKEN:
        return None, f"a number of more than {_MAX_TOKEN} characters"
    mantissa, e, exponent = token.replace("E", "e").partition("e")
    if "," in mantissa:
        whole, _, frac = mantissa.partition(",")
        if "." in mantissa or "," in frac:
            return None, f"ambiguous number {token!r} (thousands separators? write one decimal point or comma)"
        if len(frac) == 3 and whole.lstrip("+-").strip("0"):
            return None, f"ambiguous number {token!r} (decimal comma or thousands separator?)"
        mantissa = f"{whole}.{frac}"
    elif mantissa.count(".") > 1:
        return None, f"{token!r} is not a number"
    value = float(mantissa + e + exponent)
    if not math.isfinite(value):  # '1e999' is no number an instrument writes
        return None, "not a finite number"
    return value, ""


def parse_number(text: Any) -> tuple[float | None, str]:
    """The first number in ``text`` (a string or a number), or ``(None, problem)``.

    Parameters
    ----------
    text : str or number
        A metadata value. In a string, one decimal comma is read as a decimal point unless it
        could be a thousands separator (``'0,7'`` and ``'2,1'`` read, ``'1,234'`` does not).

    Returns
    -------
    value : float or None
        The finite number, else ``None``.
    problem : str
        ``''`` when read, else why not (:data:`NO_NUMBER` when there is none at all).

    Examples
    --------
    >>> parse_number("0,7 um"), parse_number("2.1")
    ((0.7, ''), (2.1, ''))
    >>> parse_number("1.234,5")[0] is None
    True
    """
    if isinstance(text, bool):
        return None, NO_NUMBER
    if isinstance(text, (int, float, np.integer, np.floating)):
        v = float(text)
        return (v, "") if math.isfinite(v) else (None, "not a finite number")
    if not isinstance(text, str):
        return None, NO_NUMBER
    m = _find_number(text)
    if not m:
        return None, NO_NUMBER
    return _token_value(m.group())


def first_number(text: Any) -> float | None:
    """The first finite number in ``text`` (a string or a number), else ``None`` (see :func:`parse_number`)."""
    return parse_number(text)[0]


def parse_length(raw: str, default_unit: str = "um") -> tuple[float | None, str]:
    """``'0.7'``, ``'0,7 um'``, ``'700 nm'``, ``'0.7 mm'`` -> (µm, '') or (None, problem)."""
    m = _find_number(raw)
    if not m:
        return None, NO_NUMBER
    number, problem = _token_value(m.group())
    if number is None:
        return None, problem
    u = _UNIT.match(raw, m.end())
    unit = u.group(1) if u else default_unit
    factor = _LENGTH_TO_UM.get(unit, _LENGTH_TO_UM.get(unit.lower()))
    if factor is None:
        return None, f"unknown unit {unit[:20]!r} (known: nm, um, µm, mm)"
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
        m = _find_number(value)
        if m:
            unit = value[m.end() : m.end() + 100].strip()
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
        value = _THOUSANDS.sub(lambda m: m.group().replace(",", ""), value[:_SCAN_CHARS])
    number = first_number(value)
    if number is None or number <= 0:
        return None
    rest = unit
    if isinstance(value, str):
        m = _find_number(value)
        rest = value[m.end() : m.end() + 100] + " " + unit if m else unit
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
