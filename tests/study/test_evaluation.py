"""Tests for semcathode.study._evaluation: whole-micrograph predictions of the tiny study's models."""

from __future__ import annotations

import numpy as np
import pytest

from semcathode.data.study import Study
from semcathode.config.settings import study_settings
from semcathode.data.schema import default_schema
from semcathode.metrics.classification import aggregate_tiles
from semcathode.study._evaluation import split_rows
from semcathode.study._train import train_stage1

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = default_schema().classes
PCOLS = [f"p_{c}" for c in CLASSES]


def test_splits_of_the_tiny_study(study_setup):
    _, items, _ = study_setup
    tr = split_rows(items, "target", "train")
    assert tr["label"].value_counts().to_dict() == {c: 2 for c in CLASSES}
    assert len(split_rows(items, "source", "train")) == 18 and len(split_rows(items, "target", "test")) == 9
    assert (split_rows(items, "target", "test")["shift"] != "").all()



def test_pretrain_only_is_the_stage1_model_on_the_target(study_setup, study_run, fastai_probs):
    cfg, items, tmp = study_setup
    test = split_rows(items, "target", "test")
    # a fresh copy of the stage-1 model, loaded from the model store (not the object the arms used)
    s1 = train_stage1(Study.of_items(study_settings(cfg), items, CLASSES), 0, cache_dir=tmp, log=None)
    ref = aggregate_tiles(fastai_probs(s1.learner, test, CLASSES), CLASSES).set_index("path")
    po = study_run["preds"][study_run["preds"]["arm"] == "pretrain_only"].set_index("path").loc[ref.index]
    np.testing.assert_allclose(po[PCOLS].to_numpy(), ref[PCOLS].to_numpy(), atol=1e-5)
    assert list(po["pred"]) == list(ref["pred"])
    # ... and it is not a fine-tuned model
    ft = study_run["preds"][study_run["preds"]["arm"] == "pre_ft_oversample"].set_index("path").loc[ref.index]
    assert np.abs(ft[PCOLS].to_numpy() - ref[PCOLS].to_numpy()).max() > 1e-4

