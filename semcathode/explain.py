"""The Grad-CAM study of trained arms (notebook 05): sample micrographs, compute CAMs,
save overlays, measure what the model looks at, and hook up the gallery and the explorer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .cam import cam_grid, explain_items, make_cam_fn, save_overlay
from .export import ExportedModel, load_model
from .preprocess import load_bar_free, preprocess_image

__all__ = ["load_run_models", "cam_sample", "row_loader", "cam_study", "cam_note", "explorer_for"]


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
    """``row -> (bar-free grey image with the row's acquisition shift, normalised input)``."""

    def load(row: pd.Series) -> tuple[np.ndarray, torch.Tensor]:
        grey = load_bar_free(row)
        arr = preprocess_image(grey, model.params, row.get("pixel_size_um"))
        return grey, model.normalise(arr)

    return load


def cam_study(models: dict[str, ExportedModel], sample: pd.DataFrame, out_dir: str | Path, method: str = "gradcam",
              steps: int = 8, opacity: float = 0.45, max_side: int = 640) -> tuple[pd.DataFrame, dict]:
    """CAMs of every arm on the sampled micrographs, with overlays and quantitative records.

    Overlays are saved as JPEG with the longer side at most ``max_side`` pixels (the report
    stays small); ``semcathode cam`` writes full-resolution PNGs instead.

    Returns
    -------
    records : DataFrame
        One row per (arm, micrograph): label, pred, correct, probabilities, energy share on
        particle boundaries / cracks vs the uniform expectation, deletion AUCs, overlay path.
    grids : dict
        ``{arm: matplotlib Figure}`` overlay grids.
    """
    out_dir = Path(out_dir)
    recs, grids = [], {}
    for arm, model in models.items():
        load = row_loader(model)
        loaded = [load(r) for _, r in sample.iterrows()]
        greys = [g for g, _ in loaded]
        x = torch.cat([t for _, t in loaded])
        cams, rec = explain_items(model.model, x, greys, list(sample["label"]), model.classes, method=method,
                                  arm=arm, steps=steps)
        probs = model.predict_tensor(x)
        rec["image_id"] = sample.index.to_numpy()
        rec["path"] = sample["path"].to_numpy()
        rec["domain"] = sample["domain"].to_numpy()
        for j, c in enumerate(model.classes):
            rec[f"p_{c}"] = probs[:, j]
        rec["probs"] = [", ".join(f"{model.classes[k]} {p[k]:.2f}" for k in np.argsort(-p)[:3]) for p in probs]
        paths = []
        for i, (g, cam) in enumerate(zip(greys, cams)):
            p = save_overlay(out_dir / "overlays" / f"{arm}_{i:03d}_{sample['label'].iloc[i]}.jpg", g, cam, opacity,
                             max_side=max_side)
            paths.append(str(p.relative_to(out_dir)))
        rec["overlay_path"] = paths
        recs.append(rec)
        titles = [f"{r.label}\npred {r.pred}" for r in rec.itertuples()]
        grids[arm] = cam_grid(greys, list(cams), titles, ncol=6, opacity=opacity)
    return pd.concat(recs, ignore_index=True), grids


def cam_note(quant: pd.DataFrame) -> str:
    """What the quantitative CAM table shows, in words."""
    overall = quant[quant["label"] == "(all)"] if "label" in quant else quant
    parts = []
    for r in overall.itertuples():
        parts.append(
            f"{r.arm}: {r.energy_share:.0%} of the CAM energy lies on particle boundaries and crack-like lines that "
            f"cover {r.area_share:.0%} of the image (ratio {r.ratio:.2f}; 1 = uniform map); deleting the most-attended "
            f"pixels first lowers the class score with AUC {r.auc_cam:.2f} against {r.auc_random:.2f} for random order "
            f"({'faster than random: the attended pixels matter' if r.auc_cam < r.auc_random else 'not faster than random'})."
        )
    return " ".join(parts)


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
