import math

import numpy as np
import pandas as pd
import pytest

from semcathode.data._splits import (
    assign_groups,
    check_no_group_leak,
    group_folds,
    make_transfer_splits,
    split_groups,
    subset_per_class,
)


def _manifest(sizes=None):
    sizes = sizes or {"A": 40, "B": 23, "C": 31}
    rows = []
    for label, n in sizes.items():
        for k in range(n):
            rows.append({"path": f"/{label}/{k}.png", "label": label, "session": f"s-{label}",
                         "frame": 100 + 3 * k, "sha256": f"{label}{k}"})
    return pd.DataFrame(rows)


def test_groups_are_blocks_of_consecutive_frames():
    df = assign_groups(_manifest().sample(frac=1, random_state=0), block_size=5)
    for _, sub in df.groupby("group"):
        assert len(sub) <= 5 and sub["label"].nunique() == 1
        frames = sorted(sub["frame"])
        assert frames == list(range(frames[0], frames[0] + 3 * len(frames), 3))  # consecutive


def test_split_no_group_leak_stratified_and_deterministic():
    df = assign_groups(_manifest(), block_size=4)
    a = split_groups(df, 0.2, 0.2, seed=1)
    b = split_groups(df, 0.2, 0.2, seed=1)
    c = split_groups(df, 0.2, 0.2, seed=2)
    check_no_group_leak(a)
    assert (a["split"] == b["split"]).all()
    assert not (a["split"] == c["split"]).all()
    for label, sub in a.groupby("label"):
        share = sub["split"].value_counts(normalize=True)
        assert set(share.index) == {"train", "valid", "test"}
        assert 0.1 <= share["test"] <= 0.4


def test_leak_check_detects_straddling_group():
    df = split_groups(assign_groups(_manifest(), 4), 0.2, 0.2)
    df.loc[df.index[0], "split"] = "test" if df.loc[df.index[0], "split"] != "test" else "train"
    with pytest.raises(ValueError, match="straddle"):
        check_no_group_leak(df)


def test_sample_id_column_defines_groups():
    df = _manifest({"A": 12})
    df["sample_id"] = ["x", "y", "z"] * 4
    g = assign_groups(df, block_size=2)
    assert g["group"].nunique() == 3


def test_transfer_splits_budget_and_shift():
    df = assign_groups(_manifest({"A": 100, "B": 41, "C": 60}), 5)
    t = make_transfer_splits(df, target_frac=0.4, per_class_train=20, seed=0, shift={"brightness": 0.1})
    check_no_group_leak(t)
    # a group is either source or target
    assert (t.groupby("group")["domain"].nunique() == 1).all()
    tgt_train = t[(t.domain == "target") & (t.split == "train")]
    assert tgt_train.groupby("label").size().max() <= 20
    assert tgt_train.groupby("label").size()["A"] == 20
    assert (t.loc[t.domain == "target", "shift"] != "").all()
    assert (t.loc[t.domain == "source", "shift"] == "").all()
    for dom in ("source", "target"):
        assert set(t[t.domain == dom]["split"]) >= {"train", "valid", "test"}


def test_subsets_nested_and_from_train_only():
    df = split_groups(assign_groups(_manifest(), 3), 0.2, 0.2, seed=0)
    prev = None
    for n in (1, 2, 5, 10):
        s = subset_per_class(df, n, seed=3)
        assert (s["split"] == "train").all()
        assert (s.groupby("label").size() == n).all()
        if prev is not None:
            assert set(prev.index) <= set(s.index)
        prev = s


def test_group_folds_keep_groups_together():
    df = assign_groups(_manifest(), 4)
    for tr, te in group_folds(df, n_splits=3, seed=0):
        assert not set(df.iloc[tr]["group"]) & set(df.iloc[te]["group"])
        assert set(df.iloc[te]["label"]) == {"A", "B", "C"}


