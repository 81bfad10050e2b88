"""Report prose about the input representation and the training budgets."""

from __future__ import annotations

import pandas as pd

from ..config.run import RunConfig

__all__ = ["representation_note", "budget_note"]


def representation_note(cfg: RunConfig) -> str:
    """What the network sees, in words (scale, field of view, crops, tile grid, aggregation)."""
    p = cfg.preprocess
    if p.mode == "resize":
        return (f"Input: the whole bar-free micrograph squeezed to {p.size} x {p.size} px (the paper's input; its "
                "physical scale depends on the frame). One prediction per micrograph.")
    scale = (f"is resampled once from its instrument pixel size to {p.scale_um:g} µm/px" if p.scale_um
             else "is kept at its native pixel size")
    fov = f" ({p.size * p.scale_um:.0f} µm across)" if p.scale_um else ""
    agg = {"mean_log_prob": "the mean of their log-probabilities", "mean_prob": "the mean of their probabilities"}
    return (f"Input: every bar-free micrograph {scale}; the "
            f"network sees {p.size} x {p.size} px fields of view{fov}. Training draws {p.crops_per_image} random "
            f"crop(s) per micrograph per epoch (with flips, rotations, zoom and lighting); evaluation covers the "
            f"whole frame with a tile grid (stride {p.tile_stride:g} of a tile) and aggregates the tiles by "
            f"{agg.get(cfg.evaluate.aggregate, cfg.evaluate.aggregate)} into one prediction per micrograph.")


def budget_note(cfg: RunConfig, results: pd.DataFrame) -> str:
    """The fair-budget rule and the optimiser steps each arm actually made (mean over seeds)."""
    rule = ("Fair-budget rule: arms that do not start from the stage-1 model (FT-only, Scratch+FT) train at least "
            "as many optimiser steps as Pre+FT spends in both stages together (its stage-1 steps plus its stage-2 "
            f"steps on the same target images), capped at {cfg.protocol.fair_max_epochs} epochs."
            if cfg.protocol.fair_budget else
            "Fair-budget rule off (protocol.fair_budget = false): every arm trains the stage-2 schedule only.")
    if "steps" not in results or results.empty:
        return rule
    steps = results.groupby("arm", sort=False)["steps"].mean()
    return rule + " Optimiser steps per arm (stage 1 + stage 2, mean over seeds): " + ", ".join(
        f"{a} {v:.0f}" for a, v in steps.items()) + "."
