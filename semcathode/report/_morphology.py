"""Figures and prose of the morphology: measures per class, outlines over micrographs, the CAM on particles."""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..config._sections import MorphologyConfig  # noqa: E402

__all__ = ["plot_measures", "plot_outlines", "measures_note", "measures_baseline_note", "cam_particle_note"]

#: Axis labels of the measures.
LABELS: dict[str, str] = {
    "d50_um": "D50 (µm, by number)", "d90_um": "D90 (µm)", "d10_um": "D10 (µm)", "d50_area_um": "D50 by area (µm)",
    "circularity": "circularity 4πA/P²", "solidity": "solidity", "fines_share": "share of fines",
    "boundary_um_per_um2": "boundary (µm per µm²)", "per_1000um2": "particles per 1000 µm²",
    "texture": "surface texture (grey std < 1 µm)", "area_fraction": "area fraction",
}


def _short(label: str) -> str:
    return label.replace("_pristine", " pri").replace("_formation", " form").replace("_cycled", " cyc")


def plot_measures(measures: pd.DataFrame, classes: Sequence[str],
                  columns: Sequence[str] = ("d50_um", "circularity", "fines_share", "boundary_um_per_um2"),
                  domain: str = "source"):
    """Box plots of per-micrograph measures per class (one panel per measure, every micrograph a dot).

    Parameters
    ----------
    measures : DataFrame
        :func:`semcathode.morphology.measure_manifest`.
    classes : sequence of str
        Order of the classes.
    columns : sequence of str
    domain : str
        Rows of this domain (``""``: all).

    Returns
    -------
    matplotlib.figure.Figure
    """
    df = measures[measures["error"].fillna("").astype(str) == ""]
    if domain and "domain" in df:
        df = df[df["domain"] == domain]
    order = [c for c in classes if (df["label"] == c).any()]
    fig, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 3.6), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, col in zip(axes.flat, columns):
        data = [pd.to_numeric(df.loc[df["label"] == c, col], errors="coerce").dropna().to_numpy() for c in order]
        ax.boxplot(data, vert=False, widths=0.6, showfliers=False)
        for k, v in enumerate(data):
            ax.plot(v, k + 1 + rng.uniform(-0.18, 0.18, len(v)), ".", ms=2.5, alpha=0.5, color="tab:blue")
        ax.set_yticks(range(1, len(order) + 1), [_short(c) for c in order] if ax is axes.flat[0] else [""] * len(order))
        ax.invert_yaxis()
        ax.set_xlabel(LABELS.get(col, col))
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_outlines(rows: pd.DataFrame, settings: MorphologyConfig | None = None, pixel_size_um: float | None = None,
                  crop_um: float = 120.0, ncol: int = 3):
    """One micrograph per row with the segmented particle outlines drawn over it (a ``crop_um`` square
    from its top-left corner, at the micrograph's own resolution, so that the outlines can be checked).

    Parameters
    ----------
    rows : DataFrame
        Manifest rows (``path``, ``bar_row``, ``pixel_size_um``, ``label``...).
    settings : MorphologyConfig, optional
    pixel_size_um : float, optional
        For rows whose manifest gives none.
    crop_um : float
        Side of the square shown.
    ncol : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..data._preprocess import load_bar_free
    from ..morphology import micrograph_measures, segment_particles
    from ..morphology._overlay import outline_overlay

    n = len(rows)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 4.4 * nrow), squeeze=False)
    for ax, (_, r) in zip(axes.flat, rows.iterrows()):
        px = r.get("pixel_size_um")
        px = float(px) if px is not None and px == px else pixel_size_um
        grey = load_bar_free(r)
        seg = segment_particles(grey, px, settings)
        m = micrograph_measures(seg)
        side = int(round(crop_um / px))
        ax.imshow(outline_overlay(grey, seg)[:side, :side])
        ax.set_title(f"{r['label']}\nD50 {m['d50_um']:.1f} µm · circ {m['circularity']:.2f} · "
                     f"{m['n_particles']} particles", fontsize=9)
        ax.plot([side * 0.05, side * 0.05 + 20 / px], [side * 0.94] * 2, color="yellow", lw=3)
        ax.text(side * 0.05, side * 0.9, "20 µm", color="yellow", fontsize=9)
        ax.axis("off")
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def measures_note(summary: pd.DataFrame, settings: MorphologyConfig) -> str:
    """What the per-class measures say, with the settings in µm (markdown, one paragraph)."""
    d50 = summary[summary["measure"] == "d50_um"].set_index("label")
    circ = summary[summary["measure"] == "circularity"].set_index("label")
    if d50.empty:
        return "No micrograph could be measured."
    lo, hi = d50["mean"].idxmin(), d50["mean"].idxmax()
    return (f"Particles were segmented at {settings.work_um:g} µm/px (denoised over {settings.denoise_um:g} µm, "
            f"Otsu or a local threshold over {settings.local_block_um:g} µm chosen per micrograph, touching particles "
            f"split where the distance map has a maximum {settings.marker_h_um:g} µm above its saddle, particles under "
            f"{settings.min_diameter_um:g} µm dropped, fines under {settings.fines_um:g} µm). "
            f"Mean D50 by number ranges from {d50.loc[lo, 'mean']:.2f} µm ({lo}) to {d50.loc[hi, 'mean']:.2f} µm ({hi}); "
            f"median circularity from {circ['mean'].min():.2f} to {circ['mean'].max():.2f}. The D50 by number is pulled "
            "down by fragments and fines; the area-weighted D50 (`d50_area_um`) is closer to what laser diffraction "
            "weighs. Intervals resample micrographs of one session per class: they say how well that session's mean "
            "is known, not how another session of the same material would differ.")


def measures_baseline_note(scores: pd.DataFrame, weights: pd.DataFrame, others: dict[str, float] | None = None) -> str:
    """The measures-only classifier in words: its scores, what carries it, and the CNN beside it."""
    if scores.empty:
        return "The measures-only baseline could not be fitted."
    f1 = dict(zip(scores["split"], scores["macro_f1"]))
    top = ", ".join(f"`{m}`" for m in weights["measure"].head(3))
    text = ("A logistic regression on the per-micrograph measures alone (no pixels, no network) reaches macro-F1 "
            + ", ".join(f"{v:.3f} on the {k}" for k, v in f1.items())
            + f" (C = {scores['C'].iloc[0]:g}, chosen on the pre-tail). The measures that carry it most "
            f"(macro-F1 lost on the frame-block test when shuffled): {top}.")
    if others:
        text += " Beside it: " + ", ".join(f"{k} {v:.3f}" for k, v in others.items()) + "."
    text += (" Each class is one imaging session, so a measure can also separate sessions (focus, detector, "
             "contrast): the texture measure in particular reads grey-level detail that the instrument shapes as much "
             "as the material. Read its share as an upper bound on what the morphology explains.")
    return text


def cam_particle_note(table: pd.DataFrame) -> str:
    """The CAM energy on particle boundaries, interiors, fines and background against their area, in words."""
    if table.empty:
        return "No CAM was compared with the segmentation."
    parts = []
    for _, r in table[table["label"] == "(all)"].iterrows():
        bits = ", ".join(f"{k} {r[f'energy_{k}']:.2f} of the energy on {r[f'area_{k}']:.2f} of the area "
                         f"(x{r[f'ratio_{k}']:.2f})" for k in ("boundary", "interior", "fines", "background"))
        parts.append(f"{r['arm']}: {bits}")
    verdict = []
    allrows = table[table["label"] == "(all)"]
    if len(allrows):
        b = float(allrows["ratio_boundary"].mean())
        i = float(allrows["ratio_interior"].mean())
        g = float(allrows["ratio_background"].mean())
        if max(b, i) <= 1.1:
            verdict.append("the maps are not concentrated on particles: the claim that Grad-CAM shows particle "
                           "cracking or boundaries is not supported by this check")
        else:
            where = "boundaries" if b >= i else "interiors"
            verdict.append(f"the maps weigh particle {where} most (x{max(b, i):.2f} their area share), "
                           f"background x{g:.2f}")
    return ("CAM energy against the segmented particles (a band of fixed width around the outlines, the particle "
            "interiors, the fines and the background; ratio 1 = no preference): " + "; ".join(parts) + ". "
            + (verdict[0][0].upper() + verdict[0][1:] + "." if verdict else ""))
