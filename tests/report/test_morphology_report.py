"""Figures and prose of the morphology."""

from __future__ import annotations

import numpy as np
import pandas as pd

from semcathode.config import MorphologyConfig
from semcathode.report._morphology import (cam_particle_note, measures_baseline_note, measures_note, plot_measures,
                                          plot_outlines)


def _summary(d50):
    return pd.DataFrame([{"label": k, "measure": m, "n": 5, "mean": v if m == "d50_um" else 0.7, "median": v,
                          "ci_low": v, "ci_high": v} for k, v in d50.items() for m in ("d50_um", "circularity")])


def test_measures_note_states_the_settings_and_the_range():
    text = measures_note(_summary({"A": 4.0, "B": 9.5}), MorphologyConfig(fines_um=2.5))
    assert "fines under 2.5 µm" in text and "4.00 µm (A)" in text and "9.50 µm (B)" in text
    assert "one session per class" in text


def test_baseline_note_quotes_scores_and_measures_and_warns_of_sessions():
    scores = pd.DataFrame({"split": ["frame-block test", "session tail"], "macro_f1": [0.91, 0.82], "C": [1.0, 1.0]})
    weights = pd.DataFrame({"measure": ["texture", "d50_um", "solidity", "x"]})
    text = measures_baseline_note(scores, weights)
    assert "0.910 on the frame-block test" in text and "`texture`, `d50_um`, `solidity`" in text
    assert "imaging session" in text


def test_cam_particle_note_reads_the_ratios_honestly():
    row = {"arm": "a", "label": "(all)", "n": 3}
    flat = {**row, **{f"{q}_{r}": (1.0 if q == "ratio" else 0.25) for r in ("boundary", "interior", "fines", "background")
                      for q in ("energy", "area", "ratio")}}
    assert "not supported" in cam_particle_note(pd.DataFrame([flat]))
    peaked = {**flat, "ratio_boundary": 1.6, "energy_boundary": 0.4}
    assert "weigh particle boundaries most (x1.60" in cam_particle_note(pd.DataFrame([peaked]))


def test_figures_draw(synthetic_root):
    from semcathode.data._manifest import index_folder

    man = index_folder(synthetic_root)
    rows = man.drop_duplicates("label").head(2)
    fig = plot_outlines(rows, MorphologyConfig(), crop_um=40)
    assert len([a for a in fig.axes if a.images]) == 2
    m = pd.DataFrame({"label": ["a"] * 4 + ["b"] * 4, "domain": "source", "error": "",
                      **{c: np.arange(8.0) for c in ("d50_um", "circularity", "fines_share", "boundary_um_per_um2")}})
    assert len(plot_measures(m, ["a", "b"]).axes) == 4
