"""Grad-CAM: target layers, computation, measures, overlays, gallery and the widget explorer."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # cam
    "cam_files": "cam",
    "cam_grid": "cam",
    "CAM_METHODS": "cam",
    "cam_quant_table": "cam",
    "compute_cams": "cam",
    "deletion_auc": "cam",
    "deletion_curve": "cam",
    "energy_on_mask": "cam",
    "explain_items": "cam",
    "find_target_layer": "cam",
    "make_cam_fn": "cam",
    "micrograph_cam": "cam",
    "MicrographCam": "cam",
    "ModelLike": "cam",
    "overlay": "cam",
    "save_overlay": "cam",
    "stitch_tiles": "cam",
    "structure_map": "cam",
    "write_gallery": "cam",
    # explorer
    "CamFn": "explorer",
    "CORRECTNESS": "explorer",
    "DEFAULT_METHODS": "explorer",
    "explore": "explorer",
    "Explorer": "explorer",
    "ExplorerState": "explorer",
    "FILTERS": "explorer",
    # runs
    "cam_sample": "runs",
    "cam_study": "runs",
    "explorer_for": "runs",
    "load_run_models": "runs",
    "row_loader": "runs",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
