"""Group-aware, class-stratified splits; the transfer study's source/target partition.

Adjacent frames of one SEM session are neighbouring stage positions and overlap in content,
so images are split in *groups*: blocks of ``block_size`` consecutive frames of one session
(or a user's ``sample_id``). A group never straddles train/valid/test.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd

__all__ = [
    "assign_groups",
    "merge_duplicate_groups",
    "split_groups",
    "make_transfer_splits",
    "subset_per_class",
    "session_tail",
    "session_position",
    "group_folds",
    "check_no_group_leak",
    "SIMULATED_SHIFT_NOTE",
]

SIMULATED_SHIFT_NOTE = (
    "SIMULATED INSTRUMENT SHIFT: the public KAIST images contain no cells made with electrolyte "
    "additives, so the target domain here is held-out frame blocks of every class passed through "
    "an acquisition-shift model (brightness/contrast/gamma, Poisson-Gaussian noise, defocus blur, "
    "magnification change). It stands in for the paper's additive domain; it is not additive data."
)


def _rng(seed: int, *keys: str) -> np.random.Generator:
    salt = [sum(ord(c) * (i + 1) for i, c in enumerate(k)) for k in keys]
    return np.random.default_rng([int(seed), *salt])


def assign_groups(df: pd.DataFrame, block_size: int = 5) -> pd.DataFrame:
    """Add a ``group`` column: ``sample_id`` when present, else frame blocks per session.

    Parameters
    ----------
    df : DataFrame
        Manifest with ``label, session, frame`` (frame may be missing: file order is used).
    block_size : int
        Number of consecutive frames of one session per group.

    Returns
    -------
    DataFrame
        A copy with ``group`` added.
    """
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    out = df.copy()
    if "sample_id" in out.columns and out["sample_id"].notna().all():
        out["group"] = out["label"].astype(str) + "|" + out["sample_id"].astype(str)
        return out
    groups = pd.Series(index=out.index, dtype=object)
    for (label, session), sub in out.groupby(["label", "session"], sort=False):
        order = sub.sort_values(["frame", "path"], na_position="last").index
        for rank, idx in enumerate(order):
            groups[idx] = f"{label}|{session}|b{rank // block_size:04d}"
    out["group"] = groups
    return out


def merge_duplicate_groups(df: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Join the groups of duplicate images (same label) so that no pair can straddle splits.

    Near-duplicates are often the same field of view taken twice a few frames apart; if they
    sat in different frame blocks, one could land in train and its twin in test. Groups linked
    by a duplicate pair are merged (union-find); pairs with different labels are left alone
    (a labelling problem that :func:`semcathode.data._duplicates.check_duplicates` reports).

    Parameters
    ----------
    df : DataFrame
        Manifest with ``group`` and ``label``.
    pairs : DataFrame
        From :func:`semcathode.data._duplicates.find_duplicates` (row labels ``a``, ``b``).

    Returns
    -------
    DataFrame
        A copy with merged ``group`` values (each merged group named after its first member).
    """
    parent = {g: g for g in df["group"].unique()}

    def find(g: str) -> str:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    for a, b in zip(pairs.get("a", []), pairs.get("b", [])):
        if df.loc[a, "label"] != df.loc[b, "label"]:
            continue
        ra, rb = find(df.loc[a, "group"]), find(df.loc[b, "group"])
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    out = df.copy()
    out["group"] = out["group"].map(find)
    return out


def _take_groups(groups: list[str], sizes: dict[str, int], fractions: list[float], names: list[str]) -> dict[str, str]:
    """Assign whole groups (in the given order) to names until each fraction of images is met."""
    total = sum(sizes[g] for g in groups)
    assign: dict[str, str] = {}
    remaining = list(groups)
    for name, frac in zip(names, fractions):
        want = frac * total
        got = 0
        while remaining and got < want and len(remaining) > 1:
            g = remaining.pop(0)
            assign[g] = name
            got += sizes[g]
    return assign, remaining


def split_groups(
    df: pd.DataFrame,
    valid_frac: float = 0.15,
    test_frac: float = 0.2,
    seed: int = 0,
    column: str = "split",
) -> pd.DataFrame:
    """Stratified group split into train/valid/test, deterministic by seed.

    Per class, the groups are shuffled with the seed; whole groups go to test until
    ``test_frac`` of the class's images is reached, then to valid, the rest to train.

    Parameters
    ----------
    df : DataFrame
        Manifest with ``label`` and ``group`` columns (see :func:`assign_groups`).
    valid_frac, test_frac : float
        Shares of each class's images.
    seed : int
    column : str
        Name of the split column to write.

    Returns
    -------
    DataFrame
        A copy with ``column`` in {"train", "valid", "test"}.
    """
    if "group" not in df.columns:
        raise ValueError("split_groups needs a 'group' column: call assign_groups first")
    if not 0 <= valid_frac < 1 or not 0 <= test_frac < 1 or valid_frac + test_frac >= 1:
        raise ValueError(f"invalid split fractions valid={valid_frac} test={test_frac}")
    out = df.copy()
    out[column] = "train"
    for label, sub in out.groupby("label", sort=False):
        sizes = sub.groupby("group").size().to_dict()
        groups = sorted(sizes)
        _rng(seed, str(label)).shuffle(groups)
        if len(groups) < 3:
            warnings.warn(f"class {label} has only {len(groups)} group(s): it cannot fill train, valid and test")
        assign, _ = _take_groups(groups, sizes, [test_frac, valid_frac], ["test", "valid"])
        mask = sub["group"].map(assign)
        out.loc[mask.dropna().index, column] = mask.dropna()
    return out


