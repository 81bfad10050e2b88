"""SNE sidecars: finding ``<image>.txt`` / ``<stem>.txt`` and reading them with a size bound.

Private to :mod:`semcathode.io._metadata`, which interprets what is read here. A sidecar is never
read whole without a bound: ``<stem>.txt`` is recognised from its first :data:`SNIFF_BYTES`, and
:func:`read_sidecar` reads at most ``limit + 1`` bytes, so an unrelated 1.5 GB text file beside an
image costs a few KiB.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SNIFF_BYTES", "find_sidecar", "read_head", "read_sidecar", "decode_text", "parse_sne"]

#: Bytes of ``<stem>.txt`` looked at to tell an SNE sidecar from an unrelated text file.
SNIFF_BYTES = 4096


def read_head(path: Path, size: int) -> bytes:
    """At most ``size`` bytes from the start of ``path`` (everything when ``size`` is 0)."""
    with open(path, "rb") as fh:
        return fh.read(size) if size else fh.read()


def find_sidecar(path: Path) -> Path | None:
    """``<image>.txt`` next to the image; ``<stem>.txt`` only when it is an SNE sidecar."""
    primary = path.with_name(path.name + ".txt")
    if primary.is_file():
        return primary
    alt = path.with_suffix(".txt")
    if alt.is_file():
        try:
            head = read_head(alt, SNIFF_BYTES).decode("utf-8", errors="replace")
        except OSError:
            return None
        if "[Image Info]" in head and "Model" in head:
            return alt
    return None


def read_sidecar(sidecar: Path, limit: int) -> tuple[str | None, int]:
    """The text of ``sidecar`` when it holds at most ``limit`` bytes (``0`` = no limit).

    Parameters
    ----------
    sidecar : Path
        The sidecar file.
    limit : int
        Largest size read, in bytes.

    Returns
    -------
    text : str or None
        The decoded text; ``None`` when the file is larger than ``limit`` (then not read).
    size : int
        Its size in bytes (at least ``limit + 1`` when it grew while being read).

    Raises
    ------
    OSError
        The file cannot be read.
    """
    size = sidecar.stat().st_size
    if limit and size > limit:
        return None, size
    raw = read_head(sidecar, limit + 1 if limit else 0)
    if limit and len(raw) > limit:
        return None, max(size, len(raw))
    return decode_text(raw), size


def decode_text(raw: bytes) -> str:
    """``raw`` as text: UTF-8 (with or without BOM), else CP949 (Korean SNE software), else UTF-8 with replacements."""
    for enc in ("utf-8-sig", "cp949"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", errors="replace")


def parse_sne(text: str) -> dict[tuple[str, str], str]:
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
