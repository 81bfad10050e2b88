"""Read SEM files: pixels (with guards), vendor metadata (sidecars, Zeiss, FEI) and the data bar."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # databar
    "BarCrop": "databar",
    "crop_data_bar": "databar",
    "find_data_bar": "databar",
    # metadata
    "MAX_SIDECAR_BYTES": "metadata",
    "max_sidecar_bytes": "metadata",
    "PIXEL_SIZE_RANGE_UM": "metadata",
    "read_metadata": "metadata",
    "SEMMetadata": "metadata",
    "SEMMetadataWarning": "metadata",
    # read
    "MAX_IMAGE_BYTES": "read",
    "MAX_IMAGE_PIXELS": "read",
    "max_image_bytes": "read",
    "max_image_pixels": "read",
    "read_image": "read",
    "read_sem": "read",
    "SEMImage": "read",
    "SEMReadError": "read",
    "SEMReadWarning": "read",
    "SUPPORTED_EXTENSIONS": "read",
    "to_grey": "read",
    "to_unit": "read",
    # walk
    "find_images": "walk",
    "is_image_name": "walk",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