def make_transfer_splits(
    df: pd.DataFrame,
    target_frac: float = 0.4,
    valid_frac: float = 0.15,
    test_frac: float = 0.2,
    per_class_train: int = 20,
    seed: int = 0,
    shift: dict | None = None,
    target_valid_frac: float | None = None,
) -> pd.DataFrame:
    """Partition a one-domain manifest into a source and a simulated-shift target domain.

    Per class, ``target_frac`` of the frame-block groups are held out as the target domain;
    each domain is then split into train/valid/test by groups; the target's train split is
    cut to ``per_class_train`` images per class (the data-poor budget), the rest marked
    ``unused``. Target rows carry the acquisition shift in a ``shift`` column (JSON), which
    pre-processing applies. See :data:`SIMULATED_SHIFT_NOTE`.

    Parameters
    ----------
    df : DataFrame
        Manifest with ``group`` (from :func:`assign_groups`).
    target_frac : float
        Share of each class's images held out for the target domain.
    valid_frac, test_frac : float
        Shares within each domain.
    target_valid_frac : float, optional
        Valid share within the target domain (default ``valid_frac``).
    per_class_train : int
        Target train budget per class (0 = all).
    seed : int
    shift : dict, optional
        :class:`~semcathode.data._shift.AcquisitionShift` as a dict; default the package's
        simulated instrument shift.

    Returns
    -------
    DataFrame
        Copy with ``domain`` in {source, target}, ``split`` and ``shift``.
    """
    from ._shift import simulated_instrument_shift

    out = df.copy()
    out["domain"] = "source"
    for label, sub in out.groupby("label", sort=False):
        sizes = sub.groupby("group").size().to_dict()
        groups = sorted(sizes)
        _rng(seed, "domain", str(label)).shuffle(groups)
        assign, _ = _take_groups(groups, sizes, [target_frac], ["target"])
        tgt = sub.index[sub["group"].isin([g for g, v in assign.items() if v == "target"])]
        out.loc[tgt, "domain"] = "target"
    parts = []
    for dom, sub in out.groupby("domain", sort=False):
        vf = valid_frac if dom == "source" or target_valid_frac is None else target_valid_frac
        parts.append(split_groups(sub, vf, test_frac, seed=seed))
    out = pd.concat(parts).loc[out.index]
    if per_class_train:
        tgt_train = out[(out["domain"] == "target") & (out["split"] == "train")]
        keep = subset_per_class(tgt_train, per_class_train, seed=seed, split=None).index
        drop = tgt_train.index.difference(keep)
        out.loc[drop, "split"] = "unused"
    shift_json = json.dumps(shift if shift is not None else simulated_instrument_shift().to_dict(), sort_keys=True)
    out["shift"] = np.where(out["domain"] == "target", shift_json, "")
    out.attrs["note"] = SIMULATED_SHIFT_NOTE
    return out


