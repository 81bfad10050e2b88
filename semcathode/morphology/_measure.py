"""What a battery scientist reads off a micrograph, measured on its segmented particles, in µm.

:func:`particle_table`, one row per particle:

* equivalent diameter and area from ``regionprops_table`` with ``spacing`` (so in µm);
* the perimeter: the Crofton estimate of ``perimeter_crofton`` (within 1 % on a digital disc);
  circularity 4πA/P²;
* solidity: pixels over the lattice points of their convex hull (1 for a convex particle);
* eccentricity, intensity mean and std, and a surface-texture measure, from the moments of every
  label at once;
* whether it touches the border.

The perimeter and the moments are computed for every label in one pass (the definitions of
``regionprops``, which computes them region by region: 10x slower on ~1000 particles; a test
keeps the two equal). :func:`micrograph_measures`, one row per micrograph: count and number
density, D10/D50/D90 (particles touching the border left out of the size statistics), area
fraction, boundary length per area, median circularity and solidity, the share of fines and the
median surface texture.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ._segment import Segmentation

__all__ = ["PARTICLE_COLUMNS", "MEASURE_COLUMNS", "particle_table", "micrograph_measures"]

#: Columns of :func:`particle_table`.
PARTICLE_COLUMNS: tuple[str, ...] = (
    "particle", "diameter_um", "area_um2", "perimeter_um", "circularity", "solidity", "eccentricity",
    "intensity_mean", "intensity_std", "texture", "centroid_y_um", "centroid_x_um", "touches_border",
)

#: The measures of :func:`micrograph_measures` (the interpretable description of a micrograph).
MEASURE_COLUMNS: tuple[str, ...] = (
    "n_particles", "n_sized", "per_1000um2", "d10_um", "d50_um", "d90_um", "d50_area_um", "area_fraction",
    "boundary_um_per_um2", "circularity", "solidity", "fines_share", "texture",
)

#: Scale (µm) of the high-pass filter behind ``texture``: intensity detail finer than this.
_TEXTURE_UM = 1.0


def _touching(labels: np.ndarray) -> np.ndarray:
    """Labels (bool per label id) of regions that touch the image border."""
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    touch = np.zeros(int(labels.max()) + 1, bool)
    touch[np.unique(edge)] = True
    touch[0] = False
    return touch


#: Crofton weights of the 16 configurations of a 2 x 2 window (4 directions), indexed by the code
#: ``own[i, j] + 2 own[i-1, j] + 4 own[i, j-1] + 8 own[i-1, j-1]``: the weights of scikit-image's
#: ``perimeter_crofton``, applied here to every label of a label image in one pass.
_CROFTON = np.array([0, np.pi / 4 * (1 + 1 / np.sqrt(2)), np.pi / (4 * np.sqrt(2)), np.pi / (2 * np.sqrt(2)),
                     0, np.pi / 4 * (1 + 1 / np.sqrt(2)), 0, np.pi / (4 * np.sqrt(2)), np.pi / 4, np.pi / 2,
                     np.pi / (4 * np.sqrt(2)), np.pi / (4 * np.sqrt(2)), np.pi / 4, np.pi / 2, 0, 0])


def _crofton_perimeters(labels: np.ndarray) -> np.ndarray:
    """Crofton perimeter (px) of every label ``0..max`` at once, each as ``perimeter_crofton`` of its own mask."""
    n = int(labels.max()) + 1
    L = np.pad(labels, 1)
    here, up = L[1:, 1:], L[:-1, 1:]
    left, diag = L[1:, :-1], L[:-1, :-1]
    quad = (here, up, left, diag)
    out = np.zeros(n)
    for k, x in enumerate(quad):  # each label of a window once: where it first appears among the four
        first = x > 0
        for y in quad[:k]:
            first &= y != x
        xs = x[first]
        code = sum((y[first] == xs).astype(np.int64) << bit for y, bit in zip(quad, (0, 1, 2, 3)))
        out += np.bincount(xs, _CROFTON[code], minlength=n)
    return out


def _hull_pixels(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Pixels of each label's convex hull: the lattice points inside or on the convex hull of its pixel
    centres (Pick's theorem, A + B/2 + 1), so that a convex digital region has solidity exactly 1.

    One pass over the outlines instead of one filled hull image per region (``regionprops``'
    ``area_convex``, which also counts a margin of half a pixel around the hull).
    """
    from scipy.spatial import ConvexHull
    from skimage.segmentation import find_boundaries

    edge = find_boundaries(labels, mode="inner") & (labels > 0)
    lab = labels[edge]
    order = np.argsort(lab, kind="stable")
    ys, xs = np.nonzero(edge)
    pts = np.stack([ys, xs], 1)[order]
    starts = np.searchsorted(lab[order], ids)
    ends = np.searchsorted(lab[order], ids, side="right")
    out = np.zeros(len(ids))
    for k, (a, b) in enumerate(zip(starts, ends)):
        p = pts[a:b]
        try:
            hull = ConvexHull(p.astype(np.float64))
        except Exception:  # noqa: BLE001 - a degenerate (collinear) outline: no area, its pixels are its hull
            continue
        v = p[hull.vertices]
        d = np.abs(np.diff(np.vstack([v, v[:1]]), axis=0))
        out[k] = hull.volume + np.gcd(d[:, 0], d[:, 1]).sum() / 2 + 1  # hull.volume is the area in 2-D
    return out


