"""Tests for semcathode.data._loaders: oversampling, class weights, DataLoaders (vocab, grey, sampling, normalisation)."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch

from semcathode.data._loaders import class_counts, class_weights, make_dataloaders, oversample, sample_weights
from semcathode.data._manifest import index_folder
from semcathode.data._preprocess import PreprocessCache, PreprocessParams, build_items
from semcathode.data._schema import default_schema
from semcathode.data._splits import assign_groups, split_groups

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = default_schema().classes
HALF = (0.5, 0.5, 0.5)




def _table(counts: dict[str, int]) -> pd.DataFrame:
    rows = [{"label": c, "rid": f"{c}{k}"} for c, n in counts.items() for k in range(n)]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- oversample


def test_oversample_reaches_largest_class_by_whole_repeats_plus_a_draw():
    df = _table({"A": 10, "B": 4, "C": 7})
    out = oversample(df, ["A", "B", "C"], seed=0)
    assert out["label"].value_counts().to_dict() == {"A": 10, "B": 10, "C": 10}
    assert list(out.index) == list(range(30))  # a new index
    # A (the largest) is untouched: each row once
    assert sorted(out.loc[out["label"] == "A", "rid"]) == sorted(df.loc[df["label"] == "A", "rid"])
    # B: 10 = 2 * 4 + 2 -> every row 2 or 3 times, exactly two rows 3 times
    b = out.loc[out["label"] == "B", "rid"].value_counts()
    assert set(b.index) == {"B0", "B1", "B2", "B3"}
    assert sorted(b.tolist()) == [2, 2, 3, 3]
    # C: 10 = 1 * 7 + 3 -> every row at least once, exactly three rows twice
    c = out.loc[out["label"] == "C", "rid"].value_counts()
    assert len(c) == 7 and sorted(c.tolist()) == [1, 1, 1, 1, 2, 2, 2]


def test_oversample_target_param_and_classes_at_or_above_target_untouched():
    df = _table({"A": 10, "B": 4, "C": 7, "D": 8})
    out = oversample(df, ["A", "B", "C", "D"], target=8, seed=3)
    assert out["label"].value_counts().to_dict() == {"A": 10, "B": 8, "C": 8, "D": 8}
    # B: 8 = 2 * 4 exactly -> every row exactly twice (no random draw)
    assert out.loc[out["label"] == "B", "rid"].value_counts().tolist() == [2, 2, 2, 2]
    # A is above and D at the target: their rows appear exactly once each
    for c in ("A", "D"):
        assert out.loc[out["label"] == c, "rid"].value_counts().max() == 1
        assert set(out.loc[out["label"] == c, "rid"]) == set(df.loc[df["label"] == c, "rid"])


def test_oversample_deterministic_by_seed_and_skips_absent_classes():
    df = _table({"A": 10, "B": 3, "C": 7})
    classes = ["A", "B", "C", "Z"]  # Z absent: nothing to replicate
    a = oversample(df, classes, seed=5)
    b = oversample(df, classes, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert "Z" not in set(a["label"])
    # the extra draw depends on the seed: over a few seeds, some pick a different subset
    picks = {tuple(oversample(df, classes, seed=s).loc[lambda d: d["label"] == "C", "rid"].value_counts()
                   .loc[lambda v: v == 2].index.sort_values()) for s in range(6)}
    assert len(picks) > 1


def test_class_counts_schema_order_with_zeros():
    df = _table({"C": 2, "A": 1})
    assert list(class_counts(df, ["A", "B", "C"]).items()) == [("A", 1), ("B", 0), ("C", 2)]


# --------------------------------------------------------------------------- class weights


def test_class_weights_median_and_inverse_three_classes():
    df = _table({"A": 10, "B": 4, "C": 7})
    # f = n / 21, median f = 7 / 21 -> w = 7 / n
    np.testing.assert_allclose(class_weights(df, ["A", "B", "C"], "median"), [0.7, 1.75, 1.0], rtol=1e-6)
    # inverse: 21 / (3 n)
    np.testing.assert_allclose(class_weights(df, ["A", "B", "C"], "inverse"), [21 / 30, 21 / 12, 21 / 21], rtol=1e-6)
    assert class_weights(df, ["A", "B", "C"]).dtype == np.float32


def test_class_weights_median_and_inverse_differ():
    df = _table({"A": 10, "B": 4, "C": 7, "D": 3})  # N = 24, median n = 5.5
    np.testing.assert_allclose(class_weights(df, list("ABCD"), "median"), [5.5 / 10, 5.5 / 4, 5.5 / 7, 5.5 / 3], rtol=1e-6)
    np.testing.assert_allclose(class_weights(df, list("ABCD"), "inverse"), [0.6, 1.5, 6 / 7, 2.0], rtol=1e-6)


def test_class_weights_absent_class_gets_zero_with_warning():
    df = _table({"A": 12, "C": 3, "D": 6, "E": 3})  # B absent; present n: 12, 3, 6, 3 (N = 24)
    with pytest.warns(UserWarning, match="B"):
        w = class_weights(df, list("ABCDE"), "median")
    # median over the present classes: median n = 4.5 -> w = 4.5 / n
    np.testing.assert_allclose(w, [4.5 / 12, 0.0, 1.5, 0.75, 1.5], rtol=1e-6)
    with pytest.warns(UserWarning, match="B"):
        w = class_weights(df, list("ABCDE"), "inverse")
    # K = 4 present classes: 24 / (4 n)
    np.testing.assert_allclose(w, [0.5, 0.0, 2.0, 1.0, 2.0], rtol=1e-6)


def test_class_weights_errors():
    with pytest.raises(ValueError, match="no training images"):
        class_weights(_table({"A": 2}), ["X", "Y"])
    with pytest.raises(ValueError, match="unknown class-weight method"):
        class_weights(_table({"A": 2}), ["A"], "sqrt")


def test_sample_weights_are_one_over_class_size():
    df = _table({"A": 4, "B": 1})
    np.testing.assert_allclose(sample_weights(df, ["A", "B"]), [0.25] * 4 + [1.0])


# --------------------------------------------------------------------------- DataLoaders


@pytest.fixture(scope="module")
def items(synthetic_root, tmp_path_factory):
    """Resize-32 items of the synthetic tree, split train/valid/test by frame blocks."""
    m = index_folder(synthetic_root)
    df = split_groups(assign_groups(m, block_size=2), valid_frac=0.25, test_frac=0.25, seed=0)
    out = build_items(df, PreprocessParams("resize", 32), PreprocessCache(tmp_path_factory.mktemp("pc")))
    assert set(out["split"]) == {"train", "valid", "test"}
    return out


def _cached(row) -> np.ndarray:
    return np.load(row["cache_path"])


def test_batch_shape_and_grey_replicated(items):
    dls = make_dataloaders(items, CLASSES, bs=4, augment=False, mean=HALF, std=HALF)
    x, y = dls.train.one_batch()
    assert tuple(x.shape) == (4, 3, 32, 32) and x.dtype == torch.float32
    assert tuple(y.shape) == (4,)
    xv, yv = dls.valid.one_batch()  # un-shuffled: rows in valid-split order
    assert tuple(xv.shape[1:]) == (3, 32, 32)
    assert torch.equal(xv[:, 0], xv[:, 1]) and torch.equal(xv[:, 1], xv[:, 2])
    # the values are the cached uint8 grey, scaled to [0, 1] and normalised by (0.5, 0.5)
    valid = items[items["split"] == "valid"].reset_index(drop=True)
    for k in range(len(xv)):
        expect = (_cached(valid.iloc[k]).astype(np.float32) / 255.0 - 0.5) / 0.5
        np.testing.assert_allclose(xv[k, 0].cpu().numpy(), expect, atol=1e-6)


def test_augmentation_keeps_grey(items):
    dls = make_dataloaders(items, CLASSES, bs=8, augment=True, mean=HALF, std=HALF, seed=1)
    x, _ = dls.train.one_batch()
    assert torch.allclose(x[:, 0], x[:, 1], atol=1e-5) and torch.allclose(x[:, 1], x[:, 2], atol=1e-5)


def test_vocab_is_the_given_order_not_sorted(items):
    order = list(reversed(CLASSES))
    order[0], order[4] = order[4], order[0]
    assert order != sorted(order)
    dls = make_dataloaders(items, order, bs=4, augment=False, mean=HALF, std=HALF)
    assert list(dls.vocab) == order
    valid = items[items["split"] == "valid"].reset_index(drop=True)
    ys = torch.cat([y for _, y in dls.valid]).cpu().tolist()
    assert ys == [order.index(lab) for lab in valid["label"]]


def test_replicate_sampler_balances_train(items):
    # make the train split imbalanced: drop all but one train image of two classes
    tr = items[items["split"] == "train"]
    drop = tr[tr["label"] == CLASSES[0]].index[1:].union(tr[tr["label"] == CLASSES[5]].index[2:])
    unbalanced = items.drop(drop)
    counts = class_counts(unbalanced[unbalanced["split"] == "train"], CLASSES)
    assert counts[CLASSES[0]] == 1 and counts[CLASSES[5]] == 2
    target = max(counts.values())
    dls = make_dataloaders(unbalanced, CLASSES, bs=4, augment=False, mean=HALF, std=HALF, sampler="replicate")
    got = class_counts(dls.train_ds.items, CLASSES)
    assert set(got.values()) == {target}
    assert len(dls.train_ds) == target * len(CLASSES)
    # the valid split is not oversampled
    assert len(dls.valid_ds) == int((unbalanced["split"] == "valid").sum())
    dls2 = make_dataloaders(unbalanced, CLASSES, bs=4, augment=False, sampler="replicate", oversample_target=3)
    got2 = class_counts(dls2.train_ds.items, CLASSES)
    assert got2[CLASSES[0]] == 3 and got2[CLASSES[5]] == 3 and got2[CLASSES[1]] == counts[CLASSES[1]]


def test_weighted_sampler_builds_and_draws(items):
    from fastai.callback.data import WeightedDL

    dls = make_dataloaders(items, CLASSES, bs=4, augment=False, mean=HALF, std=HALF, sampler="weighted")
    assert isinstance(dls.train, WeightedDL)
    n_train = int((items["split"] == "train").sum())
    assert len(dls.train.wgts) == n_train and np.isclose(dls.train.wgts.sum(), 1.0)
    x, y = dls.train.one_batch()
    assert tuple(x.shape) == (4, 3, 32, 32)


def test_weighted_sampler_balances_train_classes(items):
    # train: class 0 has 1 image, class 1 has 4; valid: class 0 has 4, class 1 has 1 (other classes dropped)
    a, b = CLASSES[0], CLASSES[1]
    tr = items[(items["split"] == "train")]
    pool = items[items["label"].isin([a, b])]
    rows = [tr[tr["label"] == a].iloc[:1].assign(split="train"),
            pool[pool["label"] == b].iloc[:4].assign(split="train"),
            pool[pool["label"] == a].iloc[1:5].assign(split="valid"),
            pool[pool["label"] == b].iloc[4:5].assign(split="valid")]
    df = pd.concat(rows, ignore_index=True)
    dls = make_dataloaders(df, [a, b], bs=2, augment=False, sampler="weighted")
    labels = list(dls.train_ds.items["label"])  # train rows, in the order of the sampler's weights
    assert labels.count(a) == 1 and labels.count(b) == 4
    w = np.asarray(dls.train.wgts)
    share = {c: float(w[[lab == c for lab in labels]].sum()) for c in (a, b)}
    # 1/n_class sampling: each class drawn with probability 1/2
    assert share[a] == pytest.approx(0.5) and share[b] == pytest.approx(0.5)


def test_per_image_normalisation(items):
    dls = make_dataloaders(items, CLASSES, bs=4, augment=False, normalize="per_image")
    for x, _ in dls.valid:
        m = x.mean(dim=(1, 2, 3))
        s = x.std(dim=(1, 2, 3))
        assert torch.allclose(m, torch.zeros_like(m), atol=1e-4)
        assert torch.allclose(s, torch.ones_like(s), atol=1e-3)
    # 'dataset' normalisation does not standardise each image
    xd, _ = make_dataloaders(items, CLASSES, bs=4, augment=False, mean=HALF, std=HALF).valid.one_batch()
    assert not torch.allclose(xd.std(dim=(1, 2, 3)), torch.ones(len(xd)), atol=1e-2)


def test_bad_arguments_raise(items):
    with pytest.raises(ValueError, match="nope"):
        make_dataloaders(items, CLASSES, train_split="nope")
    with pytest.raises(ValueError, match="sampler"):
        make_dataloaders(items, CLASSES, sampler="magic")
    with pytest.raises(ValueError, match="normalisation"):
        make_dataloaders(items, CLASSES, normalize="minmax")


def test_tiny_train_set_reduces_batch_size_and_fills_empty_valid(items):
    tr = items[items["split"] == "train"].iloc[:3]
    dls = make_dataloaders(tr, CLASSES, bs=16, augment=False)
    assert dls.train.bs == 3 and not dls.train.drop_last
    assert len(dls.valid_ds) == 3  # no valid rows: the train rows stand in
    x, _ = dls.train.one_batch()
    assert x.shape[0] == 3
