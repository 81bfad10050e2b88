"""The model object of a trained model: in memory, saved and loaded, the same predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest

import semcathode as sc
from semcathode.models._export import ExportedModel, load_model
from semcathode.study._export import export_trained
from semcathode.study._train import model_object


def test_a_trained_model_is_its_model_object_in_memory_and_on_disk(study_setup, study_run, tmp_path):
    _, items, _ = study_setup
    tm = study_run["models"][("ft_only", 0)]
    model = tm.to_model(metrics={"macro_f1": 0.5})
    assert isinstance(model, ExportedModel) and model.path is None and model.classes == tm.classes
    assert model.meta["arm"] == "ft_only" and model.meta["metrics"] == {"macro_f1": 0.5}
    assert model.meta["preprocess"]["size"] == tm.settings.preprocess.size
    assert model.meta["config_hash"] == tm.settings.hash()
    paths = items.drop_duplicates("path")["path"].head(4).tolist()
    in_memory = sc.predict(model, paths)
    loaded = load_model(model.save(tmp_path / "m.safetensors"))
    assert model.path == tmp_path / "m.safetensors" and loaded.meta == json.loads(json.dumps(model.meta))
    on_disk = sc.predict(loaded, paths)
    assert (in_memory.pred == on_disk.pred).all()
    cols = [f"p_{c}" for c in tm.classes]
    np.testing.assert_allclose(in_memory[cols].to_numpy(float), on_disk[cols].to_numpy(float), atol=1e-6)
    # the object is a copy: optimising it (BatchNorm folded) leaves the trained network as it was
    before = {k: v.clone() for k, v in tm.model.state_dict().items()}
    model.optimize()
    assert all(np.array_equal(before[k].numpy(), v.numpy()) for k, v in tm.model.state_dict().items())


def test_export_trained_writes_the_model_object_and_needs_classes(study_run, tmp_path):
    tm = study_run["models"][("stage1", 0)]
    path = export_trained(tm, tmp_path / "s1.safetensors")
    assert load_model(path).classes == tm.classes == model_object(tm).classes
    bare = type(tm)(tm.learner, "bare", 0, tm.history, {}, 0.0, settings=tm.settings, network=tm.network)
    with pytest.raises(ValueError, match="classes"):
        model_object(bare)
    assert model_object(bare, classes=tm.classes).classes == tm.classes
