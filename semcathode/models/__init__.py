"""Backbones, the fastai learner, the exported model file and whole-micrograph prediction."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # backbones
    "create_backbone": "_backbones",
    "normalization": "_backbones",
    # export
    "export_model": "_export",
    "ExportedModel": "_export",
    "load_model": "_export",
    "ModelFileError": "_export",
    # learner
    "RankRecord": "_distributed",
    # predict (files and folders; the forward pass of every predict path is in models._forward)
    "predict": "_archive",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
