"""Tests of semcathode.metrics._intervals: bootstrap intervals and paired tests on tiny inputs."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from semcathode.metrics._intervals import (
    bootstrap_ci,
    image_bootstrap_ci,
    paired_comparison,
)


ABC = ["A", "B", "C"]


Y_TRUE = ["A", "A", "A", "B", "B", "C"]


Y_PRED = ["A", "A", "B", "B", "C", "C"]


def test_bootstrap_ci_contains_mean_and_is_deterministic():
    vals = [0.80, 0.82, 0.85, 0.88, 0.90]
    lo, hi = bootstrap_ci(vals, n_boot=2000, seed=1)
    assert 0.80 <= lo < 0.85 < hi <= 0.90
    assert bootstrap_ci(vals, n_boot=2000, seed=1) == (lo, hi)
    assert bootstrap_ci(vals, n_boot=2000, seed=2) != (lo, hi)


def test_bootstrap_ci_narrows_with_less_spread():
    wide = bootstrap_ci([0.80, 0.82, 0.85, 0.88, 0.90], seed=0)
    narrow = bootstrap_ci([0.84, 0.845, 0.85, 0.855, 0.86], seed=0)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    assert narrow[0] <= 0.85 <= narrow[1]


def test_bootstrap_ci_edge_cases():
    assert bootstrap_ci([0.7]) == (0.7, 0.7)
    assert bootstrap_ci([0.7, float("nan")]) == (0.7, 0.7)
    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
    lo, hi = bootstrap_ci([float("nan")])
    assert math.isnan(lo) and math.isnan(hi)
    with pytest.raises(ValueError):
        bootstrap_ci([0.1, 0.2], ci=1.5)


def test_image_bootstrap_ci():
    yt = Y_TRUE * 5
    yp = Y_PRED * 5
    lo, hi = image_bootstrap_ci(yt, yp, ABC, metric="macro_f1", n_boot=300, seed=0)
    assert 0.0 <= lo < 59 / 90 < hi <= 1.0
    assert image_bootstrap_ci(yt, yp, ABC, metric="macro_f1", n_boot=300, seed=0) == (lo, hi)
    alo, ahi = image_bootstrap_ci(yt, yp, ABC, metric="accuracy", n_boot=300, seed=0)
    assert alo < 4 / 6 < ahi
    assert image_bootstrap_ci(["A", "B", "C"], ["A", "B", "C"], ABC) == (1.0, 1.0)
    assert image_bootstrap_ci(["A"], ["B"], ABC, metric="accuracy") == (0.0, 0.0)
    with pytest.raises(ValueError, match="unknown metric"):
        image_bootstrap_ci(yt, yp, ABC, metric="auc")


def _paired(n: int, diffs) -> pd.DataFrame:
    b = [0.70 + 0.01 * i for i in range(n)]
    a = [x + d for x, d in zip(b, diffs)]
    return pd.DataFrame(
        {"arm": ["a"] * n + ["b"] * n, "seed": list(range(n)) * 2, "macro_f1": a + b}
    )


def test_paired_comparison_all_positive_six_seeds():
    diffs = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]
    r = paired_comparison(_paired(6, diffs), "a", "b")
    assert r["n"] == 6
    assert (r["wins"], r["ties"], r["losses"]) == (6, 0, 0)
    assert r["mean_diff"] == pytest.approx(0.035)
    # exact two-sided Wilcoxon, all 6 ranks positive: 2 / 2**6
    assert r["p_value"] == pytest.approx(0.03125)
    assert r["min_p"] == pytest.approx(0.03125)
    assert r["seeds"] == [0, 1, 2, 3, 4, 5]
    # reversed order flips the sign
    r2 = paired_comparison(_paired(6, diffs), "b", "a")
    assert (r2["wins"], r2["losses"]) == (0, 6) and r2["mean_diff"] == pytest.approx(-0.035)


def test_paired_comparison_three_seeds_power_note():
    r = paired_comparison(_paired(3, [0.05, 0.06, 0.07]), "a", "b")
    assert r["n"] == 3 and r["wins"] == 3
    assert r["p_value"] == pytest.approx(0.25)
    assert "0.25" in r["note"]
    assert "cannot reach p<0.05" in r["note"]
    assert "little power" in r["note"]


def test_paired_comparison_edge_cases():
    r = paired_comparison(_paired(4, [0.0, 0.0, 0.0, 0.0]), "a", "b")
    assert r["p_value"] == 1.0 and r["ties"] == 4
    r = paired_comparison(_paired(1, [0.1]), "a", "b")
    assert r["n"] == 1 and math.isnan(r["p_value"])
    mixed = paired_comparison(_paired(5, [0.1, -0.05, 0.0, 0.02, 0.03]), "a", "b")
    assert (mixed["wins"], mixed["ties"], mixed["losses"]) == (3, 1, 1)
    assert mixed["mean_diff"] == pytest.approx(0.02)


def test_paired_comparison_only_common_seeds():
    df = pd.DataFrame(
        {
            "arm": ["a"] * 4 + ["b"] * 4,
            "seed": [0, 1, 2, 3, 1, 2, 3, 4],
            "macro_f1": [0.9, 0.8, 0.8, 0.8, 0.7, 0.7, 0.6, 0.1],
        }
    )
    r = paired_comparison(df, "a", "b")
    assert r["seeds"] == [1, 2, 3]
    assert r["mean_diff"] == pytest.approx((0.1 + 0.1 + 0.2) / 3)
    with pytest.raises(ValueError, match="no runs"):
        paired_comparison(df, "a", "zzz")
    dup = pd.concat([df, df.iloc[[0]]])
    with pytest.raises(ValueError, match="duplicate"):
        paired_comparison(dup, "a", "b")
