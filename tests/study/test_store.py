"""Tests for semcathode.study._store: the model store and the keys of stored models."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from semcathode.config._settings import study_settings
from semcathode.config._run import load_config
from semcathode.config._sections import RunConfig
from semcathode.study._store import MODEL_FIELDS, ModelStore, arm_key, model_fields, stage1_key

ITEMS = pd.DataFrame({"sha256": ["a", "b", "c"], "shift": ["", "", "blur"], "label": ["x", "y", "x"]})


def test_model_store_roundtrip_and_corruption(tmp_path):
    store = ModelStore(tmp_path)
    assert store.get("k") is None
    lin = torch.nn.Linear(3, 2)
    store.put("k", lin, {"history": [{"a": 1.0}], "wall_s": 2.5})
    state, meta = store.get("k")
    assert torch.equal(state["weight"], lin.weight.detach()) and meta["wall_s"] == 2.5
    w, j = store.paths("k")
    j.write_text("{broken")
    assert store.get("k") is None
    store.put("k", lin, {})
    j.unlink()
    assert store.get("k") is None



def test_stage1_key_follows_the_source_images(study_setup):
    cfg, items, _ = study_setup
    src_train = items[(items["domain"] == "source") & (items["split"] == "train")]
    fewer = items.drop(index=src_train.index[0])
    assert stage1_key(study_settings(cfg), 0, items) != stage1_key(study_settings(cfg), 0, fewer)
    tgt = items[items["domain"] == "target"].index[0]
    assert stage1_key(study_settings(cfg), 0, items) == stage1_key(study_settings(cfg), 0, items.drop(index=tgt))  # target rows do not matter


def _keys(**over):
    cfg = load_config("smoke", overrides=over)
    return stage1_key(study_settings(cfg), 0), arm_key(study_settings(cfg), "ft_only", 0, ITEMS)


@pytest.mark.parametrize("field, value", [
    ("evaluate.aggregate", "mean_prob"), ("evaluate.n_boot", 7), ("evaluate.ood_k", 3),
    ("evaluate.familiar_quantile", 0.5), ("cam.method", "eigencam"), ("cam.per_class", 5), ("cam.opacity", 0.9),
    ("validity.learning_curve_sizes", [3]), ("validity.new_domain", False), ("protocol.seeds", [7, 8]),
    ("protocol.arms", ["ft_only"]), ("preprocess.cache_dir", "/elsewhere"),
    ("data.data_dir", "/elsewhere"),
])
def test_evaluation_cam_and_report_fields_keep_the_model_keys(field, value):
    assert _keys(**{field: value}) == _keys()


@pytest.mark.parametrize("field, value, stage1_changes", [
    ("stage1.epochs", 9, True), ("preprocess.scale_um", 0.25, True), ("preprocess.normalize", "per_image", True),
    ("model.drop_rate", 0.3, True), ("data.split_seed", 4, True), ("target.target_frac", 0.3, True),
    ("protocol.stage1_imbalance", "weighted_loss", True), ("protocol.sampler", "weighted", True),
    ("stage2.lr", 0.01, False), ("stage2.epochs", 9, False), ("protocol.fair_max_epochs", 7, False),
    # the top on the trunk cache trains on the grid's tiles, sampled per epoch from the cached views
    ("preprocess.tile_stride", 0.5, True), ("model.trunk", 5, True), ("model.trunk_views", ["full", "half"], True),
    ("model.tiles_per_epoch", 8, True), ("data.pretail_frac", 0.1, True),
])
def test_model_changing_fields_change_the_keys(field, value, stage1_changes):
    s1, arm = _keys(**{field: value})
    base_s1, base_arm = _keys()
    assert (s1 != base_s1) is stage1_changes
    assert arm != base_arm  # a stage-2 model starts from (or is budgeted by) stage 1


def test_arm_key_follows_arm_seed_items_and_the_trained_schedule():
    cfg = load_config("smoke")
    key = arm_key(study_settings(cfg), "ft_only", 0, ITEMS)
    assert arm_key(study_settings(cfg), "scratch_ft", 0, ITEMS) != key
    assert arm_key(study_settings(cfg), "ft_only", 1, ITEMS) != key
    assert arm_key(study_settings(cfg), "ft_only", 0, ITEMS.iloc[::-1]) == key  # order-free
    assert arm_key(study_settings(cfg), "ft_only", 0, ITEMS.head(2)) != key
    assert arm_key(study_settings(cfg), "ft_only", 0, ITEMS, cfg.stage2) == key
    assert arm_key(study_settings(cfg), "ft_only", 0, ITEMS, dataclasses.replace(cfg.stage2, min_steps=99)) != key  # fair budget


def test_model_fields_name_existing_config_fields_only():
    cfg = RunConfig()
    dead = {("target", "shift_strength"), ("protocol", "linear_probe"), ("evaluate", "ci"), ("cam", "methods"),
            ("cam", "batch_size"), ("validity", "shortcut")}
    for group in MODEL_FIELDS.values():
        for sec, names in group.items():
            fields = {f.name for f in dataclasses.fields(getattr(cfg, sec))}
            assert set(names) <= fields, (sec, set(names) - fields)
            assert not {(sec, n) for n in names} & dead
    assert not {"evaluate", "cam", "validity"} & set(model_fields(study_settings(cfg), "source", "arm"))
