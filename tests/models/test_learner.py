"""Tests for semcathode.models._learner: splitter, schedules (freeze / discriminative / paper), head init,
channels_last, stage-weight loading and predictions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from fastai.callback.core import Callback

from semcathode.models._backbones import normalization
from semcathode.config._sections import StageConfig
from semcathode.data._loaders import make_dataloaders
from semcathode.models._learner import (
    ChannelsLastInputs,
    efficientnet_splitter,
    fit_stage,
    load_body_weights,
    make_learner,
    seed_everything,
)
from semcathode.data._manifest import index_folder
from semcathode.data._preprocess import PreprocessCache, PreprocessParams, build_items
from semcathode.data._schema import default_schema
from semcathode.data._splits import assign_groups, split_groups
from conftest import fastai_probs as _fastai_probs

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = default_schema().classes
MEAN, STD = normalization("efficientnet_lite0")




@pytest.fixture(scope="module")
def items(synthetic_root, tmp_path_factory):
    """Resize-32 items: 2 train, 1 valid image per class (27 images)."""
    m = index_folder(synthetic_root)
    df = split_groups(assign_groups(m, block_size=2), valid_frac=0.25, test_frac=0.25, seed=0)
    out = build_items(df, PreprocessParams("resize", 32), PreprocessCache(tmp_path_factory.mktemp("pc")))
    tr = out[out["split"] == "train"].groupby("label").head(2)
    va = out[out["split"] == "valid"].groupby("label").head(1)
    return pd.concat([tr, va], ignore_index=True)


@pytest.fixture(scope="module")
def dls(items):
    return make_dataloaders(items, CLASSES, bs=6, augment=False, mean=MEAN, std=STD, seed=0)


@pytest.fixture
def learn(dls):
    seed_everything(0)
    return make_learner(dls, len(CLASSES), weights="packaged")[0]


def _snapshot(model) -> list[list[torch.Tensor]]:
    return [[p.detach().clone() for p in g] for g in efficientnet_splitter(model)]


def _changed(before: list[torch.Tensor], after: list[torch.nn.Parameter]) -> list[bool]:
    return [not torch.equal(b, a.detach()) for b, a in zip(before, after)]


# --------------------------------------------------------------------------- splitter


def test_splitter_groups_cover_every_parameter_once(learn):
    model = learn.model
    groups = efficientnet_splitter(model)
    assert len(groups) >= 3 and all(len(g) for g in groups)
    ids = [id(p) for g in groups for p in g]
    assert len(ids) == len(set(ids))  # no parameter in two groups
    assert set(ids) == {id(p) for p in model.parameters()}  # every parameter in one
    # depth order: the stem is in the first group, the classifier alone in the last
    assert any(p is model.conv_stem.weight for p in groups[0])
    assert {id(p) for p in groups[-1]} == {id(p) for p in model.classifier.parameters()}
    assert any(p is model.conv_head.weight for p in groups[-2])
    with pytest.raises(ValueError, match="not a timm EfficientNet"):
        efficientnet_splitter(torch.nn.Linear(3, 2))


# --------------------------------------------------------------------------- head initialisation


def test_new_classifier_is_small_and_initial_loss_near_log_k(learn):
    head = learn.model.classifier
    assert head.out_features == len(CLASSES)
    assert float(head.weight.detach().std()) == pytest.approx(0.01, rel=0.1)
    assert torch.count_nonzero(head.bias) == 0
    loss = learn.validate()[0]
    assert abs(loss - math.log(len(CLASSES))) < 0.05
    # the logits themselves are close to zero
    x, _ = learn.dls.valid.one_batch()
    learn.model.eval()
    with torch.no_grad():
        logits = learn.model(x)
    assert float(logits.abs().max()) < 1.0


# --------------------------------------------------------------------------- schedules


def test_freeze_phase_trains_only_the_head(learn):
    before = _snapshot(learn.model)
    hist = fit_stage(learn, StageConfig(epochs=0, freeze_epochs=1, lr=1e-2), quiet=True)
    assert list(hist["phase"]) == ["head"] and len(hist) == 1
    groups = efficientnet_splitter(learn.model)
    for b, g in zip(before[:-1], groups[:-1]):  # body: frozen, weights untouched
        assert not any(p.requires_grad for p in g)
        assert not any(_changed(b, g))
    assert all(p.requires_grad for p in groups[-1])
    assert all(_changed(before[-1], groups[-1]))  # head weight and bias trained


class _RecordInputs(Callback):
    order = 0  # after ChannelsLastInputs (order -1)

    def before_fit(self):
        self.formats = []

    def before_batch(self):
        self.formats.append(self.learn.xb[0].is_contiguous(memory_format=torch.channels_last))


def test_discriminative_lrs_increase_with_depth_and_channels_last(learn):
    rec = _RecordInputs()
    learn.add_cb(rec)
    before = _snapshot(learn.model)
    stage = StageConfig(epochs=1, freeze_epochs=0, lr=1e-3, lr_div=10.0)
    hist = fit_stage(learn, stage, quiet=True)
    assert list(hist["phase"]) == ["all"]
    assert {"train_loss", "valid_loss", "accuracy", "macro_f1", "wall_s"} <= set(hist.columns)
    lrs = [float(h["lr"]) for h in learn.opt.hypers]
    assert len(lrs) == 3 and lrs[0] < lrs[1] < lrs[2]
    # slice(lr / lr_div, lr) over three groups: geometric spacing, ratio lr_div end to end
    assert lrs[2] / lrs[0] == pytest.approx(stage.lr_div, rel=1e-6)
    assert lrs[1] == pytest.approx(math.sqrt(lrs[0] * lrs[2]), rel=1e-6)
    # every group trained (nothing frozen)
    groups = efficientnet_splitter(learn.model)
    for b, g in zip(before, groups):
        assert any(_changed(b, g))
    # channels_last: the model after fit and every input batch
    assert learn.model.conv_stem.weight.is_contiguous(memory_format=torch.channels_last)
    assert rec.formats and all(rec.formats)


def test_paper_schedule_one_lr_for_all_groups_nothing_frozen(learn):
    learn.freeze()  # 'paper' must unfreeze
    before = _snapshot(learn.model)
    hist = fit_stage(learn, StageConfig(epochs=1, freeze_epochs=1, lr=3e-4, schedule="paper"), quiet=True)
    assert list(hist["phase"]) == ["all"]  # no head-only phase in 'paper'
    lrs = [float(h["lr"]) for h in learn.opt.hypers]
    assert len(lrs) == 3 and lrs == [pytest.approx(3e-4)] * 3
    groups = efficientnet_splitter(learn.model)
    assert all(p.requires_grad for g in groups for p in g)
    for b, g in zip(before, groups):
        assert any(_changed(b, g))


def test_channels_last_off_and_callback_alone(dls):
    learn, _ = make_learner(dls, len(CLASSES), weights="scratch", channels_last=False)
    assert not any(isinstance(cb, ChannelsLastInputs) for cb in learn.cbs)
    assert not learn.model.conv_stem.weight.is_contiguous(memory_format=torch.channels_last)
    cb = ChannelsLastInputs()
    learn.add_cb(cb)
    cb.before_fit()
    assert learn.model.conv_stem.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 8, 8)
    learn.xb = (x, torch.rand(2, 4))
    cb.before_batch()
    assert learn.xb[0].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(learn.xb[0], x) and learn.xb[1].shape == (2, 4)


# --------------------------------------------------------------------------- weights and predictions


def test_loss_weights_reach_the_loss(dls):
    w = np.arange(1, 10, dtype=np.float32)
    learn, _ = make_learner(dls, len(CLASSES), weights="scratch", loss_weights=w)
    assert torch.equal(learn.loss_func.func.weight, torch.as_tensor(w))
    logits = torch.zeros(2, 9)
    logits[0, 0] = 5.0
    logits[1, 3] = 5.0
    y = torch.tensor([1, 2])
    # weighted mean: (w1 * l0 + w2 * l1) / (w1 + w2) with both losses equal here
    l_each = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    expect = (w[1] * l_each[0] + w[2] * l_each[1]) / (w[1] + w[2])
    assert float(learn.loss_func(logits, y)) == pytest.approx(float(expect), rel=1e-6)


def test_init_state_copies_body_and_matching_head(dls, learn):
    src = {k: v + 0.001 if v.is_floating_point() else v for k, v in learn.model.state_dict().items()}
    same, _ = make_learner(dls, len(CLASSES), weights="scratch", init_state=src)
    for k, v in same.model.state_dict().items():
        assert torch.equal(v, src[k]), k
    # another number of classes: body copied, the new head is kept as initialised
    other, _ = make_learner(dls, 4, weights="scratch", init_state=src)
    own = other.model.state_dict()
    assert torch.equal(own["conv_stem.weight"], src["conv_stem.weight"])
    assert own["classifier.weight"].shape == (4, 1280)
    assert torch.count_nonzero(own["classifier.bias"]) == 0
    bad = {k: v for k, v in src.items() if not k.startswith("blocks.0.")}
    with pytest.raises(ValueError, match="missing"):
        load_body_weights(other.model, bad)


def test_fastai_test_dataloader_probabilities(learn, items):
    """The fastai prediction path (make_test_dl + get_preds) the other tests use as a reference."""
    valid = items[items["split"] == "valid"].iloc[::-1]  # any order, any index
    out = _fastai_probs(learn, valid, CLASSES, bs=4)
    assert list(out["path"]) == list(valid["path"])
    p = out[[f"p_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    # same as running the model on the cached arrays by hand
    x = torch.stack([torch.from_numpy(np.load(f)).float() / 255.0 for f in valid["cache_path"]])
    x = ((x[:, None].expand(-1, 3, -1, -1) - 0.5) / 0.5).contiguous()
    learn.model.eval()
    with torch.no_grad():
        ref = torch.softmax(learn.model(x), 1).numpy()
    np.testing.assert_allclose(p, ref, atol=1e-5)
    empty = _fastai_probs(learn, valid.head(0), CLASSES)
    assert empty.empty and "p_NCM811_cycled" in empty.columns


def test_epoch_lines_show_a_validation_metric_only_when_the_stage_validates(learn, capsys):
    fit_stage(learn, StageConfig(epochs=1, freeze_epochs=0, lr=1e-4, schedule="paper"), quiet=True, label="s")
    validated = [l for l in capsys.readouterr().out.splitlines() if l.startswith("[s]")]
    fit_stage(learn, StageConfig(epochs=1, freeze_epochs=0, lr=1e-4, schedule="paper", validate=False), quiet=True,
              label="s")
    unvalidated = [l for l in capsys.readouterr().out.splitlines() if l.startswith("[s]")]
    assert len(validated) == len(unvalidated) == 1
    assert "train_loss" in validated[0] and "accuracy" in validated[0]
    assert "train_loss" in unvalidated[0] and "accuracy" not in unvalidated[0]  # a stand-in batch is not shown


def test_progress_bar_only_in_an_interactive_kernel(learn, monkeypatch):
    """Inside a Jupyter kernel the fastai bar stays, unless the caller turns it off (a batch run)."""
    from semcathode.models import _learner as learner_module

    calls = []
    original = learn.no_bar
    monkeypatch.setattr(learn, "no_bar", lambda: calls.append(1) or original())
    stage = StageConfig(epochs=1, freeze_epochs=0, lr=1e-5, schedule="paper", validate=False)
    assert not learner_module._in_jupyter_kernel()  # pytest is no kernel, even after importing ipykernel
    fit_stage(learn, stage, quiet=True)
    assert calls == [1]  # a script or test: no bar
    monkeypatch.setattr(learner_module, "_in_jupyter_kernel", lambda: True)
    fit_stage(learn, stage, quiet=True)
    assert calls == [1]  # interactive: JupyterLab shows the bar
    fit_stage(learn, stage, quiet=True, bar=False)
    assert calls == [1, 1]  # batch (semcathode run): no bar in the streamed log
