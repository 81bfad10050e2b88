"""The Grad-CAM study of trained arms (notebook 05): sample micrographs, compute CAMs,
save overlays, measure what the model looks at, and hook up the gallery and the explorer.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from ..data._preprocess import load_bar_free, preprocess_image
from ..models._export import ExportedModel, arm_model_file, load_model
from ._gallery import cam_grid
from ._measures import explain_items
from ._micrograph import make_cam_fn, micrograph_cam
from ._overlays import save_overlay
from ._particles import particle_energy

if TYPE_CHECKING:
    from ..config._sections import MorphologyConfig

__all__ = ["load_run_models", "cam_sample", "row_loader", "cam_study", "explorer_for"]


def load_run_models(run_dir: str | Path, arms: Sequence[str]) -> dict[str, ExportedModel]:
    """Load the exported models of ``arms``.

    Each arm's model is the file ``model_<arm>.safetensors`` that
    :func:`semcathode.study.export_models` writes, looked up in ``run_dir`` itself, else in
    the one folder directly below ``run_dir`` that holds it (so a run folder works: its
    notebook folders hold the exports).  No notebook folder name is assumed.

    Parameters
    ----------
    run_dir : str or Path
        The folder of the exported models, or a run folder with one sub-folder holding them.
    arms : sequence of str
        Arm names.

    Returns
    -------
    dict
        ``{arm: ExportedModel}`` in the order of ``arms``.

    Raises
    ------
    FileNotFoundError
        No ``model_<arm>.safetensors`` in ``run_dir`` or a folder directly below it.
    ValueError
        Several folders below ``run_dir`` hold one (pass the folder itself).
    """
    return {arm: load_model(_arm_model_path(Path(run_dir), arm)) for arm in arms}


def _arm_model_path(folder: Path, arm: str) -> Path:
    name = arm_model_file(arm)
    if (folder / name).is_file():
        return folder / name
    found = sorted(p for p in folder.glob(f"*/{glob.escape(name)}") if p.is_file())
    if len(found) == 1:
        return found[0]
    if not found:
        raise FileNotFoundError(f"{name} not found in {folder} or a folder directly below it: export the arm "
                                f"first (semcathode.study.export_models, run with cam.arms including {arm})")
    raise ValueError(f"{name} is in several folders of {folder} ({', '.join(str(p.parent) for p in found)}); "
                     "pass the folder that holds the models")


def cam_sample(manifest: pd.DataFrame, classes: Sequence[str], per_class: int = 2, domain: str = "target",
               split: str = "test") -> pd.DataFrame:
    """``per_class`` micrographs of every class from one domain's split (first frames in order).

    Parameters
    ----------
    manifest : DataFrame
        The study manifest (``domain``, ``split``, ``label`` columns and the rest of a row).
    classes : sequence of str
        Classes to sample.
    per_class : int
        Micrographs per class (fewer where a class has fewer).
    domain, split : str
        Which domain and split to sample from.

    Returns
    -------
    DataFrame
        The sampled manifest rows, grouped by class in order of appearance, index reset.
    """
    rows = manifest[(manifest["domain"] == domain) & (manifest["split"] == split) & manifest["label"].isin(classes)]
    return rows.groupby("label", sort=False).head(per_class).reset_index(drop=True)


def row_loader(model: ExportedModel):
    """A loader of manifest rows for ``model``.

    Parameters
    ----------
    model : ExportedModel
        Its pre-processing parameters bring the frame to the model's scale.

    Returns
    -------
    callable
        ``load(row) -> (bar-free grey image with the row's acquisition shift, uint8 frame at the
        model's scale)``.
    """

    def load(row: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        grey = load_bar_free(row)
        return grey, preprocess_image(grey, model.params, row.get("pixel_size_um"), name=str(row.get("path", "")))

    return load


def _spread(n: int, k: int) -> np.ndarray:
    """``k`` indices spread evenly over ``range(n)``."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))


def cam_study(models: dict[str, ExportedModel], sample: pd.DataFrame, out_dir: str | Path, method: str = "gradcam",
              steps: int = 8, opacity: float = 0.45, max_side: int = 640,
              quant_tiles: int = 6, layer: str = "last",
              morphology: "MorphologyConfig | None" = None) -> tuple[pd.DataFrame, dict]:
    """Particle-scale CAMs of every arm on the sampled micrographs, with overlays and measures.

    Each micrograph is brought to the model's scale and covered with its tile grid; every tile
    gets a CAM for the micrograph's predicted class and the CAMs are stitched into one map over
    the full-resolution micrograph (:func:`~semcathode.explain.micrograph_cam`). The quantitative
    check runs per tile at the model's scale (structure map of the tile, deletion on the tile)
    on ``quant_tiles`` tiles spread over the grid, averaged per micrograph. Overlays are saved
    as JPEG with the longer side at most ``max_side`` pixels.

    Parameters
    ----------
    models : dict
        ``{arm: ExportedModel}`` (:func:`load_run_models`).
    sample : DataFrame
        Manifest rows to explain (:func:`cam_sample`).
    out_dir : str or Path
        Folder of the overlays (``out_dir/overlays``); overlay paths are recorded relative to it.
    method : str
        A key of :data:`~semcathode.explain._compute.CAM_METHODS`.
    steps : int
        Deletion-curve steps.
    opacity : float
        Heat-map weight of the overlays.
    max_side : int
        Longer side of a saved overlay, in pixels.
    quant_tiles : int
        Tiles per micrograph that get the quantitative check.
    layer : str
        Target layer (:func:`~semcathode.explain._layers.find_target_layer`): ``last`` (the head's feature
        map: 7 x 7 cells on a 224-px tile) or a block stage such as ``blocks.4`` (14 x 14: at the native
        0.26 µm/px about 4 µm cells, the particle scale).
    morphology : MorphologyConfig, optional
        Also segment every micrograph's particles and record the stitched CAM's energy on the
        particle boundaries, interiors, fines and background against their area
        (:func:`~semcathode.explain._particles.particle_energy`); None: not done.

    Returns
    -------
    records : DataFrame
        One row per (arm, micrograph): label, pred, correct, probabilities, energy share on
        particle boundaries / cracks vs their area share, deletion AUCs, tiles, overlay path.
    grids : dict
        ``{arm: matplotlib Figure}`` overlay grids.
    """
    out_dir = Path(out_dir)
    recs, grids = [], {}
    segmented: dict = {}  # each micrograph's particles, segmented once for every arm
    for arm, model in models.items():
        load = row_loader(model)
        fast = model.optimized()  # the forward-only passes (probabilities, deletion curves); CAMs hook `model`
        rows, greys, cams = [], [], []
        for i, (_, r) in enumerate(sample.iterrows()):
            grey, arr = load(r)
            mc = micrograph_cam(model, grey, arr, method=method, target_layer=layer, forward=fast)
            sel = _spread(len(mc.inputs), quant_tiles)
            _, tile_rec = explain_items(model.model, mc.inputs[sel], list(mc.tiles[sel]), [r["label"]] * len(sel),
                                        model.classes, method=method, arm=arm, steps=steps, targets=[mc.target] * len(sel),
                                        target_layer=layer, forward_model=fast.model)
            pred = model.classes[mc.target]
            rec = {"arm": arm, "index": i, "label": r["label"], "pred": pred, "target": pred, "layer": layer,
                   "correct": pred == r["label"], "prob_target": float(mc.probs[mc.target]), "method": method,
                   **tile_rec[["energy_share", "area_share", "ratio", "auc_cam", "auc_random"]].mean().to_dict(),
                   "n_tiles": len(mc.inputs), "quant_tiles": len(sel), "image_id": r.name,
                   **{k: r.get(k, "") for k in ("path", "domain", "shift", "sha256", "bar_row", "pixel_size_um")}}
            rec.update({f"p_{c}": float(p) for c, p in zip(model.classes, mc.probs)})
            if morphology is not None:
                if i not in segmented:
                    segmented[i] = _segment(grey, r, model, morphology)
                if segmented[i] is not None:
                    rec.update(particle_energy(mc.cam, segmented[i]))
            rec["probs"] = ", ".join(f"{model.classes[k]} {mc.probs[k]:.2f}" for k in np.argsort(-mc.probs)[:3])
            p = save_overlay(out_dir / "overlays" / f"{arm}_{i:03d}_{r['label']}.jpg", grey, mc.cam, opacity,
                             max_side=max_side)
            rec["overlay_path"] = str(p.relative_to(out_dir))
            rows.append(rec)
            greys.append(grey)
            cams.append(mc.cam)
        rec_df = pd.DataFrame(rows)
        recs.append(rec_df)
        titles = [f"{r.label}\npred {r.pred}" for r in rec_df.itertuples()]
        grids[arm] = cam_grid(greys, cams, titles, ncol=6, opacity=opacity)
    return pd.concat(recs, ignore_index=True), grids


def _segment(grey: np.ndarray, row: pd.Series, model: ExportedModel, settings: "MorphologyConfig"):
    """The particles of one micrograph at its row's pixel size (else the model's); None without either."""
    from ..morphology import segment_particles

    px = row.get("pixel_size_um")
    px = float(px) if px is not None and px == px else getattr(model.params, "pixel_size_um", None)
    return segment_particles(grey, px, settings) if px else None


def explorer_for(records: pd.DataFrame, models: dict[str, ExportedModel], classes: Sequence[str],
                 morphology: "MorphologyConfig | None" = None):
    """An ipywidgets explorer over ``records``; CAMs computed live with each row's arm model.

    Parameters
    ----------
    records : DataFrame
        The records of :func:`cam_study` (``path``, ``arm``, ``label``, ``pred``, ``p_<class>``...).
    models : dict
        ``{arm: ExportedModel}``, one for every arm in ``records``.
    classes : sequence of str
        Class names.
    morphology : MorphologyConfig, optional
        Enables the explorer's particle-outlines toggle (each micrograph segmented on first use).

    Returns
    -------
    Explorer
        Display it in a notebook; inert without a live kernel.
    """
    from ._explorer import explore

    fns = {arm: make_cam_fn(m, load=row_loader(m), classes=m.classes) for arm, m in models.items()}
    rows = records.copy()

    def cam_fn(row: pd.Series, method: str, target_class: str | None):
        full = rows[rows["path"] == row["path"]].iloc[0].copy()
        full["shift"] = row.get("shift", full.get("shift", ""))
        return fns[row["arm"]](full, method, target_class)

    outlines_fn = None
    if morphology is not None:
        from ..morphology import segment_particles
        from ..morphology._overlay import outline_mask

        def outlines_fn(row: pd.Series, shape: tuple[int, int]) -> np.ndarray:
            full = rows[rows["path"] == row["path"]].iloc[0]
            px = full.get("pixel_size_um")
            if px is None or px != px:
                raise ValueError(f"{full['path']}: no pixel size: the particles cannot be segmented in µm")
            return outline_mask(segment_particles(load_bar_free(full), float(px), morphology), shape) > 0

    return explore(records, classes, cam_fn, outlines_fn=outlines_fn)
