"""Grad-CAM: target layers, computation, measures, overlays, gallery and the widget explorer.

Modules, bottom to top: ``layers`` (target layer, the loaded-model protocol) -> ``compute``
(:func:`compute_cams`) -> ``micrograph`` (tile CAMs stitched over a micrograph) ->
``overlays`` -> ``measures`` (quantitative checks) -> ``gallery`` (files, figure, HTML);
``explorer_state`` (headless) -> ``explorer`` (widgets); ``runs`` (the study of notebook 05)
sits on top and uses both sides.
"""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # layers
    "find_target_layer": "layers",
    "ModelLike": "layers",
    # compute
    "CAM_METHODS": "compute",
    "compute_cams": "compute",
    # micrograph
    "make_cam_fn": "micrograph",
    "micrograph_cam": "micrograph",
    "MicrographCam": "micrograph",
    "stitch_tiles": "micrograph",
    # overlays
    "overlay": "overlays",
    "save_overlay": "overlays",
    # measures
    "cam_quant_table": "measures",
    "deletion_auc": "measures",
    "deletion_curve": "measures",
    "energy_on_mask": "measures",
    "explain_items": "measures",
    "structure_map": "measures",
    # gallery
    "cam_files": "gallery",
    "cam_grid": "gallery",
    "write_gallery": "gallery",
    # explorer_state
    "CORRECTNESS": "explorer_state",
    "DEFAULT_METHODS": "explorer_state",
    "ExplorerState": "explorer_state",
    "FILTERS": "explorer_state",
    # explorer
    "CamFn": "explorer",
    "explore": "explorer",
    "Explorer": "explorer",
    # runs
    "REGIONS": "particles",
    "cam_particle_table": "particles",
    "particle_energy": "particles",
    "particle_regions": "particles",
    "cam_sample": "runs",
    "cam_study": "runs",
    "explorer_for": "runs",
    "load_run_models": "runs",
    "row_loader": "runs",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
