"""Where a CAM's energy lies against the segmented particles of its micrograph.

The micrograph's particles (:mod:`semcathode.morphology`) split it into four disjoint regions:
the **fines** (whole particles under ``fines_um``), a **boundary** band of ``band_um`` around the
outlines of the other particles (particle against background and particle against particle),
their **interiors**, and the **background**. :func:`particle_energy` gives each region's share of
the CAM's energy beside its share of the area; a ratio of 1 means no preference.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ..morphology._segment import Segmentation

__all__ = ["REGIONS", "particle_regions", "particle_energy", "cam_particle_table"]

#: The regions, in the order of the columns.
REGIONS: tuple[str, ...] = ("boundary", "interior", "fines", "background")


def particle_regions(seg: Segmentation, band_um: float | None = None, fines_um: float | None = None) -> np.ndarray:
    """Label every pixel of a segmentation with its region: uint8 ``(h, w)``, the index in :data:`REGIONS`.

    Parameters
    ----------
    seg : Segmentation
    band_um : float, optional
        Full width of the boundary band (default ``seg.settings.band_um``), centred on the outlines.
    fines_um : float, optional
        Particles under this equivalent diameter are fines (default ``seg.settings.fines_um``).

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from semcathode.morphology import segment_particles
    >>> yy, xx = np.mgrid[:120, :120]
    >>> img = 0.2 + 0.6 * ((yy - 60) ** 2 + (xx - 60) ** 2 < 30 ** 2)
    >>> r = particle_regions(segment_particles(img, 0.5), band_um=2.0)
    >>> [REGIONS[k] for k in (r[60, 60], r[60, 30], r[5, 5])]
    ['interior', 'boundary', 'background']
    """
    from skimage.segmentation import find_boundaries

    s = seg.settings
    band = s.band_um if band_um is None else band_um
    fines = s.fines_um if fines_um is None else fines_um
    labels, px = seg.labels, seg.pixel_size_um
    area = np.bincount(labels.ravel()) * px * px
    diameter = np.sqrt(4 * area / np.pi)
    is_fine = diameter < fines
    is_fine[0] = False
    out = np.full(labels.shape, REGIONS.index("background"), np.uint8)
    out[labels > 0] = REGIONS.index("interior")
    edges = find_boundaries(labels, mode="thick")  # the pixels on both sides of every outline
    near = (ndi.distance_transform_edt(~edges) + 0.5) * px <= band / 2  # the outline lies between them
    out[near] = REGIONS.index("boundary")
    out[is_fine[labels]] = REGIONS.index("fines")
    return out


def particle_energy(cam: np.ndarray, seg: Segmentation, band_um: float | None = None,
                    fines_um: float | None = None) -> dict[str, float]:
    """The CAM's energy and the area of every region of :func:`particle_regions`, as shares.

    Parameters
    ----------
    cam : numpy.ndarray
        ``(H, W)`` map >= 0 over the same micrograph (any resolution: resized to the segmentation).
    seg : Segmentation
    band_um, fines_um : float, optional

    Returns
    -------
    dict
        ``energy_<region>``, ``area_<region>`` and ``ratio_<region>`` (energy over area; NaN
        for a region of no area) for each of :data:`REGIONS`.

    Examples
    --------
    >>> import numpy as np
    >>> from semcathode.morphology import segment_particles
    >>> yy, xx = np.mgrid[:120, :120]
    >>> img = 0.2 + 0.6 * ((yy - 60) ** 2 + (xx - 60) ** 2 < 30 ** 2)
    >>> seg = segment_particles(img, 0.5)
    >>> round(particle_energy(np.ones((7, 7)), seg)["ratio_interior"], 3)  # a flat map: no preference
    1.0
    >>> particle_energy((yy - 60) ** 2 + (xx - 60) ** 2 < 10 ** 2, seg)["energy_interior"]
    1.0
    """
    from ._images import resize_map

    regions = particle_regions(seg, band_um, fines_um)
    m = np.clip(np.nan_to_num(resize_map(np.asarray(cam, np.float32), regions.shape)), 0, None)
    total = float(m.sum())
    out: dict[str, float] = {}
    for k, name in enumerate(REGIONS):
        sel = regions == k
        a = float(sel.mean())
        e = float(m[sel].sum() / total) if total > 0 else np.nan
        out.update({f"energy_{name}": e, f"area_{name}": a, f"ratio_{name}": e / a if a > 0 else np.nan})
    return out


def cam_particle_table(records: pd.DataFrame | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Mean energy and area shares per (arm, class) and over every micrograph of an arm (``'(all)'``).

    Parameters
    ----------
    records : DataFrame or list of dict
        Rows with ``arm``, ``label`` and the columns of :func:`particle_energy`.

    Returns
    -------
    DataFrame
        ``arm, label, n`` and, per region, ``energy_*``, ``area_*`` and ``ratio_*`` (the ratio of the
        mean shares).
    """
    df = pd.DataFrame(list(records) if not isinstance(records, pd.DataFrame) else records)
    cols = ["arm", "label", "n"] + [f"{q}_{r}" for r in REGIONS for q in ("energy", "area", "ratio")]
    need = [f"energy_{r}" for r in REGIONS]
    if df.empty or any(c not in df for c in need):
        return pd.DataFrame(columns=cols)
    rows = []
    for arm, g in df.groupby("arm", sort=False):
        for lab, gg in [*g.groupby("label", sort=False), ("(all)", g)]:
            row: dict[str, Any] = {"arm": arm, "label": lab, "n": len(gg)}
            for r in REGIONS:
                e, a = float(gg[f"energy_{r}"].mean()), float(gg[f"area_{r}"].mean())
                row.update({f"energy_{r}": e, f"area_{r}": a, f"ratio_{r}": e / a if a > 0 else np.nan})
            rows.append(row)
    return pd.DataFrame(rows, columns=cols)
