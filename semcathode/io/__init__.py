"""Read SEM files: pixels (with guards), vendor metadata (sidecars, Zeiss, FEI) and the data bar."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # read
    "BarCrop": "read",
    "crop_data_bar": "read",
    "find_data_bar": "read",
    "MAX_IMAGE_PIXELS": "read",
    "max_image_pixels": "read",
    "PIXEL_SIZE_RANGE_UM": "read",
    "read_image": "read",
    "read_metadata": "read",
    "read_sem": "read",
    "SEMImage": "read",
    "SEMMetadata": "read",
    "SEMMetadataWarning": "read",
    "SEMReadError": "read",
    "SUPPORTED_EXTENSIONS": "read",
    "to_grey": "read",
    # walk
    "find_images": "walk",
    "is_image_name": "walk",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
