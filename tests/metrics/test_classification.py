"""Tests of semcathode.metrics._classification against hand-computed values on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from semcathode.metrics._classification import (
    aggregate_tiles,
    chance_level,
    classification_metrics,
    metrics_from_preds,
    results_row,
    short_class_name,
)


ABC = ["A", "B", "C"]


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
