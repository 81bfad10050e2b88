"""Tables that summarise a manifest: counts, pixel sizes, splits, duplicates."""

from __future__ import annotations

import pandas as pd

from ._duplicates import check_duplicates, find_duplicates

__all__ = ["count_table", "pixel_size_table", "split_table", "duplicate_report", "data_summary"]


def count_table(df: pd.DataFrame) -> pd.DataFrame:
    """Images per class, with composition, state, domain(s) and session(s).

    Parameters
    ----------
    df : DataFrame
        A manifest.

    Returns
    -------
    DataFrame
        One row per class.
    """
    g = df.groupby("label", sort=False)
    return pd.DataFrame({
        "composition": g["composition"].first(),
        "state": g["state"].first(),
        "images": g.size(),
        "sessions": g["session"].nunique(),
        "session": g["session"].agg(lambda s: "; ".join(sorted(set(map(str, s))))),
        "mean_grey": g["mean_grey"].mean().round(1),
    }).reset_index()


def pixel_size_table(df: pd.DataFrame) -> pd.DataFrame:
    """Pixel size (µm/px), frame size and metadata source per class.

    Parameters
    ----------
    df : DataFrame
        A manifest.

    Returns
    -------
    DataFrame
        One row per class.
    """
    g = df.groupby("label", sort=False)
    return pd.DataFrame({
        "pixel_size_um": g["pixel_size_um"].median().round(4),
        "field_of_view_um": (g["pixel_size_um"].median() * g["width"].median()).round(1),
        "width": g["width"].median().astype(int),
        "height": g["height"].median().astype(int),
        "bar_row": g["bar_row"].median().astype(int),
        "bar_method": g["bar_method"].agg(lambda s: ",".join(sorted(set(s)))),
        "metadata": g["meta_source"].agg(lambda s: ",".join(sorted(set(map(str, s))))),
        "missing_pixel_size": g["pixel_size_um"].apply(lambda s: int(s.isna().sum())),
    }).reset_index()


def split_table(df: pd.DataFrame) -> pd.DataFrame:
    """Images per class x (domain, split), plus the number of groups.

    Parameters
    ----------
    df : DataFrame
        A split manifest (``domain``, ``split``, ``group``).

    Returns
    -------
    DataFrame
        One row per class, one column per ``domain/split``.
    """
    t = df.pivot_table(index="label", columns=["domain", "split"], values="path", aggfunc="count", fill_value=0)
    t.columns = [f"{d}/{s}" for d, s in t.columns]
    t["groups"] = df.groupby("label")["group"].nunique()
    order = list(dict.fromkeys(df["label"]))
    return t.loc[order].reset_index()


def duplicate_report(df: pd.DataFrame, max_distance: int = 4) -> tuple[pd.DataFrame, list[str]]:
    """Duplicate pairs with the split/domain/group of each side, and cross-split warnings.

    Parameters
    ----------
    df : DataFrame
        A split manifest.
    max_distance : int
        Largest perceptual-hash distance of a near duplicate.

    Returns
    -------
    pairs : DataFrame
        From :func:`~semcathode.data._duplicates.find_duplicates`, with ``<column>_a``/``_b``.
    warnings : list of str
        Pairs that cross a split or domain.
    """
    dups = find_duplicates(df, max_distance=max_distance)
    for col in ("split", "domain", "group"):
        if col in df.columns and len(dups):
            dups[f"{col}_a"] = df.loc[dups["a"], col].to_numpy()
            dups[f"{col}_b"] = df.loc[dups["b"], col].to_numpy()
    warnings = check_duplicates(df, dups, columns=("split", "domain"))
    return dups, warnings


def data_summary(df: pd.DataFrame) -> dict:
    """Machine-readable summary of a split manifest.

    Parameters
    ----------
    df : DataFrame
        A (split) manifest.

    Returns
    -------
    dict
        Counts of images, classes, domains, sessions (and splits and groups when split).
    """
    out = {
        "n_images": int(len(df)),
        "classes": {k: int(v) for k, v in df["label"].value_counts(sort=False).items()},
        "domains": {k: int(v) for k, v in df["domain"].value_counts().items()},
        "sessions": int(df["session"].nunique()),
        "sessions_per_class": {k: int(v) for k, v in df.groupby("label")["session"].nunique().items()},
    }
    if "split" in df.columns:
        out["splits"] = {f"{d}/{s}": int(n) for (d, s), n in df.groupby(["domain", "split"]).size().items()}
        out["groups"] = int(df["group"].nunique())
    return out


