"""Tests of semcathode.metrics.classification against hand-computed values on tiny inputs."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from semcathode.metrics.classification import (
    aggregate_tiles,
    bootstrap_ci,
    chance_level,
    classification_metrics,
    image_bootstrap_ci,
    metrics_from_preds,
    paired_comparison,
    paired_table,
    paper_table,
    results_row,
    short_class_name,
    summarize_runs,
)

ABC = ["A", "B", "C"]


# ----------------------------------------------------------------------------- aggregate_tiles


def _tiles() -> pd.DataFrame:
    # image "z" (listed first) has two tiles, image "a" one.
    return pd.DataFrame(
        {
            "image_id": ["z", "z", "a"],
            "label": ["A", "A", "A"],
            "p_A": [0.6, 0.2, 0.9],
            "p_B": [0.4, 0.8, 0.1],
            "path": ["z.tif", "z.tif", "a.tif"],
            "domain": ["target", "target", "target"],
            "tile": [0, 1, 0],  # varies within image "z" -> dropped
        }
    )


def test_aggregate_tiles_means_and_argmax():
    out = aggregate_tiles(_tiles(), ["A", "B"])
    assert out["image_id"].tolist() == ["z", "a"]  # order of first appearance
    z = out.iloc[0]
    # mean of [0.6, 0.4] and [0.2, 0.8] is [0.4, 0.6] -> class B (the second class)
    assert z["p_A"] == pytest.approx(0.4)
    assert z["p_B"] == pytest.approx(0.6)
    assert z["pred"] == "B"
    assert not z["correct"]
    assert z["n_inputs"] == 2
    a = out.iloc[1]
    assert a["pred"] == "A" and bool(a["correct"])
    assert a["n_inputs"] == 1
    assert out["correct"].dtype == bool


def test_aggregate_tiles_carries_constant_columns_only():
    out = aggregate_tiles(_tiles(), ["A", "B"])
    assert out["path"].tolist() == ["z.tif", "a.tif"]
    assert out["domain"].tolist() == ["target", "target"]
    assert "tile" not in out.columns
    assert len(out) == 2


def test_aggregate_tiles_tie_goes_to_first_class():
    df = pd.DataFrame({"image_id": [1], "label": ["B"], "p_A": [0.5], "p_B": [0.5]})
    assert aggregate_tiles(df, ["A", "B"])["pred"].tolist() == ["A"]


def test_aggregate_tiles_errors():
    df = _tiles()
    with pytest.raises(ValueError, match="missing"):
        aggregate_tiles(df.drop(columns="p_B"), ["A", "B"])
    bad = df.copy()
    bad.loc[1, "label"] = "B"
    with pytest.raises(ValueError, match="inconsistent"):
        aggregate_tiles(bad, ["A", "B"])
    unk = df.copy()
    unk.loc[2, "label"] = "Q"
    with pytest.raises(ValueError, match="not in classes"):
        aggregate_tiles(unk, ["A", "B"])


# ----------------------------------------------------------------------------- classification_metrics

# y_true A A A B B C ; y_pred A A B B C C
# confusion rows=true: A [2,1,0]  B [0,1,1]  C [0,0,1]
# precision A 1, B 1/2, C 1/2 ; recall A 2/3, B 1/2, C 1
# F1 A 0.8, B 0.5, C 2/3 -> macro 59/90 ; balanced acc (2/3+1/2+1)/3 = 13/18 ; acc 4/6
Y_TRUE = ["A", "A", "A", "B", "B", "C"]
Y_PRED = ["A", "A", "B", "B", "C", "C"]


def test_classification_metrics_hand_example():
    m = classification_metrics(Y_TRUE, Y_PRED, ABC)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx(13 / 18)
    assert m["macro_f1"] == pytest.approx(59 / 90)
    assert m["n"] == 6
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    np.testing.assert_allclose(
        np.array(m["confusion_norm"]), [[2 / 3, 1 / 3, 0], [0, 0.5, 0.5], [0, 0, 1]]
    )
    pc = m["per_class"]
    assert pc["A"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert pc["B"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert pc["C"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert isinstance(m["confusion"][0][0], int)


def test_confusion_follows_classes_order():
    m = classification_metrics(Y_TRUE, Y_PRED, ["C", "B", "A"])
    assert m["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 1, 2]]


def test_absent_classes_do_not_count_in_macro_f1():
    # classes A B C D; C and D absent from y_true; one A image predicted as D.
    # F1: A = 2/3 (precision 1, recall 1/2), B = 1 -> macro over present = 5/6
    # (counting D as 0 would give 5/9; counting C and D as 0 would give 5/12)
    m = classification_metrics(["A", "A", "B", "B"], ["A", "D", "B", "B"], ["A", "B", "C", "D"])
    assert m["macro_f1"] == pytest.approx(5 / 6)
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["classes_present"] == ["A", "B"]
    pc = m["per_class"]
    assert math.isnan(pc["C"]["f1"]) and math.isnan(pc["C"]["recall"]) and math.isnan(pc["C"]["precision"])
    assert pc["C"]["support"] == 0
    assert math.isnan(pc["D"]["f1"]) and pc["D"]["precision"] == 0.0
    assert m["confusion_norm"][2] == [0.0, 0.0, 0.0, 0.0]
    assert m["confusion_norm"][3] == [0.0, 0.0, 0.0, 0.0]
    assert m["confusion"][0] == [1, 0, 0, 1]


def test_classification_metrics_errors():
    with pytest.raises(ValueError, match="length"):
        classification_metrics(["A"], ["A", "B"], ABC)
    with pytest.raises(ValueError, match="not in classes"):
        classification_metrics(["A"], ["Z"], ABC)
    with pytest.raises(ValueError):
        classification_metrics([], [], ABC)


def test_metrics_from_preds_counts_images_not_tiles():
    m = metrics_from_preds(_tiles(), ["A", "B"])
    # image z -> B (wrong), image a -> A (right)
    assert m["n"] == 2 and m["n_inputs"] == 3
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["confusion"] == [[1, 1], [0, 0]]
    # only A present: F1(A) = 2*1*0.5/1.5 = 2/3
    assert m["macro_f1"] == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------- bootstrap


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


# ----------------------------------------------------------------------------- across runs


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


# ----------------------------------------------------------------------------- rows, tables


CLS = ["NCM333_pristine", "NCM333_formation", "NCM811_cycled"]


def test_short_class_name():
    assert short_class_name("NCM333_pristine") == "333 pristine"
    assert short_class_name("NCM811_cycled") == "811 cycled"


def test_results_row_columns():
    m = classification_metrics(
        ["NCM333_pristine", "NCM333_formation"], ["NCM333_pristine", "NCM333_pristine"], CLS
    )
    row = results_row("ft_only", 3, m, CLS, domain="target", n_train=10)
    assert list(row) == [
        "arm", "seed", "accuracy", "balanced_accuracy", "macro_f1",
        "f1_NCM333_pristine", "f1_NCM333_formation", "f1_NCM811_cycled",
        "n", "domain", "n_train",
    ]
    assert row["arm"] == "ft_only" and row["seed"] == 3 and row["n"] == 2
    assert row["accuracy"] == pytest.approx(0.5)
    # pristine: precision 1/2, recall 1 -> F1 2/3 ; formation never predicted -> 0
    assert row["f1_NCM333_pristine"] == pytest.approx(2 / 3)
    assert row["f1_NCM333_formation"] == 0.0
    assert math.isnan(row["f1_NCM811_cycled"])  # no support
    assert row["macro_f1"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="clash"):
        results_row("ft_only", 3, m, CLS, accuracy=1.0)


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


# ----------------------------------------------------------------------------- chance


def test_chance_level_hand_example():
    c = chance_level(["A", "A", "A", "B"], ABC)
    assert c["majority_class"] == "A"
    assert c["majority_accuracy"] == pytest.approx(0.75)
    # always A: F1(A) = 2*0.75*1/1.75 = 6/7, F1(B) = 0 -> mean over present = 3/7
    assert c["majority_macro_f1"] == pytest.approx(3 / 7)
    assert c["uniform_accuracy"] == pytest.approx(1 / 3)
    # uniform over K=3: F1(A) = 2*(3/4)(1/3)/(3/4+1/3) = 6/13, F1(B) = 2*(1/4)(1/3)/(1/4+1/3) = 2/7
    assert c["uniform_macro_f1"] == pytest.approx((6 / 13 + 2 / 7) / 2)
    assert c["n"] == 4 and c["n_classes"] == 3
