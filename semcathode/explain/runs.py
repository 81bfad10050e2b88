"""The Grad-CAM study of trained arms (notebook 05): sample micrographs, compute CAMs,
save overlays, measure what the model looks at, and hook up the gallery and the explorer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .cam import cam_grid, explain_items, make_cam_fn, save_overlay
from ..models.export import ExportedModel, load_model
from ..data.preprocess import load_bar_free, preprocess_image

__all__ = ["load_run_models", "cam_sample", "row_loader", "cam_study", "explorer_for"]


def load_run_models(run_dir: str | Path, arms: Sequence[str]) -> dict[str, ExportedModel]:
    """The models notebook 03 exported for ``arms`` (``03_finetune/model_<arm>.safetensors``)."""
    out = {}
    for arm in arms:
        p = Path(run_dir) / "03_finetune" / f"model_{arm}.safetensors"
        if not p.exists():
            raise FileNotFoundError(f"{p} not found: run notebook 03_finetune first with cam.arms including {arm}")
        out[arm] = load_model(p)
    return out


def cam_sample(manifest: pd.DataFrame, classes: Sequence[str], per_class: int = 2, domain: str = "target",
               split: str = "test") -> pd.DataFrame:
    """``per_class`` micrographs of every class from one domain's split (first frames in order)."""
    rows = manifest[(manifest["domain"] == domain) & (manifest["split"] == split) & manifest["label"].isin(classes)]
    return rows.groupby("label", sort=False).head(per_class).reset_index(drop=True)


def row_loader(model: ExportedModel):
    """``row -> (bar-free grey image with the row's acquisition shift, frame at the model's scale)``."""

    def load(row: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        grey = load_bar_free(row)
        return grey, preprocess_image(grey, model.params, row.get("pixel_size_um"), name=str(row.get("path", "")))

    return load


def _spread(n: int, k: int) -> np.ndarray:
    """``k`` indices spread evenly over ``range(n)``."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))


def cam_study(models: dict[str, ExportedModel], sample: pd.DataFrame, out_dir: str | Path, method: str = "gradcam",
              steps: int = 8, opacity: float = 0.45, max_side: int = 640,
              quant_tiles: int = 6) -> tuple[pd.DataFrame, dict]:
    """Particle-scale CAMs of every arm on the sampled micrographs, with overlays and measures.

    Each micrograph is brought to the model's scale and covered with its tile grid; every tile
    gets a CAM for the micrograph's predicted class and the CAMs are stitched into one map over
    the full-resolution micrograph (:func:`~semcathode.explain.micrograph_cam`). The quantitative
    check runs per tile at the model's scale (structure map of the tile, deletion on the tile)
    on ``quant_tiles`` tiles spread over the grid, averaged per micrograph. Overlays are saved
    as JPEG with the longer side at most ``max_side`` pixels.

    Returns
    -------
    records : DataFrame
        One row per (arm, micrograph): label, pred, correct, probabilities, energy share on
        particle boundaries / cracks vs their area share, deletion AUCs, tiles, overlay path.
    grids : dict
        ``{arm: matplotlib Figure}`` overlay grids.
    """
    from .cam import micrograph_cam

    out_dir = Path(out_dir)
    recs, grids = [], {}
    for arm, model in models.items():
        load = row_loader(model)
        rows, greys, cams = [], [], []
        for i, (_, r) in enumerate(sample.iterrows()):
            grey, arr = load(r)
            mc = micrograph_cam(model, grey, arr, method=method)
            sel = _spread(len(mc.inputs), quant_tiles)
            _, tile_rec = explain_items(model.model, mc.inputs[sel], list(mc.tiles[sel]), [r["label"]] * len(sel),
                                        model.classes, method=method, arm=arm, steps=steps, targets=[mc.target] * len(sel))
            pred = model.classes[mc.target]
            rec = {"arm": arm, "index": i, "label": r["label"], "pred": pred, "target": pred,
                   "correct": pred == r["label"], "prob_target": float(mc.probs[mc.target]), "method": method,
                   **tile_rec[["energy_share", "area_share", "ratio", "auc_cam", "auc_random"]].mean().to_dict(),
                   "n_tiles": len(mc.inputs), "quant_tiles": len(sel), "image_id": r.name,
                   **{k: r.get(k, "") for k in ("path", "domain", "shift", "sha256", "bar_row", "pixel_size_um")}}
            rec.update({f"p_{c}": float(p) for c, p in zip(model.classes, mc.probs)})
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


def explorer_for(records: pd.DataFrame, models: dict[str, ExportedModel], classes: Sequence[str]):
    """An ipywidgets explorer over ``records``; CAMs computed live with each row's arm model."""
    from .explorer import explore

    fns = {arm: make_cam_fn(m, load=row_loader(m), classes=m.classes) for arm, m in models.items()}
    rows = records.copy()

    def cam_fn(row: pd.Series, method: str, target_class: str | None):
        full = rows[rows["path"] == row["path"]].iloc[0].copy()
        full["shift"] = row.get("shift", full.get("shift", ""))
        return fns[row["arm"]](full, method, target_class)

    return explore(records, classes, cam_fn)