def subset_per_class(
    df: pd.DataFrame, n: int, seed: int = 0, split: str | None = "train"
) -> pd.DataFrame:
    """At most ``n`` images per class, taken group by group from ``split`` only.

    Groups are visited in a seeded order and images within a group in frame order, so the
    subsets for growing ``n`` are nested (the 5-image set contains the 2-image set).

    Parameters
    ----------
    df : DataFrame
        Manifest with ``label``, ``group`` and (if ``split`` is given) ``split``.
    n : int
        Images per class.
    seed : int
    split : str or None
        Only rows of this split are eligible; None = all rows.

    Returns
    -------
    DataFrame
        The chosen rows.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    pool = df if split is None else df[df["split"] == split]
    chosen = []
    for label, sub in pool.groupby("label", sort=False):
        groups = sorted(sub["group"].unique())
        _rng(seed, "subset", str(label)).shuffle(groups)
        rank = {g: i for i, g in enumerate(groups)}
        ordered = sub.assign(_r=sub["group"].map(rank)).sort_values(["_r", "frame", "path"])
        chosen.append(ordered.head(n).drop(columns="_r"))
    return pd.concat(chosen) if chosen else pool.iloc[:0]


def session_position(df: pd.DataFrame, tail_frac: float = 0.1, pretail_frac: float = 0.0) -> pd.Series:
    """Where each row sits along its imaging session: ``"train"``, ``"pretail"`` or ``"tail"``.

    Per ``(label, session)``, rows are ordered by ``frame`` (then ``path``). The last
    ``ceil(tail_frac * n)`` of them are the ``tail`` (the session-tail test split) and the
    ``ceil(pretail_frac * n)`` just before are the ``pretail`` (a validation split shaped like the
    tail: the frames just before it, so a setting chosen there is chosen for extrapolation along
    the stage); each is at least one row when its fraction is above 0 and the session has frames
    left for it (the tail is served first, and ``train`` keeps at least one row when it can).

    Parameters
    ----------
    df : DataFrame
        Manifest with ``label``, ``session``, ``frame`` (missing frames: file order) and ``path``.
    tail_frac, pretail_frac : float
        Shares of each session; 0 = none. Their sum must be below 1.

    Returns
    -------
    Series of str
        Aligned with ``df``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"label": "a", "session": "s1", "frame": range(10, 0, -1),
    ...                    "path": list("abcdefghij")})
    >>> pos = session_position(df, tail_frac=0.2, pretail_frac=0.2)
    >>> [pos[df["frame"] == f].item() for f in range(1, 11)]  # frame 1 first
    ['train', 'train', 'train', 'train', 'train', 'train', 'pretail', 'pretail', 'tail', 'tail']
    """
    for name, frac in (("session-tail", tail_frac), ("pre-tail", pretail_frac)):
        if not 0 <= frac < 1:
            raise ValueError(f"{name} fraction must be in [0, 1), got {frac}")
    if tail_frac + pretail_frac >= 1:
        raise ValueError(f"session-tail + pre-tail fractions must be below 1, got {tail_frac} + {pretail_frac}")
    pos = pd.Series("train", index=df.index, dtype=object)
    if df.empty:
        return pos
    for _, sub in df.groupby(["label", "session"], sort=False, dropna=False):
        order = sub.sort_values(["frame", "path"], na_position="first").index
        n = len(order)
        n_tail = max(1, int(np.ceil(tail_frac * n))) if tail_frac > 0 else 0
        n_pre = min(max(1, int(np.ceil(pretail_frac * n))), max(n - n_tail - 1, 0)) if pretail_frac > 0 else 0
        if n_tail:
            pos[order[n - n_tail:]] = "tail"
        if n_pre:
            pos[order[n - n_tail - n_pre:n - n_tail]] = "pretail"
    return pos


def session_tail(df: pd.DataFrame, frac: float = 0.1) -> pd.Series:
    """Which rows are the last frames of their imaging session (the session-tail test split).

    Per ``(label, session)``, rows are ordered by ``frame`` (then ``path``); the last
    ``ceil(frac * n)`` of them (at least one when ``frac > 0``) are the tail. Testing on them
    is extrapolation along the stage, not interpolation between neighbouring frames. See
    :func:`session_position` for the tail together with the pre-tail validation split.

    Parameters
    ----------
    df : DataFrame
        Manifest with ``label``, ``session``, ``frame`` (missing frames: file order) and ``path``.
    frac : float
        Share of each session held out; 0 = none.

    Returns
    -------
    Series of bool
        Aligned with ``df``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"label": ["a"] * 5 + ["b"] * 2, "session": "s1",
    ...                    "frame": [5, 1, 4, 2, 3, 7, 6], "path": list("abcdefg")})
    >>> df[session_tail(df, 0.2)]["frame"].tolist()
    [5, 7]
    """
    return session_position(df, tail_frac=frac) == "tail"


def group_folds(df: pd.DataFrame, n_splits: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified group k-fold (scikit-learn) over ``label`` and ``group``: index pairs.

    Parameters
    ----------
    df : DataFrame
        Rows with ``label`` and ``group``.
    n_splits : int
        Number of folds.
    seed : int
        Shuffling seed.

    Returns
    -------
    list of (ndarray, ndarray)
        ``(train, test)`` positional indices per fold.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(df)), df["label"].to_numpy(), df["group"].to_numpy()))


def check_no_group_leak(df: pd.DataFrame, column: str = "split") -> None:
    """Raise ``ValueError`` naming any group that appears in more than one split.

    Rows marked ``unused`` (target train images beyond the per-class budget, which enter no
    computation) are ignored: cutting the budget inside a group leaks nothing.

    Parameters
    ----------
    df : DataFrame
        Rows with ``group`` and ``column``.
    column : str
        The split column.

    Raises
    ------
    ValueError
        A group in more than one split.
    """
    df = df[df[column] != "unused"]
    n = df.groupby("group")[column].nunique()
    bad = n[n > 1]
    if len(bad):
        raise ValueError(f"groups straddle splits: {', '.join(map(str, bad.index[:10]))}")
