"""The per-class morphology summary and the measures-only baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from semcathode.study._measures import BASELINE_MEASURES, baseline_comparison, measure_summary, measures_baseline


def _measures(n=30, seed=0, informative="d50_um"):
    """Three classes that differ only in ``informative``; every other measure is noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, label in enumerate(["a", "b", "c"]):
        for i in range(n):
            split = "train" if i < n * 0.6 else ("valid" if i < n * 0.7 else ("test" if i < n * 0.85 else "tail"))
            r = {c: rng.normal(1.0, 0.1) for c in BASELINE_MEASURES}
            r[informative] = 4.0 + 2.0 * k + rng.normal(0, 0.3)
            rows.append({"path": f"{label}{i}.png", "label": label, "domain": "source", "split": split, "error": "", **r})
    return pd.DataFrame(rows)


def test_the_baseline_learns_the_informative_measure_and_names_it():
    scores, weights, preds = measures_baseline(_measures(), ["a", "b", "c"])
    assert list(scores.split) == ["pre-tail (valid)", "frame-block test", "session tail"]
    assert (scores.macro_f1 > 0.9).all()
    assert weights.measure.iloc[0] == "d50_um" and weights.importance.iloc[0] > 0.3
    assert weights.importance.iloc[1:].abs().max() < 0.1
    assert set(preds.split) == set(scores.split) and len(preds) == scores.n.sum()


def test_noise_measures_score_near_chance():
    m = _measures(n=60)
    for c in BASELINE_MEASURES:  # make the informative one noise too
        m[c] = np.random.default_rng(1).normal(1.0, 0.1, len(m))
    scores, _, _ = measures_baseline(m, ["a", "b", "c"])
    assert scores.macro_f1.max() < 0.7


def test_failed_or_incomplete_micrographs_are_left_out_and_no_training_data_is_an_error():
    m = _measures()
    m.loc[0, "error"] = "a.png: unreadable"
    m.loc[1, "d50_um"] = np.nan
    scores, _, preds = measures_baseline(m, ["a", "b", "c"])
    assert "a0.png" not in set(preds.path) and "a1.png" not in set(preds.path)
    with pytest.raises(ValueError, match="no training micrograph"):
        measures_baseline(m[m.split != "train"], ["a", "b", "c"])


def test_summary_gives_intervals_per_class_and_measure():
    s = measure_summary(_measures(), ["c", "a"], ["d50_um", "circularity"], n_boot=200)
    assert list(s.label) == ["c", "c", "a", "a"]
    d = s[s.measure == "d50_um"].set_index("label")
    assert d.loc["c", "mean"] == pytest.approx(8.0, abs=0.3) and d.loc["a", "mean"] == pytest.approx(4.0, abs=0.3)
    assert (s.ci_low <= s["mean"]).all() and (s["mean"] <= s.ci_high).all() and (s.n == 30).all()


def test_comparison_puts_the_three_models_side_by_side():
    scores, _, _ = measures_baseline(_measures(), ["a", "b", "c"])
    cnn = pd.DataFrame({"split": ["frame-block test", "session tail"], "macro_f1_mean": [0.9, 0.8]})
    probe = pd.DataFrame({"domain": ["source", "source", "target"], "split": ["test", "tail", "test"],
                          "macro_f1": [0.7, 0.6, 0.1]})
    t = baseline_comparison(scores, cnn, probe)
    assert list(t.columns) == ["frame-block test", "session tail"] and len(t) == 3
    assert t.loc["CNN stage 1 (mean over seeds)", "session tail"] == 0.8
    assert t.loc["linear probe (frozen ImageNet, per tile)", "frame-block test"] == 0.7
