"""Particle morphology in µm: segment the secondary particles, measure them, draw their outlines.

The step after :mod:`semcathode.io` / :mod:`semcathode.data` in the flow: it takes pixels and the
pixel size and uses nothing from :mod:`semcathode.models`. Calling convention: functions take a
grey micrograph (or a :class:`Segmentation` of one) and its pixel size, with the settings as a
:class:`~semcathode.config.MorphologyConfig` (every length in µm).

Examples
--------
>>> import numpy as np
>>> import semcathode as sc
>>> yy, xx = np.mgrid[:200, :200]
>>> img = 0.2 + 0.6 * ((yy - 100) ** 2 + (xx - 100) ** 2 < 40 ** 2)
>>> seg = sc.morphology.segment_particles(img, pixel_size_um=0.5)
>>> round(sc.morphology.micrograph_measures(seg)["d50_um"], 1)
40.0
"""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # segment
    "segment_particles": "_segment",
    # measure
    "micrograph_measures": "_measure",
    # files
    "measure_paths": "_measure_files",
    # manifest
    "measure_manifest": "_manifest",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