def test_duplicate_pairs_share_a_group():
    from semcathode.data._splits import merge_duplicate_groups

    df = assign_groups(_manifest({"A": 20, "B": 10}), block_size=5)
    a, b, c = df.index[0], df.index[12], df.index[21]  # A block 0, A block 2, B block 0
    pairs = pd.DataFrame({"a": [a, a], "b": [b, c]})
    merged = merge_duplicate_groups(df, pairs)
    assert merged.loc[a, "group"] == merged.loc[b, "group"]  # same label: joined
    assert merged.loc[a, "group"] != merged.loc[c, "group"]  # different labels: left alone
    assert merged["group"].nunique() == df["group"].nunique() - 1
    for seed in range(5):
        s = split_groups(merged, 0.2, 0.3, seed=seed)
        check_no_group_leak(s)
        assert s.loc[a, "split"] == s.loc[b, "split"]


def test_session_tail_holds_out_exactly_the_last_frames_of_each_session():
    from semcathode.data._splits import session_tail

    rng = np.random.default_rng(0)
    rows = []
    for label, session, n in [("A", "s1", 20), ("A", "s2", 7), ("B", "s1", 11)]:
        frames = rng.permutation(np.arange(100, 100 + 3 * n, 3))  # shuffled, gaps between frame numbers
        rows += [{"label": label, "session": session, "frame": int(f), "path": f"{label}/{session}/{f}.jpg"} for f in frames]
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=1)
    tail = session_tail(df, 0.2)
    for (label, session), sub in df.groupby(["label", "session"]):
        k = math.ceil(0.2 * len(sub))
        expected = set(sub.sort_values("frame")["frame"].iloc[-k:])
        assert set(sub.loc[tail[sub.index], "frame"]) == expected
    assert not session_tail(df, 0.0).any()
    with pytest.raises(ValueError, match="fraction"):
        session_tail(df, 1.0)


def test_prepare_splits_puts_the_session_tail_into_its_own_test_split(synthetic_root):
    from semcathode.config._run import load_config
    from semcathode.data._manifest import index_folder
    from semcathode.data._factory import prepare_splits

    cfg = load_config("smoke", overrides={"data.tail_frac": 0.25, "data.data_dir": str(synthetic_root)})
    m = index_folder(synthetic_root)
    out = prepare_splits(m, cfg.data, cfg.target)
    tail = out[out["split"] == "tail"]
    assert (tail["domain"] == "source").all() and (tail["shift"] == "").all()
    for (label, session), sub in out[out["label"].isin(tail["label"].unique())].groupby(["label", "session"]):
        k = math.ceil(0.25 * len(sub))
        assert sorted(sub.loc[sub["split"] == "tail", "frame"]) == sorted(sub["frame"])[-k:]
    # the tail never shares a group with a training micrograph
    assert not set(tail["group"]) & set(out.loc[out["split"] != "tail", "group"])


def test_group_leak_check_ignores_unused_rows():
    df = pd.DataFrame({"group": ["g1", "g1", "g2", "g2"], "split": ["train", "unused", "test", "test"]})
    check_no_group_leak(df)  # the budget cut inside g1 leaks nothing
    df.loc[1, "split"] = "test"
    with pytest.raises(ValueError, match="g1"):
        check_no_group_leak(df)


def test_session_position_layout_per_session():
    """Per session, by frame: train | pre-tail | tail, each session on its own, whatever the row order."""
    from semcathode.data._splits import session_position, session_tail

    rng = np.random.default_rng(0)
    rows = []
    for label, n in (("a", 40), ("b", 20), ("c", 3)):
        for f in rng.permutation(n):
            rows.append({"label": label, "session": f"s_{label}", "frame": int(f), "path": f"{label}/{f}.png"})
    df = pd.DataFrame(rows).sample(frac=1, random_state=1)
    pos = session_position(df, tail_frac=0.1, pretail_frac=0.1)
    for label, n in (("a", 40), ("b", 20)):
        sub = df[df["label"] == label].assign(pos=pos).sort_values("frame")
        expected = ["train"] * (n - 2 * (n // 10)) + ["pretail"] * (n // 10) + ["tail"] * (n // 10)
        assert sub["pos"].tolist() == expected
    small = df[df["label"] == "c"].assign(pos=pos).sort_values("frame")["pos"].tolist()
    assert small == ["train", "pretail", "tail"]  # at least one each, train keeps a row
    # without a pre-tail the tail is what session_tail gives
    assert (session_position(df, 0.1) == "tail").equals(session_tail(df, 0.1))
    with pytest.raises(ValueError, match="below 1"):
        session_position(df, 0.5, 0.5)
