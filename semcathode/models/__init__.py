"""Backbones, the fastai learner, the exported model file and whole-micrograph prediction."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # backbones
    "create_backbone": "backbones",
    "normalization": "backbones",
    # export
    "export_model": "export",
    "ExportedModel": "export",
    "load_model": "export",
    "ModelFileError": "export",
    # learner
    "RankRecord": "_distributed",
    # predict (files and folders; the forward pass of every predict path is in models.forward)
    "predict": "archive",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
