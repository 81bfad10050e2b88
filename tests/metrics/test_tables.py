"""Tests of semcathode.metrics._tables: tables across runs on tiny inputs."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from semcathode.metrics._tables import (
    paired_table,
    paper_table,
    summarize_runs,
)


def _paired(n: int, diffs) -> pd.DataFrame:
    b = [0.70 + 0.01 * i for i in range(n)]
    a = [x + d for x, d in zip(b, diffs)]
    return pd.DataFrame(
        {"arm": ["a"] * n + ["b"] * n, "seed": list(range(n)) * 2, "macro_f1": a + b}
    )


CLS = ["NCM333_pristine", "NCM333_formation", "NCM811_cycled"]


def _runs() -> pd.DataFrame:
    # arm "scratch_ft" appears first; interleaved rows.
    return pd.DataFrame(
        {
            "arm": ["scratch_ft", "pre_ft", "scratch_ft", "pre_ft", "pre_ft"],
            "seed": [0, 0, 1, 1, 2],
            "accuracy": [0.6, 0.75, 0.6, 0.85, 0.95],
            "macro_f1": [0.5, 0.7, 0.5, 0.8, 0.9],
        }
    )


def test_summarize_runs_hand_table():
    s = summarize_runs(_runs(), metrics=("accuracy", "macro_f1"), n_boot=500)
    assert s["arm"].tolist() == ["scratch_ft", "pre_ft"]
    assert s["n_seeds"].tolist() == [2, 3]
    pre = s.iloc[1]
    # macro_f1 0.7, 0.8, 0.9: mean 0.8, sample std sqrt((0.01+0+0.01)/2) = 0.1
    assert pre["macro_f1_mean"] == pytest.approx(0.8)
    assert pre["macro_f1_std"] == pytest.approx(0.1)
    assert pre["accuracy_mean"] == pytest.approx(0.85)
    assert pre["accuracy_std"] == pytest.approx(0.1)
    assert 0.7 <= pre["macro_f1_lo"] <= 0.8 <= pre["macro_f1_hi"] <= 0.9
    scr = s.iloc[0]
    assert scr["macro_f1_mean"] == pytest.approx(0.5)
    assert scr["macro_f1_std"] == pytest.approx(0.0)
    assert (scr["macro_f1_lo"], scr["macro_f1_hi"]) == (0.5, 0.5)
    with pytest.raises(ValueError, match="missing"):
        summarize_runs(_runs(), metrics=("balanced_accuracy",))


def test_summarize_runs_single_seed_and_nans():
    df = pd.DataFrame({"arm": ["x", "y", "y"], "seed": [0, 0, 1], "macro_f1": [0.6, 0.4, float("nan")]})
    s = summarize_runs(df, metrics=("macro_f1",))
    assert math.isnan(s.iloc[0]["macro_f1_std"])
    assert (s.iloc[0]["macro_f1_lo"], s.iloc[0]["macro_f1_hi"]) == (0.6, 0.6)
    assert s.iloc[1]["macro_f1_mean"] == pytest.approx(0.4)


def test_paired_table():
    df = pd.concat(
        [
            _paired(3, [0.05, 0.06, 0.07]),
            pd.DataFrame({"arm": ["c"] * 3, "seed": [0, 1, 2], "macro_f1": [0.6, 0.6, 0.6]}),
        ]
    )
    t = paired_table(df, reference="b")
    assert t["arm"].tolist() == ["a", "c"]
    assert (t["reference"] == "b").all()
    assert t.loc[0, "wins"] == 3 and t.loc[1, "losses"] == 3
    # c - b = 0.6 - [0.70, 0.71, 0.72] -> mean -0.11
    assert t.loc[1, "mean_diff"] == pytest.approx(-0.11)
    assert {"n", "p_value", "note", "ties"} <= set(t.columns)
    with pytest.raises(ValueError):
        paired_table(df, reference="nope")


def _paper_results() -> pd.DataFrame:
    rows = []
    for seed, (acc, f1, c0) in enumerate([(0.7, 0.6, 0.5), (0.8, 0.7, 0.6), (0.9, 0.8, 0.7)]):
        rows.append({"arm": "pre_ft", "seed": seed, "accuracy": acc, "macro_f1": f1,
                     "f1_NCM333_pristine": c0, "f1_NCM333_formation": 1.0,
                     "f1_NCM811_cycled": float("nan")})
    rows.append({"arm": "linear_probe", "seed": 0, "accuracy": 0.5, "macro_f1": 0.4,
                 "f1_NCM333_pristine": 0.3, "f1_NCM333_formation": 0.2, "f1_NCM811_cycled": 0.1})
    return pd.DataFrame(rows)


def test_paper_table_text():
    t = paper_table(_paper_results(), CLS, n_boot=300)
    assert t.shape == (2, 5)
    assert t.index.tolist() == ["pre_ft", "linear_probe"]
    assert t.columns.tolist() == ["accuracy", "macro_f1", "333 pristine", "333 formation", "811 cycled"]
    pat = re.compile(r"^\d\.\d{3} ± \d\.\d{3} \[\d\.\d{2}, \d\.\d{2}\]$")
    for col in ["accuracy", "macro_f1", "333 pristine"]:
        assert pat.match(t.loc["pre_ft", col]), t.loc["pre_ft", col]
    assert t.loc["pre_ft", "accuracy"].startswith("0.800 ± 0.100 [")
    assert t.loc["pre_ft", "macro_f1"].startswith("0.700 ± 0.100 [")
    assert t.loc["pre_ft", "333 formation"] == "1.000 ± 0.000 [1.00, 1.00]"
    assert t.loc["pre_ft", "811 cycled"] == "n/a"
    assert t.loc["linear_probe", "accuracy"] == "0.500 (n=1)"


def test_paper_table_numeric():
    t = paper_table(_paper_results(), CLS, n_boot=100, as_text=False)
    assert t.shape == (2, 5)
    assert t.loc["pre_ft", "accuracy"] == pytest.approx(0.8)
    assert t.loc["pre_ft", "333 pristine"] == pytest.approx(0.6)
    assert t.loc["linear_probe", "811 cycled"] == pytest.approx(0.1)
    assert math.isnan(t.loc["pre_ft", "811 cycled"])
