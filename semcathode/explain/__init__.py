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
    # compute
    "compute_cams": "_compute",
    # micrograph
    "micrograph_cam": "_micrograph",
    # measures
    "cam_quant_table": "_measures",
    # gallery
    "cam_files": "_gallery",
    "write_gallery": "_gallery",
    # explorer
    "explore": "_explorer",
    # runs
    "cam_particle_table": "_particles",
    "cam_sample": "_runs",
    "cam_study": "_runs",
    "explorer_for": "_runs",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
