"""Validation of an exported model's JSON description against its weights (no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

__all__ = ["ModelFileError", "validate_model_meta"]

FORMAT = "semcathode-model-v1"


class ModelFileError(ValueError):
    """An exported model is missing, corrupt, or its JSON does not match its weights."""


def validate_model_meta(meta: dict, state: Mapping[str, object], json_path: Path) -> None:
    """Check a model's JSON description before anything is built from it.

    Parameters
    ----------
    meta : dict
        The parsed JSON.
    state : mapping of str to tensor
        The safetensors weights.
    json_path : Path
        Named in every error.

    Raises
    ------
    ModelFileError
        Naming the file and the offending field.
    """
    if not isinstance(meta, dict):
        raise ModelFileError(f"{json_path}: must hold a JSON object")
    for key in ("format", "classes", "timm_name", "preprocess", "mean", "std"):
        if key not in meta:
            raise ModelFileError(f"{json_path}: missing key '{key}'")
    if meta["format"] != FORMAT:
        raise ModelFileError(f"{json_path}: unknown format {meta['format']!r} (expected {FORMAT})")
