"""Resource limits settable from the environment, and values shortened for one-line messages.

Every limit on hostile input (configuration size, tiles per micrograph, ...) has a default and
an environment variable ``SEMCATHODE_MAX_...`` that raises it (``0`` = no limit), read by
:func:`env_limit`. :func:`short_repr` quotes a value of any size in a few dozen characters, so
an error message stays one short line whatever the input held.
"""

from __future__ import annotations

import math
import os
import re
import reprlib
from typing import Any

from ._sections import ConfigError

__all__ = ["env_limit", "short_repr", "short_text"]

#: Longest text :func:`short_repr` returns before the size note.
SHORT_REPR_CHARS = 80
#: Values counted at most when :func:`short_repr` sizes a nested value (shared parts count each time).
_COUNT_BUDGET = 1_000_000


_NUMBER = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z]*)\s*")
_BYTE_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "kib": 2**10,
    "m": 10**6, "mb": 10**6, "mib": 2**20,
    "g": 10**9, "gb": 10**9, "gib": 2**30,
    "t": 10**12, "tb": 10**12, "tib": 2**40,
}


def env_limit(name: str, default: float, kind: type = int, what: str = "a number",
              byte_units: bool = False) -> float:
    """The limit in force: ``$name`` when set, else ``default``; ``0`` means no limit.

    Parameters
    ----------
    name : str
        The environment variable, e.g. ``SEMCATHODE_MAX_TILES``.
    default : int or float
        The built-in limit (negative counts as 0).
    kind : type
        ``int`` or ``float``: the type of the limit.
    what : str
        What the value counts, for the error message (``'a number of pixels'``).
    byte_units : bool
        Accept a byte unit after the number: ``k``/``kB`` (1000), ``KiB`` (1024), ``M``, ``MB``,
        ``MiB``, ``G``, ``GB``, ``GiB``, ``T``, ``TB``, ``TiB`` (case ignored).

    Returns
    -------
    int or float
        The limit (>= 0; 0 = unlimited).

    Raises
    ------
    ConfigError
        The variable is set but is not a finite non-negative number (in a known unit); the
        message names the variable and quotes the value.

    Examples
    --------
    >>> env_limit("SEMCATHODE_MAX_NOTHING_SET_HERE", 1000)
    1000
    """
    raw = os.environ.get(name, "")
    if not raw.strip():
        return kind(max(default, 0))
    m = _NUMBER.fullmatch(raw)
    factor = _BYTE_UNITS.get(m.group(2).lower()) if m else None
    if m is None or factor is None or (m.group(2) and not byte_units):
        example = "e.g. 4000000000, 4GB or 4GiB" if byte_units else "e.g. 1000"
        raise ConfigError(f"${name}={short_repr(raw)} is not {what} ({example}; 0 = no limit)")
    value = float(m.group(1)) * factor
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"${name}={short_repr(raw)} must be a finite number >= 0 (0 = no limit)")
    return kind(value)


def short_text(text: Any, limit: int = 200) -> str:
    """``text`` as one line of at most about ``limit`` characters, cut with ``…`` and its length.

    Parameters
    ----------
    text : object
        A message (exception text, a library's log line); converted with :class:`str`.
    limit : int
        Characters kept before the cut.

    Returns
    -------
    str
        Whitespace runs (newlines included) collapsed to one space.

    Examples
    --------
    >>> short_text("a\\nb " + "x" * 300, limit=10)
    'a b xxxxxx… (304 characters)'
    """
    s = text if isinstance(text, str) else str(text)
    n = len(s)
    head = " ".join(s[: 2 * limit + 16].split())
    if n <= limit and len(head) <= limit:
        return head
    return f"{head[:limit]}… ({n:,} characters)"


class _ShortRepr(reprlib.Repr):
    """:class:`reprlib.Repr` that also bounds bytes and huge integers (its fallback would repr them whole)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict, self.maxset = 3, 6, 6, 4, 6
        self.maxstring, self.maxother, self.maxlong = 60, 60, 40

    def repr_bytes(self, x: bytes, level: int) -> str:
        return repr(x) if len(x) <= self.maxstring else repr(x[: self.maxstring // 2]) + "..."

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 4 * self.maxlong:  # a repr would be long (or refused past 4300 digits)
            return f"<int of about {int(x.bit_length() * 0.30103):,} digits>"
        return reprlib.Repr.repr_int(self, x, level)


_REPR = _ShortRepr()


def _count_values(value: Any, budget: int = _COUNT_BUDGET) -> tuple[int, bool]:
    """Values inside ``value`` (containers expanded, shared parts each time), counted iteratively.

    Returns ``(count, complete)``; ``complete`` is False when the count stopped at ``budget``.
    """
    count, stack = 0, [value]
    while stack:
        v = stack.pop()
        count += 1
        if count >= budget:
            return count, False
        if isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple, set, frozenset)):
            stack.extend(v)
    return count, True


def _size_note(value: Any) -> str:
    """``"500,000 characters"``, ``"list of 9 items, 100,000 values in all"``... ('' for small scalars)."""
    if isinstance(value, (str, bytes, bytearray)):
        return f"{len(value):,} {'characters' if isinstance(value, str) else 'bytes'}"
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        note = f"{type(value).__name__} of {len(value):,} item{'s' if len(value) != 1 else ''}"
        n, complete = _count_values(value)
        if n - 1 > len(value):
            note += f", {n - 1:,}{'' if complete else '+'} values in all"
        return note
    return ""


def short_repr(value: Any, limit: int = SHORT_REPR_CHARS) -> str:
    """A bounded ``repr`` of ``value`` for messages, with its size when shortened.

    Never builds the full ``repr`` (:mod:`reprlib` looks at a few items per level), so a
    value of gigabytes once expanded (YAML aliases share their parts) is quoted in
    microseconds.

    Parameters
    ----------
    value : object
        Anything.
    limit : int
        Longest text before the size note.

    Returns
    -------
    str
        ``repr(value)`` when short; else its first part, ``...`` and e.g.
        ``(list of 9 items, 1,000,000+ values in all)``.

    Examples
    --------
    >>> short_repr("abc")
    "'abc'"
    >>> text = short_repr("x" * 10_000)
    >>> len(text) < 100, text.endswith("' (10,000 characters)")
    (True, True)
    """
    text = _REPR.repr(value)
    shortened = "..." in text and "..." not in (value if isinstance(value, str) else "")
    if len(text) > limit:
        text, shortened = text[: limit - 3] + "...", True
    if not shortened:
        return text
    note = _size_note(value)
    return f"{text} ({note})" if note else text
