"""Tests for semcathode.study._arms: the two-stage transfer study on tiny synthetic data.

The session-scoped ``study_run`` (tests/study/conftest.py) trains the stage-1 model and the
stage-2 arms of the smoke profile once; these tests check what it did."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from semcathode.data import Study
from semcathode.config._settings import study_settings
from semcathode.config._run import load_config
from semcathode.data._schema import default_schema
from semcathode.study._arms import ARMS, fair_stage, run_arms, train_arm
from semcathode.study._evaluation import split_rows
from semcathode.study._train import _stage_epochs


pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = default_schema().classes
PCOLS = [f"p_{c}" for c in CLASSES]
ARMS5 = ["pre_ft_oversample", "pre_ft_weighted", "ft_only", "pretrain_only", "scratch_ft"]


def test_run_arms_end_to_end(study_setup, study_run):
    _, items, _ = study_setup
    res, preds = study_run["results"], study_run["preds"]
    assert list(res["arm"]) == ARMS5 and (res["seed"] == 0).all()
    assert (res["n_train"] == 18).all()
    assert res[["accuracy", "macro_f1"]].apply(lambda s: s.between(0, 1)).all().all()
    test = split_rows(items, "target", "test")
    assert len(preds) == 5 * len(test)
    for arm, sub in preds.groupby("arm"):
        assert sorted(sub["path"]) == sorted(test["path"])
        np.testing.assert_allclose(sub[PCOLS].sum(1), 1.0, atol=1e-5)
        # the results row is the accuracy of these predictions
        acc = float((sub["pred"] == sub["label"]).mean())
        assert res.set_index("arm").loc[arm, "accuracy"] == pytest.approx(acc)
    assert set(study_run["models"]) == {("stage1", 0), ("ft_only", 0)}
    assert study_run["models"][("ft_only", 0)].arm == "ft_only"
    assert res.set_index("arm").loc["pretrain_only", "train_s"] == 0  # no stage 2



def test_arms_start_from_the_documented_weights(study_run):
    """Stage 1 once, then one stage-2 fit per arm with stage 2: init and balancing per the ARMS table."""
    fits = study_run["fits"]
    assert [(f["init"], f["strategy"], f["init_state"], f["n"]) for f in fits] == [
        ("imagenet", "oversample", False, 18),  # stage 1 on the source train split (protocol.stage1_imbalance)
        ("stage1", "oversample", True, 18),
        ("stage1", "weighted_loss", True, 18),
        ("imagenet", "oversample", False, 18),
        ("scratch", "oversample", False, 18),
    ]
    stage1_lines = [line for line in study_run["logs"] if line.startswith("stage 1")]
    assert len(stage1_lines) == 1 and stage1_lines[0].startswith("stage 1 seed 0: trained on 18 source micrographs")



def test_stage2_arms_get_target_train_rows_only(study_setup, study_run):
    _, items, _ = study_setup
    tr = split_rows(items, "target", "train")
    assert [a for a, _ in study_run["arm_calls"]] == ARMS5
    for _, got in study_run["arm_calls"]:
        assert sorted(got["path"]) == sorted(tr["path"])



def test_unknown_arm_and_missing_stage1_raise(study_setup):
    cfg, items, tmp = study_setup
    with pytest.raises(ValueError, match="unknown arm"):
        run_arms(Study.of_items(study_settings(cfg), items, CLASSES), arms=["pre_ft", "magic"], cache_dir=tmp, log=None)
    with pytest.raises(ValueError, match="stage-1 model"):
        train_arm("pre_ft", split_rows(items, "target", "train"), study_settings(cfg), 0, CLASSES, stage1=None)
    assert set(ARMS) >= set(ARMS5) | {"pre_ft"}



def test_fair_stage_gives_arms_without_stage1_the_steps_of_both_pre_ft_stages():
    cfg = load_config("smoke", overrides={"stage2.epochs": 2, "stage2.freeze_epochs": 0, "stage2.min_steps": 0,
                                          "stage2.batch_size": 4, "preprocess.crops_per_image": 1})
    train = pd.DataFrame({"label": ["a"] * 8 + ["b"] * 4})
    st = fair_stage(study_settings(cfg), train, stage1_steps=30)
    # Pre+FT (oversample) in stage 2: both classes replicated to 8 -> 16 inputs, 4 steps x 2 epochs = 8
    assert st.min_steps == 30 + 8
    assert _stage_epochs(st, 16).epochs == math.ceil(38 / 4)
    assert _stage_epochs(st, 16, max_epochs=5).epochs == 5  # the cap
    two_crops = load_config("smoke", overrides={"stage2.epochs": 2, "stage2.freeze_epochs": 0, "stage2.min_steps": 0,
                                                "stage2.batch_size": 4, "preprocess.crops_per_image": 2})
    assert fair_stage(study_settings(two_crops), train, stage1_steps=30).min_steps == 30 + 16  # crops count as inputs