def particle_table(seg: Segmentation) -> pd.DataFrame:
    """One row per segmented particle, lengths in µm.

    Parameters
    ----------
    seg : Segmentation
        From :func:`~semcathode.morphology.segment_particles`.

    Returns
    -------
    DataFrame
        :data:`PARTICLE_COLUMNS`. ``circularity`` is 4πA/P² (1 for a disc, lower for ragged or
        elongated outlines); ``texture`` is the std, inside the particle, of the intensity detail
        finer than 1 µm (rough, cracked or film-covered surfaces score higher); intensities are in
        the micrograph's grey units [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from semcathode.morphology import segment_particles
    >>> yy, xx = np.mgrid[:200, :200]
    >>> img = 0.2 + 0.6 * ((yy - 100) ** 2 + (xx - 100) ** 2 < 40 ** 2)
    >>> t = particle_table(segment_particles(img, 0.5))
    >>> round(float(t.diameter_um[0]), 1), bool(t.circularity[0] > 0.9)
    (40.0, True)
    """
    from skimage.measure import regionprops_table

    labels, px = seg.labels, seg.pixel_size_um
    if labels.max() == 0:
        return pd.DataFrame(columns=list(PARTICLE_COLUMNS))
    t = regionprops_table(labels, spacing=(px, px),
                          properties=("label", "area", "equivalent_diameter_area"))
    ids = t["label"]
    area, perim = t["area"], _crofton_perimeters(labels)[ids] * px
    with np.errstate(divide="ignore", invalid="ignore"):
        circ = np.where(perim > 0, 4 * np.pi * area / np.maximum(perim, 1e-12) ** 2, np.nan)
    # moments and intensities of every label at once (regionprops computes them region by region)
    detail = seg.image - ndi.gaussian_filter(seg.image, _TEXTURE_UM / px)
    yy, xx = np.indices(labels.shape, dtype=np.float64)
    n = np.bincount(labels.ravel())[ids]
    hull = _hull_pixels(labels, ids)

    def mean(v: np.ndarray) -> np.ndarray:
        return np.bincount(labels.ravel(), np.asarray(v, np.float64).ravel())[ids] / n

    cy, cx = mean(yy), mean(xx)
    vyy, vxx, vxy = mean(yy * yy) - cy ** 2, mean(xx * xx) - cx ** 2, mean(yy * xx) - cy * cx
    half_gap = np.sqrt(((vyy - vxx) / 2) ** 2 + vxy ** 2)
    l1, l2 = (vyy + vxx) / 2 + half_gap, np.maximum((vyy + vxx) / 2 - half_gap, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ecc = np.where(l1 > 0, np.sqrt(np.clip(1 - l2 / l1, 0, 1)), 0.0)
    i_mean = mean(seg.image)
    out = pd.DataFrame({
        "particle": ids.astype(int),
        "diameter_um": t["equivalent_diameter_area"],
        "area_um2": area,
        "perimeter_um": perim,
        "circularity": np.minimum(circ, 1.0),
        "solidity": np.where(hull > 0, np.minimum(n / np.maximum(hull, 1), 1.0), 1.0),
        "eccentricity": ecc,
        "intensity_mean": i_mean,
        "intensity_std": np.sqrt(np.maximum(mean(seg.image.astype(np.float64) ** 2) - i_mean ** 2, 0)),
        "texture": np.sqrt(np.maximum(mean(detail.astype(np.float64) ** 2) - mean(detail) ** 2, 0)),
        "centroid_y_um": cy * px,
        "centroid_x_um": cx * px,
        "touches_border": _touching(labels)[ids],
    })
    return out[list(PARTICLE_COLUMNS)]


def _quantiles(d: np.ndarray) -> tuple[float, float, float]:
    if not len(d):
        return (np.nan, np.nan, np.nan)
    q = np.percentile(d, [10, 50, 90])
    return float(q[0]), float(q[1]), float(q[2])


def _area_weighted_median(d: np.ndarray, a: np.ndarray) -> float:
    if not len(d):
        return np.nan
    order = np.argsort(d)
    cum = np.cumsum(a[order]) / a.sum()
    return float(d[order][np.searchsorted(cum, 0.5)])


def micrograph_measures(seg: Segmentation, particles: pd.DataFrame | None = None) -> dict[str, float]:
    """The per-micrograph measures of one segmentation.

    Parameters
    ----------
    seg : Segmentation
    particles : DataFrame, optional
        Its :func:`particle_table` (computed when omitted).

    Returns
    -------
    dict
        :data:`MEASURE_COLUMNS`:

        * ``n_particles`` every particle; ``per_1000um2`` their number per 1000 µm² of micrograph;
        * ``n_sized`` those that do not touch the border: the size and shape statistics use only
          these (a cut particle would look smaller than it is);
        * ``d10_um``, ``d50_um``, ``d90_um``: quantiles of the equivalent diameter by number;
          ``d50_area_um`` the area-weighted median (closer to what a laser-diffraction D50 weighs);
        * ``area_fraction`` of the micrograph covered by particles;
        * ``boundary_um_per_um2``: particle outline length per micrograph area;
        * ``circularity``, ``solidity``, ``texture``: medians over the sized particles;
        * ``fines_share``: share of the sized particles under ``settings.fines_um``.

    Examples
    --------
    >>> import numpy as np
    >>> from semcathode.morphology import segment_particles
    >>> yy, xx = np.mgrid[:200, :200]
    >>> img = 0.2 + 0.6 * ((yy - 100) ** 2 + (xx - 100) ** 2 < 40 ** 2)
    >>> m = micrograph_measures(segment_particles(img, 0.5))
    >>> m["n_particles"], round(m["d50_um"], 1), round(m["area_fraction"], 2)
    (1, 40.0, 0.13)
    """
    t = particle_table(seg) if particles is None else particles
    px = seg.pixel_size_um
    field_um2 = seg.labels.size * px * px
    sized = t[~t["touches_border"].astype(bool)]
    d = sized["diameter_um"].to_numpy(float)
    d10, d50, d90 = _quantiles(d)
    med = {c: float(sized[c].median()) if len(sized) else np.nan for c in ("circularity", "solidity", "texture")}
    return {
        "n_particles": int(len(t)),
        "n_sized": int(len(sized)),
        "per_1000um2": float(len(t) / field_um2 * 1000.0),
        "d10_um": d10, "d50_um": d50, "d90_um": d90,
        "d50_area_um": _area_weighted_median(d, sized["area_um2"].to_numpy(float)),
        "area_fraction": float((seg.labels > 0).mean()),
        "boundary_um_per_um2": float(t["perimeter_um"].sum() / field_um2),
        "circularity": med["circularity"], "solidity": med["solidity"],
        "fines_share": float((d < seg.settings.fines_um).mean()) if len(d) else np.nan,
        "texture": med["texture"],
    }
