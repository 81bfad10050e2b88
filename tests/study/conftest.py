"""Shared fixtures of the study tests: one tiny two-stage study on synthetic data.

``study_setup`` builds the items of a smoke-profile study (32 px, resize mode, 18 source and
18 target train images); ``study_run`` trains the stage-1 model and the stage-2 arms once
(every ``_fit`` and ``train_arm`` call recorded). Both are session-scoped: the test modules of
this folder share the trained models and their model store.
"""

from __future__ import annotations

import pytest

from semcathode.data import Study
from semcathode.config._settings import study_settings
from semcathode.config._run import load_config
from semcathode.data._factory import prepare_splits
from semcathode.data._manifest import index_folder
from semcathode.data._preprocess import PreprocessCache, PreprocessParams, build_items
from semcathode.data._schema import default_schema

CLASSES = default_schema().classes
ARMS5 = ["pre_ft_oversample", "pre_ft_weighted", "ft_only", "pretrain_only", "scratch_ft"]


def _cfg(tmp, **over):
    return load_config("smoke", overrides={
        "preprocess.size": 32, "preprocess.cache_dir": str(tmp), "protocol.seeds": [0],
        "data.block_size": 1, "data.tail_frac": 0, "target.per_class_train": 2, "protocol.arms": ARMS5,
        "preprocess.mode": "resize", **over,
    })


@pytest.fixture(scope="session")
def study_cfg():
    """``study_cfg(tmp, **overrides)``: the tiny study's configuration."""
    return _cfg


@pytest.fixture(scope="session")
def _study_one_thread():
    """One intra-op torch thread while the shared study trains (see ``one_thread``)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def study_setup(synthetic_root, tmp_path_factory, _study_one_thread):
    """``(cfg, items, tmp)`` of the tiny study."""
    tmp = tmp_path_factory.mktemp("protocol")
    cfg = _cfg(tmp)
    df = prepare_splits(index_folder(synthetic_root), cfg.data, cfg.target)
    items = build_items(df, PreprocessParams("resize", 32), PreprocessCache(tmp / "pre"))
    return cfg, items, tmp


@pytest.fixture(scope="session")
def study_run(study_setup):
    """run_arms with every call of ``_fit`` and ``train_arm`` recorded."""
    from semcathode.study import _arms as arms, _train as train
    from semcathode.study._arms import run_arms

    cfg, items, tmp = study_setup
    fits, arm_calls, logs = [], [], []
    real_fit, real_train_arm = train._fit, arms.train_arm

    def rec_fit(train_items, valid_items, classes, cfg_, stage, seed, init, strategy, init_state=None, quiet=True, **kw):
        fits.append({"n": len(train_items), "epochs": stage.epochs, "init": init, "strategy": strategy,
                     "init_state": init_state is not None, "stage": stage})
        return real_fit(train_items, valid_items, classes, cfg_, stage, seed, init, strategy, init_state, quiet, **kw)

    def rec_arm(arm, train_items, *a, **k):
        arm_calls.append((arm, train_items.copy()))
        return real_train_arm(arm, train_items, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train, "_fit", rec_fit)
        mp.setattr(arms, "train_arm", rec_arm)
        results, preds, models = run_arms(Study.of_items(study_settings(cfg), items, CLASSES), cache_dir=tmp, log=logs.append, keep=["ft_only"])
    return dict(results=results, preds=preds, models=models, fits=fits, arm_calls=arm_calls, logs=logs)


@pytest.fixture(scope="session")
def fastai_probs():
    """The fastai reference predictor (``conftest.fastai_probs``) as a fixture."""
    from conftest import fastai_probs as reference

    return reference
