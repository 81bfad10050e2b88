import json

import numpy as np
import pandas as pd

from semcathode.config._settings import study_settings
from semcathode.data._manifest import index_folder
from semcathode.pipeline import MANIFEST
from semcathode.data._preprocess import PreprocessCache, PreprocessParams, build_items
from semcathode.data._schema import Schema
from semcathode.data._splits import assign_groups, split_groups
from semcathode.data._synthetic import write_synthetic_dataset
from semcathode.study._validity import (
    robustness_items,
    session_check,
    shortcut_baseline,
    shortcut_features,
    shortcut_verdict,
    with_extra_shift,
)

SCHEMA = Schema(compositions=("NCM622",))
CLASSES = SCHEMA.classes


def _items(tmp_path, shortcut: float, seed: int = 0):
    """One composition, three states; morphology is shuffled away when labels are random."""
    root = tmp_path / f"d{shortcut}"
    write_synthetic_dataset(root, n_per_class=24, compositions=("NCM622",), size=(80, 96), seed=seed,
                            shortcut_brightness=shortcut)
    df = split_groups(assign_groups(index_folder(root, schema=SCHEMA), 3), 0.0, 0.34, seed=0)
    return build_items(df, PreprocessParams("resize", 32), PreprocessCache(tmp_path / "c"))


def test_planted_brightness_shortcut_fires_and_clean_data_does_not(tmp_path):
    planted = _items(tmp_path, shortcut=0.15)
    m = shortcut_baseline(planted[planted.split == "train"], planted[planted.split == "test"], CLASSES)
    assert shortcut_verdict(m)["warn"], m["balanced_accuracy"]
    # clean: the same generator without the planted offset, and labels permuted within the train
    # set so that nothing but chance links the grey-level statistics to the label
    clean = _items(tmp_path, shortcut=0.0)
    rng = np.random.default_rng(0)
    clean["label"] = rng.permutation(clean["label"].to_numpy())
    clean = clean.drop(columns=["brightness", "contrast", "acq_date"], errors="ignore")
    m0 = shortcut_baseline(clean[clean.split == "train"], clean[clean.split == "test"], CLASSES)
    assert not shortcut_verdict(m0)["warn"], m0["balanced_accuracy"]


def test_per_image_normalisation_removes_mean_and_std(tmp_path):
    items = _items(tmp_path, shortcut=0.15)
    f = shortcut_features(items, normalize="per_image", metadata=False)
    assert np.allclose(f["mean"], 0, atol=1e-3) and np.allclose(f["std"], 1, atol=1e-2)
    g = shortcut_features(items, normalize="dataset", metadata=True)
    assert {"meta_brightness", "meta_contrast", "meta_date"} <= set(g.columns)
    assert g.filter(like="hist_").sum(1).round(6).eq(1).all()


def test_session_check_single_and_multi():
    df = pd.DataFrame({"label": ["a", "a", "b", "b"], "session": ["s1", "s1", "s2", "s2"]})
    assert session_check(df)["single_session"]
    df.loc[1, "session"] = "s3"
    r = session_check(df)
    assert not r["single_session"] and "a" in r["message"]


def test_extra_shift_composes(tmp_path):
    s = with_extra_shift(json.dumps({"gamma": 1.2}), {"blur_sigma_px": 1.0})
    assert json.loads(s) == [{"gamma": 1.2}, {"blur_sigma_px": 1.0}]
    assert json.loads(with_extra_shift("", {"gamma": 2.0})) == [{"gamma": 2.0}]
    items = _items(tmp_path, shortcut=0.0).head(4)
    rows = items.drop(columns=["image_id", "cache_path", "height", "width", "size"])
    base = robustness_items(rows, "brightness", 0.0, PreprocessParams("resize", 32), PreprocessCache(tmp_path / "c"))
    bright = robustness_items(rows, "brightness", 1.0, PreprocessParams("resize", 32), PreprocessCache(tmp_path / "c"))
    a = np.mean([np.load(p).mean() for p in base["cache_path"]])
    b = np.mean([np.load(p).mean() for p in bright["cache_path"]])
    assert b > a + 20


def test_session_probe_holds_out_whole_sessions(tmp_path, synthetic_root):
    from semcathode.config import cache_root
    from semcathode.config._run import load_config
    from semcathode.data._manifest import write_manifest
    from semcathode.data._factory import build_manifest, prepare_splits
    from semcathode.data import load_study
    from semcathode.study._validity import session_probe

    cfg = load_config("smoke", overrides={"data.dataset": "folder", "data.data_dir": str(synthetic_root), "preprocess.size": 32,
                                          "data.extra_compositions": [], "model.weights": "scratch"})
    df = prepare_splits(build_manifest(cfg.data, cache_root(cfg)), cfg.data, cfg.target)
    write_manifest(df, tmp_path / MANIFEST)
    study = load_study(study_settings(cfg), tmp_path / MANIFEST)
    assert session_probe(study).empty  # one session per class: nothing to hold out
    # two sessions in two classes: first half and second half of their frames
    two = study.manifest["label"].isin(["NCM333_pristine", "NCM811_cycled"])
    study.manifest.loc[two, "session"] = [f"s{i % 2}" for i in range(int(two.sum()))]
    res = session_probe(study, n_splits=2)
    assert list(res["protocol"]) == ["frame-block folds", "session folds"]
    assert (res["n"] == 16).all() and res["classes"].iloc[0] == "NCM333_pristine, NCM811_cycled"
