"""Read SEM files: pixels (with guards), vendor metadata (sidecars, Zeiss, FEI) and the data bar."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # metadata
    "SEMMetadata": "_metadata",
    # read
    "read_image": "_read",
    "read_sem": "_read",
    "SEMImage": "_read",
    "SEMReadError": "_read",
    # walk
    "find_images": "_walk",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
