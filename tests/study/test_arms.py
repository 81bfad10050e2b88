"""Tests for semcathode.study.arms: the two-stage transfer study on tiny synthetic data.

One module-scoped run (``run``) trains the stage-1 model and the four stage-2 arms of the
smoke profile once (32 px, 1 epoch, 18 source and 18 target train images); the other tests
reuse it and its model store.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from semcathode.study import arms as protocol
from semcathode.config.run import StageConfig, load_config
from semcathode.data.loaders import make_dataloaders
from semcathode.metrics.classification import aggregate_tiles
from semcathode.models.learner import predict_items
from semcathode.data.manifest import index_folder
from semcathode.data.preprocess import PreprocessCache, PreprocessParams, build_items
from semcathode.study.arms import (
    ARMS,
    ModelStore,
    _stage_epochs,
    learning_curve,
    run_arms,
    split_rows,
    stage1_key,
    train_arm,
    train_stage1,
)
from semcathode.data.schema import default_schema
from semcathode.data.factory import prepare_splits

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = default_schema().classes
PCOLS = [f"p_{c}" for c in CLASSES]
ARMS5 = ["pre_ft_oversample", "pre_ft_weighted", "ft_only", "pretrain_only", "scratch_ft"]




def _cfg(tmp, **over):
    return load_config("smoke", overrides={
        "preprocess.size": 32, "preprocess.cache_dir": str(tmp), "protocol.seeds": [0],
        "data.block_size": 1, "data.tail_frac": 0, "target.per_class_train": 2, "protocol.arms": ARMS5,
        "preprocess.mode": "resize", **over,
    })


@pytest.fixture(scope="module")
def setup(synthetic_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("protocol")
    cfg = _cfg(tmp)
    df = prepare_splits(index_folder(synthetic_root), cfg)
    items = build_items(df, PreprocessParams("resize", 32), PreprocessCache(tmp / "pre"))
    return cfg, items, tmp


@pytest.fixture(scope="module")
def run(setup):
    """run_arms with every call of ``_fit`` and ``train_arm`` recorded."""
    cfg, items, tmp = setup
    fits, arm_calls, logs = [], [], []
    real_fit, real_train_arm = protocol._fit, protocol.train_arm

    def rec_fit(train_items, valid_items, classes, cfg_, stage, seed, init, strategy, init_state=None, quiet=True, **kw):
        fits.append({"n": len(train_items), "epochs": stage.epochs, "init": init, "strategy": strategy,
                     "init_state": init_state is not None, "stage": stage})
        return real_fit(train_items, valid_items, classes, cfg_, stage, seed, init, strategy, init_state, quiet, **kw)

    def rec_arm(arm, train_items, *a, **k):
        arm_calls.append((arm, train_items.copy()))
        return real_train_arm(arm, train_items, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(protocol, "_fit", rec_fit)
        mp.setattr(protocol, "train_arm", rec_arm)
        results, preds, models = run_arms(items, cfg, CLASSES, cache_dir=tmp, log=logs.append, keep=["ft_only"])
    return dict(results=results, preds=preds, models=models, fits=fits, arm_calls=arm_calls, logs=logs)


def test_splits_of_the_tiny_study(setup):
    _, items, _ = setup
    tr = split_rows(items, "target", "train")
    assert tr["label"].value_counts().to_dict() == {c: 2 for c in CLASSES}
    assert len(split_rows(items, "source", "train")) == 18 and len(split_rows(items, "target", "test")) == 9
    assert (split_rows(items, "target", "test")["shift"] != "").all()


# --------------------------------------------------------------------------- end to end


def test_run_arms_end_to_end(setup, run):
    _, items, _ = setup
    res, preds = run["results"], run["preds"]
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
    assert set(run["models"]) == {("stage1", 0), ("ft_only", 0)}
    assert run["models"][("ft_only", 0)].arm == "ft_only"
    assert res.set_index("arm").loc["pretrain_only", "train_s"] == 0  # no stage 2


def test_arms_start_from_the_documented_weights(run):
    """Stage 1 once, then one stage-2 fit per arm with stage 2: init and balancing per the ARMS table."""
    fits = run["fits"]
    assert [(f["init"], f["strategy"], f["init_state"], f["n"]) for f in fits] == [
        ("imagenet", "oversample", False, 18),  # stage 1 on the source train split (protocol.stage1_imbalance)
        ("stage1", "oversample", True, 18),
        ("stage1", "weighted_loss", True, 18),
        ("imagenet", "oversample", False, 18),
        ("scratch", "oversample", False, 18),
    ]
    stage1_lines = [line for line in run["logs"] if line.startswith("stage 1")]
    assert len(stage1_lines) == 1 and stage1_lines[0].startswith("stage 1 seed 0: trained on 18 source micrographs")


def test_stage2_arms_get_target_train_rows_only(setup, run):
    _, items, _ = setup
    tr = split_rows(items, "target", "train")
    assert [a for a, _ in run["arm_calls"]] == ARMS5
    for _, got in run["arm_calls"]:
        assert sorted(got["path"]) == sorted(tr["path"])


def test_pretrain_only_is_the_stage1_model_on_the_target(setup, run):
    cfg, items, tmp = setup
    test = split_rows(items, "target", "test")
    # a fresh copy of the stage-1 model, loaded from the model store (not the object the arms used)
    s1 = train_stage1(items, cfg, 0, CLASSES, cache_dir=tmp, log=None)
    ref = aggregate_tiles(predict_items(s1.learner, test, CLASSES), CLASSES).set_index("path")
    po = run["preds"][run["preds"]["arm"] == "pretrain_only"].set_index("path").loc[ref.index]
    np.testing.assert_allclose(po[PCOLS].to_numpy(), ref[PCOLS].to_numpy(), atol=1e-5)
    assert list(po["pred"]) == list(ref["pred"])
    # ... and it is not a fine-tuned model
    ft = run["preds"][run["preds"]["arm"] == "pre_ft_oversample"].set_index("path").loc[ref.index]
    assert np.abs(ft[PCOLS].to_numpy() - ref[PCOLS].to_numpy()).max() > 1e-4


# --------------------------------------------------------------------------- the model store


def test_stage1_trained_once_per_seed_and_reused(setup, run, monkeypatch):
    cfg, items, tmp = setup
    stages, logs = [], []
    real = protocol._fit

    def rec(*a, **k):
        stages.append(a[4])
        return real(*a, **k)

    monkeypatch.setattr(protocol, "_fit", rec)
    s1 = train_stage1(items, cfg, 0, CLASSES, cache_dir=tmp, log=logs.append)
    key = f"stage1-{stage1_key(cfg, 0, items)}"
    assert logs == [f"stage 1 seed 0: reused cached model {key}"]
    assert len(stages) == 1 and stages[0].epochs == 0 and stages[0].freeze_epochs == 0  # only builds, no training
    old = run["models"][("stage1", 0)].model.state_dict()
    for k, v in s1.model.state_dict().items():
        assert torch.equal(v.cpu(), old[k].cpu()), k
    assert s1.wall_s > 0 and len(s1.history) == 1  # history and timing come from the store
    assert stage1_key(cfg, 1) != stage1_key(cfg, 0)
    assert stage1_key(_cfg(tmp, **{"stage1.lr": 0.01}), 0) != stage1_key(cfg, 0)
    assert stage1_key(_cfg(tmp, **{"stage2.lr": 0.01}), 0) == stage1_key(cfg, 0)  # stage 2 is not part of stage 1


def test_corrupt_store_entry_is_retrained(setup, run, tmp_path, monkeypatch):
    cfg, items, tmp = setup
    shutil.copytree(tmp / "models", tmp_path / "models")
    key = f"stage1-{stage1_key(cfg, 0, items)}"
    w, j = ModelStore(tmp_path / "models").paths(key)
    w.write_bytes(b"\x00" * 64)
    stages, logs = [], []
    real = protocol._fit
    monkeypatch.setattr(protocol, "_fit", lambda *a, **k: stages.append(a[4]) or real(*a, **k))
    s1 = train_stage1(items, cfg, 0, CLASSES, cache_dir=tmp_path, log=logs.append)
    assert len(stages) == 1 and stages[0].epochs == cfg.stage1.epochs
    assert logs and "trained on 18 source micrographs" in logs[0]
    state, meta = ModelStore(tmp_path / "models").get(key)  # rewritten, readable again
    assert meta["key"] == key and "conv_stem.weight" in state
    # seeded: the retrained model is the one the run trained
    old = run["models"][("stage1", 0)].model.state_dict()
    for k, v in s1.model.state_dict().items():
        assert torch.equal(v.cpu(), old[k].cpu()) and torch.equal(state[k], old[k].cpu()), k


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


# --------------------------------------------------------------------------- learning curve


def test_learning_curve_draws_from_train_split_only(setup, run, monkeypatch):
    cfg, items, tmp = setup
    calls, logs = [], []
    real = protocol.train_arm

    def rec(arm, train_items, *a, **k):
        calls.append((arm, train_items.copy()))
        return real(arm, train_items, *a, **k)

    monkeypatch.setattr(protocol, "train_arm", rec)
    s1 = {0: run["models"][("stage1", 0)]}
    curve = learning_curve(items, cfg, CLASSES, sizes=[1, 2], arms=["pre_ft_oversample"], seeds=[0],
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
    row = run["results"].set_index("arm").loc["pre_ft_oversample"]
    assert curve["macro_f1"].iloc[1] == pytest.approx(row["macro_f1"])


# --------------------------------------------------------------------------- errors and epochs


def test_unknown_arm_and_missing_stage1_raise(setup):
    cfg, items, tmp = setup
    with pytest.raises(ValueError, match="unknown arm"):
        run_arms(items, cfg, CLASSES, arms=["pre_ft", "magic"], cache_dir=tmp, log=None)
    with pytest.raises(ValueError, match="stage-1 model"):
        train_arm("pre_ft", split_rows(items, "target", "train"), cfg, 0, CLASSES, stage1=None)
    assert set(ARMS) >= set(ARMS5) | {"pre_ft"}


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


def test_stage_epochs_matches_the_dataloader_steps(setup):
    _, items, _ = setup
    pool = split_rows(items, "source", "train")
    for n in (1, 3, 16, 17):
        sub = pool.iloc[:n]
        dls = make_dataloaders(sub, CLASSES, bs=16, augment=False)
        st = StageConfig(epochs=1, freeze_epochs=0, batch_size=16, min_steps=12)
        assert _stage_epochs(st, n).epochs == math.ceil(12 / len(dls.train)), n


def test_stage_epochs_paper_schedule_ignores_freeze_epochs():
    st = StageConfig(epochs=1, freeze_epochs=1, batch_size=16, min_steps=10, schedule="paper")
    assert _stage_epochs(st, 9).epochs == 10  # 1 step per epoch, all of them in the 'all' phase


def test_pre_ft_after_b0_fallback(setup, tmp_path, monkeypatch):
    from semcathode.models import backbones

    def offline(*a, **k):
        raise backbones.HubUnavailableError("offline (test)")

    monkeypatch.setattr(backbones, "_hub_weights_file", offline)
    _, items, _ = setup
    cfg = _cfg(tmp_path, **{"model.backbone": "efficientnet_b0", "model.weights": "auto",
                            "stage1.epochs": 0, "stage2.epochs": 0})
    s1 = train_stage1(items, cfg, 0, CLASSES, cache_dir=tmp_path, log=None)
    assert s1.weights_info["backbone"] == "efficientnet_lite0"
    tm = train_arm("pre_ft", split_rows(items, "target", "train"), cfg, 0, CLASSES, stage1=s1, cache_dir=tmp_path)
    assert set(tm.model.state_dict()) == set(s1.model.state_dict())  # the stage-1 (Lite0) architecture


def test_stage1_key_follows_the_source_images(setup):
    cfg, items, _ = setup
    src_train = items[(items["domain"] == "source") & (items["split"] == "train")]
    fewer = items.drop(index=src_train.index[0])
    assert stage1_key(cfg, 0, items) != stage1_key(cfg, 0, fewer)
    tgt = items[items["domain"] == "target"].index[0]
    assert stage1_key(cfg, 0, items) == stage1_key(cfg, 0, items.drop(index=tgt))  # target rows do not matter


def test_fair_stage_gives_arms_without_stage1_the_steps_of_both_pre_ft_stages():
    from semcathode.study.arms import fair_stage

    cfg = load_config("smoke", overrides={"stage2.epochs": 2, "stage2.freeze_epochs": 0, "stage2.min_steps": 0,
                                          "stage2.batch_size": 4, "preprocess.crops_per_image": 1})
    train = pd.DataFrame({"label": ["a"] * 8 + ["b"] * 4})
    st = fair_stage(cfg, train, stage1_steps=30)
    # Pre+FT (oversample) in stage 2: both classes replicated to 8 -> 16 inputs, 4 steps x 2 epochs = 8
    assert st.min_steps == 30 + 8
    assert _stage_epochs(st, 16).epochs == math.ceil(38 / 4)
    assert _stage_epochs(st, 16, max_epochs=5).epochs == 5  # the cap
    two_crops = load_config("smoke", overrides={"stage2.epochs": 2, "stage2.freeze_epochs": 0, "stage2.min_steps": 0,
                                                "stage2.batch_size": 4, "preprocess.crops_per_image": 2})
    assert fair_stage(two_crops, train, stage1_steps=30).min_steps == 30 + 16  # crops count as inputs
