"""Tests for semcathode.study._curves: the learning curve on the tiny study."""

from __future__ import annotations

import pytest

from semcathode.data import Study
from semcathode.config._settings import study_settings
from semcathode.data._schema import default_schema
from semcathode.study import _curves as curves
from semcathode.study._curves import learning_curve

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = default_schema().classes


def test_learning_curve_draws_from_train_split_only(study_setup, study_run, monkeypatch):
    cfg, items, tmp = study_setup
    calls, logs = [], []
    real = curves.train_arm

    def rec(arm, train_items, *a, **k):
        calls.append((arm, train_items.copy()))
        return real(arm, train_items, *a, **k)

    monkeypatch.setattr(curves, "train_arm", rec)
    s1 = {0: study_run["models"][("stage1", 0)]}
    curve = learning_curve(Study.of_items(study_settings(cfg), items, CLASSES), sizes=[1, 2], arms=["pre_ft_oversample"], seeds=[0],
                           stage1_models=s1, cache_dir=tmp, log=logs.append)
    assert list(curve["n_per_class"]) == [1, 2] and list(curve["n_train"]) == [9, 18]
    assert list(curve["arm"]) == ["pre_ft_oversample"] * 2
    assert not any(line.startswith("stage 1") for line in logs)  # the given stage-1 model is used
    tgt = items[items["domain"] == "target"]
    assert set(tgt["split"]) >= {"train", "unused", "test"}  # other rows were there to be (wrongly) drawn
    assert len(calls) == 2
    for (arm, sub), n in zip(calls, [1, 2]):
        assert (sub["split"] == "train").all() and (sub["domain"] == "target").all()
        assert sub["label"].value_counts().to_dict() == {c: n for c in CLASSES}
    # nested subsets: the 1-image set is inside the 2-image set
    assert set(calls[0][1]["path"]) <= set(calls[1][1]["path"])
    # n = 2 is the full target train split: the same model as the run's arm, taken from the store
    row = study_run["results"].set_index("arm").loc["pre_ft_oversample"]
    assert curve["macro_f1"].iloc[1] == pytest.approx(row["macro_f1"])

