"""Tests for semcathode.study._evaluation: whole-micrograph predictions of the tiny study's models."""

from __future__ import annotations

import numpy as np
import pytest

from semcathode.data import Study
from semcathode.config._settings import study_settings
from semcathode.data._schema import default_schema
from semcathode.metrics._classification import aggregate_tiles
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



def test_a_loaded_model_file_is_evaluated_like_the_trained_model(study_setup, study_cfg, tmp_path):
    """The model object (here read back from its file) carries its trunk boundary: ``evaluate_splits``
    reads its maps from the study's trunk cache under the key training used, and scores it as the
    trained model; without the cache it runs from pixels to the same answer."""
    from semcathode.models._export import load_model
    from semcathode.study._evaluation import evaluate_splits, micrograph_outputs
    from semcathode.study._export import export_trained
    from semcathode.study._train import trunk_cache, trunk_spec

    _, items, _ = study_setup
    cfg = study_cfg(tmp_path, **{"model.trunk": 5, "stage1.epochs": 1})
    study = Study.of_items(study_settings(cfg), items, CLASSES)
    s1 = train_stage1(study, 0, log=None)
    model = load_model(export_trained(s1, tmp_path / "m.safetensors", CLASSES))
    assert model.meta["trunk"] == 5 and model.meta["trunk_dtype"] == "float32"
    assert model.trunk_spec() == trunk_spec(study.settings, s1.model)  # the same key as training's maps
    assert s1.model_object.model is s1.model  # the study's model object is the trained network, not a copy

    cache = trunk_cache(study.settings)
    n_maps = len(list(cache.root.rglob("*.npy")))
    ref, ref_preds = evaluate_splits({"trained": s1}, study)
    res, preds = evaluate_splits({"file": model}, study)
    assert len(list(cache.root.rglob("*.npy"))) == n_maps  # read from the cache: nothing recomputed
    assert res[["arm", "seed"]].drop_duplicates().values.tolist() == [["stage1", 0]]  # named by the file
    np.testing.assert_allclose(preds[PCOLS].to_numpy(), ref_preds[PCOLS].to_numpy(), atol=1e-5)
    assert res["macro_f1"].tolist() == ref["macro_f1"].tolist()

    test = split_rows(items, "source", "test")
    from_pixels = micrograph_outputs(model, test)  # no cache given: the whole network from the arrays
    from_cache = micrograph_outputs(model, test, trunk=cache)
    np.testing.assert_allclose(from_pixels.log_probs, from_cache.log_probs, atol=1e-2)
