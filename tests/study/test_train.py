"""Tests for semcathode.study._train: stage 1, the cached fit and the stage schedule in optimiser steps."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace

import pytest
import torch

from semcathode.data import Study
from semcathode.config._settings import study_settings
from semcathode.config._sections import StageConfig
from semcathode.data._loaders import make_dataloaders
from semcathode.data._schema import default_schema
from semcathode.study import _train as train
from semcathode.study._arms import train_arm
from semcathode.study._evaluation import split_rows
from semcathode.study._store import ModelStore, stage1_key
from semcathode.study._train import _stage_epochs, train_stage1

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = default_schema().classes


def test_stage1_trained_once_per_seed_and_reused(study_setup, study_run, study_cfg, monkeypatch):
    cfg, items, tmp = study_setup
    stages, logs = [], []
    real = train._fit

    def rec(*a, **k):
        stages.append(a[4])
        return real(*a, **k)

    monkeypatch.setattr(train, "_fit", rec)
    s1 = train_stage1(Study.of_items(study_settings(cfg), items, CLASSES), 0, cache_dir=tmp, log=logs.append)
    key = f"stage1-{stage1_key(study_settings(cfg), 0, items)}"
    assert logs == [f"stage 1 seed 0: reused cached model {key}"]
    assert len(stages) == 1 and stages[0].epochs == 0 and stages[0].freeze_epochs == 0  # only builds, no training
    old = study_run["models"][("stage1", 0)].model.state_dict()
    for k, v in s1.model.state_dict().items():
        assert torch.equal(v.cpu(), old[k].cpu()), k
    assert s1.wall_s > 0 and len(s1.history) == 1  # history and timing come from the store
    assert stage1_key(study_settings(cfg), 1) != stage1_key(study_settings(cfg), 0)
    assert stage1_key(study_settings(study_cfg(tmp, **{"stage1.lr": 0.01})), 0) != stage1_key(study_settings(cfg), 0)
    assert stage1_key(study_settings(study_cfg(tmp, **{"stage2.lr": 0.01})), 0) == stage1_key(study_settings(cfg), 0)  # stage 2 is not part of stage 1



def test_corrupt_store_entry_is_retrained(study_setup, study_run, tmp_path, monkeypatch):
    cfg, items, tmp = study_setup
    shutil.copytree(tmp / "models", tmp_path / "models")
    key = f"stage1-{stage1_key(study_settings(cfg), 0, items)}"
    w, j = ModelStore(tmp_path / "models").paths(key)
    w.write_bytes(b"\x00" * 64)
    stages, logs = [], []
    real = train._fit
    monkeypatch.setattr(train, "_fit", lambda *a, **k: stages.append(a[4]) or real(*a, **k))
    s1 = train_stage1(Study.of_items(study_settings(cfg), items, CLASSES), 0, cache_dir=tmp_path, log=logs.append)
    assert len(stages) == 1 and stages[0].epochs == cfg.stage1.epochs
    assert logs and "trained on 18 source micrographs" in logs[0]
    state, meta = ModelStore(tmp_path / "models").get(key)  # rewritten, readable again
    assert meta["key"] == key and "conv_stem.weight" in state
    # seeded: the retrained model is the one the run trained
    old = study_run["models"][("stage1", 0)].model.state_dict()
    for k, v in s1.model.state_dict().items():
        assert torch.equal(v.cpu(), old[k].cpu()) and torch.equal(state[k], old[k].cpu()), k



def test_stage_epochs_min_steps_by_hand():
    st = StageConfig(epochs=1, freeze_epochs=0, batch_size=16, min_steps=20)
    assert _stage_epochs(replace(st, min_steps=0), 3) == replace(st, min_steps=0)
    assert _stage_epochs(st, 9).epochs == 20  # bs 9, 1 step per epoch
    assert _stage_epochs(st, 1).epochs == 20  # bs 2 (minimum), one partial batch
    assert _stage_epochs(st, 40).epochs == 10  # bs 16, 2 full steps per epoch (last partial dropped)
    assert _stage_epochs(st, 33).epochs == 10
    assert _stage_epochs(st, 48).epochs == 7  # 3 steps per epoch: ceil(20 / 3)
    assert _stage_epochs(replace(st, freeze_epochs=2), 40).epochs == 8  # head epochs count as steps
    assert _stage_epochs(replace(st, epochs=50), 9).epochs == 50  # never lowered
    assert _stage_epochs(st, 9).freeze_epochs == 0 and _stage_epochs(st, 9).lr == st.lr



def test_stage_epochs_matches_the_dataloader_steps(study_setup):
    _, items, _ = study_setup
    pool = split_rows(items, "source", "train")
    for n in (1, 3, 16, 17):
        sub = pool.iloc[:n]
        dls = make_dataloaders(sub, CLASSES, bs=16, augment=False)
        st = StageConfig(epochs=1, freeze_epochs=0, batch_size=16, min_steps=12)
        assert _stage_epochs(st, n).epochs == math.ceil(12 / len(dls.train)), n



def test_stage_epochs_paper_schedule_ignores_freeze_epochs():
    st = StageConfig(epochs=1, freeze_epochs=1, batch_size=16, min_steps=10, schedule="paper")
    assert _stage_epochs(st, 9).epochs == 10  # 1 step per epoch, all of them in the 'all' phase



def test_pre_ft_after_b0_fallback(study_setup, study_cfg, tmp_path, monkeypatch):
    from semcathode.models import _backbones as backbones

    def offline(*a, **k):
        raise backbones.HubUnavailableError("offline (test)")

    monkeypatch.setattr(backbones, "_hub_weights_file", offline)
    _, items, _ = study_setup
    cfg = study_cfg(tmp_path, **{"model.backbone": "efficientnet_b0", "model.weights": "auto",
                            "stage1.epochs": 0, "stage2.epochs": 0})
    s1 = train_stage1(Study.of_items(study_settings(cfg), items, CLASSES), 0, cache_dir=tmp_path, log=None)
    assert s1.weights_info["backbone"] == "efficientnet_lite0"
    tm = train_arm("pre_ft", split_rows(items, "target", "train"), study_settings(cfg), 0, CLASSES, stage1=s1, cache_dir=tmp_path)
    assert set(tm.model.state_dict()) == set(s1.model.state_dict())  # the stage-1 (Lite0) architecture



def test_trunk_mode_trains_the_top_on_the_cache_and_evaluates_like_the_pixel_path(study_setup, study_cfg, tmp_path):
    """model.trunk > 0: stage 1 and the arms train only the top on cached trunk maps; the model is
    still the whole network, evaluated from the cache as from pixels, stored and reloaded whole."""
    import numpy as np

    from semcathode.models._forward import predict_arrays
    from semcathode.models._trunk import Top
    from semcathode.study._arms import train_arm
    from semcathode.study._evaluation import micrograph_outputs
    from semcathode.study._train import train_stage1

    _, items, _ = study_setup
    cfg = study_cfg(tmp_path, **{"model.trunk": 5, "model.trunk_views": ["full", "half"], "stage1.epochs": 2})
    s1 = train_stage1(Study.of_items(study_settings(cfg), items, sorted(items["label"].unique())), 0, log=None)
    assert isinstance(s1.learner.model, Top) and not isinstance(s1.model, Top)
    assert s1.history["train_loss"].notna().all() and len(s1.history) == 2
    assert list((tmp_path / "trunk").rglob("*.npy"))  # the maps are on disk
    test = items[(items["domain"] == "source") & (items["split"] == "test")]
    cached = micrograph_outputs(s1, test, features=True)
    mean, std = s1.input_norm
    pixels = predict_arrays(s1.model, [np.load(p) for p in test["cache_path"]], int(test["size"].iloc[0]),
                            cfg.preprocess.normalize, mean, std, features=True)
    assert np.allclose(cached.log_probs, pixels.log_probs, atol=1e-2)
    assert np.allclose(cached.features, pixels.features, atol=1e-2)
    again = train_stage1(Study.of_items(study_settings(cfg), items, sorted(items["label"].unique())), 0, log=None)  # from the model store
    assert np.allclose(micrograph_outputs(again, test).log_probs, cached.log_probs, atol=1e-6)
    tgt = items[(items["domain"] == "target") & (items["split"] == "train")]
    arm = train_arm("pre_ft_oversample", tgt, study_settings(cfg), 0, sorted(items["label"].unique()), stage1=s1)
    assert arm.network is not None and arm.trunk is not None
    trunk_keys = [k for k in arm.model.state_dict() if k.startswith(("conv_stem", "bn1", "blocks.0", "blocks.4"))]
    assert all(np.array_equal(arm.model.state_dict()[k], s1.model.state_dict()[k]) for k in trunk_keys)  # frozen


def test_trunk_spec_follows_what_changes_the_maps_and_nothing_else(tmp_path):
    """The trunk cache key (TrunkSpec.key) changes with weights, depth, tile, grid, scale-free input
    statistics; report-only, evaluation and training-schedule keys leave it alone."""
    from semcathode.config._run import load_config
    from semcathode.models._learner import create_model
    from semcathode.study._train import trunk_spec

    net, _ = create_model("efficientnet_lite0", "packaged", 9)
    base = dict(**{"model.trunk": 5, "preprocess.size": 64, "preprocess.cache_dir": str(tmp_path)})
    key = trunk_spec(study_settings(load_config("smoke", overrides=base)), net).key()
    for field, value in [("cam.method", "eigencam"), ("evaluate.n_boot", 7), ("stage1.epochs", 9),
                         ("model.tiles_per_epoch", 9), ("validity.new_domain", True), ("protocol.seeds", [3]),
                         ("model.train_tiles", 3), ("evaluate.familiarity_layers", ["blocks.4"]), ("cam.layer", "blocks.4")]:
        assert trunk_spec(study_settings(load_config("smoke", overrides={**base, field: value})), net).key() == key, field
    for field, value in [("model.trunk", 4), ("preprocess.size", 96), ("preprocess.tile_stride", 0.5),
                         ("preprocess.normalize", "per_image"), ("model.trunk_dtype", "bfloat16")]:
        assert trunk_spec(study_settings(load_config("smoke", overrides={**base, field: value})), net).key() != key, field
    other, _ = create_model("efficientnet_lite0", "scratch", 9)
    assert trunk_spec(study_settings(load_config("smoke", overrides=base)), other).key() != key  # other weights


@pytest.mark.parametrize("native", [False, True])
def test_auto_trunk_dtype_is_bfloat16_only_where_the_hardware_has_it(tmp_path, monkeypatch, native):
    """model.trunk_dtype = auto: bfloat16 where the device computes it natively, float32 where it is
    emulated (5-10x slower there); the cache key, the model-store key and the report's words say what
    was computed, so an auto run and a run asking for that dtype share their cache and models."""
    from semcathode.config._run import load_config
    from semcathode.models import _trunk as trunk_mod
    from semcathode.models._learner import create_model
    from semcathode.report._notes import representation_note
    from semcathode.study._store import model_fields
    from semcathode.study._train import trunk_spec

    monkeypatch.setattr(trunk_mod, "_native_bf16", lambda dev: native)
    want = "bfloat16" if native else "float32"
    net, _ = create_model("efficientnet_lite0", "packaged", 9)
    base = {"model.trunk": 5, "preprocess.size": 64, "preprocess.cache_dir": str(tmp_path)}
    auto = load_config("smoke", overrides={**base, "model.trunk_dtype": "auto"})
    same = load_config("smoke", overrides={**base, "model.trunk_dtype": want})
    other = load_config("smoke", overrides={**base, "model.trunk_dtype": {"bfloat16": "float32"}.get(want, "bfloat16")})
    assert trunk_spec(study_settings(auto), net).dtype == want
    assert trunk_spec(study_settings(auto), net).key() == trunk_spec(study_settings(same), net).key() != trunk_spec(study_settings(other), net).key()
    assert model_fields(study_settings(auto), "source") == model_fields(study_settings(same), "source") != model_fields(study_settings(other), "source")
    assert f"computed once ({want})" in representation_note(auto.preprocess, auto.model)


def test_probe_features_come_from_the_trunk_cache_and_equal_the_pixel_path(study_setup, study_cfg, tmp_path):
    """model.trunk > 0: the frozen ImageNet probe reads its tiles' trunk maps from the cache (a network
    without a classifier), keeps the kept subset of a training micrograph, and gives the pooled
    features of the pixel path."""
    import numpy as np

    from semcathode.models._backbones import create_backbone
    from semcathode.models._forward import predict_arrays
    from semcathode.study._baselines import extract_features
    from semcathode.study._train import input_norm

    _, items, _ = study_setup
    cfg = study_cfg(tmp_path, **{"model.trunk": 5, "model.train_tiles": 1, "preprocess.size": 16})
    src = items[items["domain"] == "source"]
    test, train = src[src["split"] == "test"].head(3), src[src["split"] == "train"].head(2)
    got = extract_features(test, study_settings(cfg))
    net, _ = create_backbone(cfg.model.backbone, weights=cfg.model.weights, num_classes=0)
    mean, std = input_norm(cfg.model)
    want = predict_arrays(net.eval(), [np.load(p) for p in test["cache_path"]], 16, cfg.preprocess.normalize,
                          mean, std, features=True).tile_features
    assert [f.shape for f in got] == [w.shape for w in want] and len(got[0]) > 1
    assert all(np.allclose(g, w, atol=2e-2, rtol=1e-2) for g, w in zip(got, want))
    assert list((tmp_path / "trunk").rglob("*.npy"))
    assert [len(f) for f in extract_features(train, study_settings(cfg))] == [1, 1]  # training rows: the kept tile only


def test_linear_head_trains_only_a_standardised_classifier_and_exports_whole(study_setup, study_cfg, tmp_path):
    """model.head = linear: the network ends at block 5 (timm's pruning), everything before the classifier
    is the frozen, cached trunk, the classifier reads standardised pooled block-5 features; the cached path
    equals the pixel path, Pre+FT keeps stage 1's standardisation, FT-only fits its own, and the exported
    file reloads the same network."""
    import numpy as np
    import torch

    from semcathode.models import load_model
    from semcathode.models._head import FeatureScale, head_layer_of
    from semcathode.study._export import export_trained
    from semcathode.models._forward import predict_arrays
    from semcathode.study._arms import train_arm
    from semcathode.study._evaluation import micrograph_outputs
    from semcathode.study._train import train_stage1

    _, items, _ = study_setup
    classes = sorted(items["label"].unique())
    cfg = study_cfg(tmp_path, **{"model.trunk": 6, "model.head": "linear", "model.head_layer": "blocks.5",
                                 "model.trunk_views": ["full", "half"], "stage1.epochs": 3, "stage1.lr": 0.05})
    s1 = train_stage1(Study.of_items(study_settings(cfg), items, classes), 0, log=None)
    net = s1.model
    assert head_layer_of(net) == "blocks.5" and len(net.blocks) == 6 and net.classifier.in_features == 192
    scale = net.bn2
    assert isinstance(scale, FeatureScale) and not torch.allclose(scale.std, torch.ones(192))  # fitted
    assert s1.history["train_loss"].iloc[-1] < s1.history["train_loss"].iloc[0]
    test = items[(items["domain"] == "source") & (items["split"] == "test")]
    cached = micrograph_outputs(s1, test, features=True, layers=["blocks.3", "blocks.5", "final"])
    mean, std = s1.input_norm
    pixels = predict_arrays(net, [np.load(p) for p in test["cache_path"]], int(test["size"].iloc[0]),
                            cfg.preprocess.normalize, mean, std, features=True,
                            layers=["blocks.3", "blocks.5", "final"])
    assert np.allclose(cached.log_probs, pixels.log_probs, atol=2e-2)
    for layer in ("blocks.3", "blocks.5", "final"):  # blocks.3 from the cache's pooled stage outputs
        assert np.allclose(cached.layer_features[layer], pixels.layer_features[layer], atol=2e-2), layer
    tgt = items[(items["domain"] == "target") & (items["split"] == "train")]
    pre = train_arm("pre_ft_oversample", tgt, study_settings(cfg), 0, classes, stage1=s1)
    ft = train_arm("ft_only", tgt, study_settings(cfg), 0, classes, stage1=s1)
    # fine-tuning re-estimates the standardisation on the images it trains on (as BatchNorm does in a
    # network fine-tuned in train mode): both arms standardise the target alike, not as the source
    assert not torch.equal(pre.model.bn2.std, scale.std)
    assert torch.allclose(pre.model.bn2.mean, ft.model.bn2.mean) and torch.allclose(pre.model.bn2.std, ft.model.bn2.std)
    assert not torch.equal(pre.model.classifier.weight, net.classifier.weight)  # the classifier fine-tuned
    again = train_stage1(Study.of_items(study_settings(cfg), items, classes), 0, log=None)  # from the model store: its statistics kept, not refitted
    assert torch.equal(again.model.bn2.std, scale.std)
    path = export_trained(s1, tmp_path / "m.safetensors", classes)
    em = load_model(path)
    assert em.meta["head"] == "blocks.5" and head_layer_of(em.model) == "blocks.5"
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(em.model(x), net.eval()(x), atol=1e-5)
