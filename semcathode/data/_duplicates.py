"""Exact and near-duplicate micrographs of a manifest, and duplicates that cross splits.

Exact duplicates share their sha256; near duplicates have perceptual hashes (the manifest's
``phash`` column, see :func:`semcathode.data.index_folder`) within a small Hamming
distance. A pair whose members land in different splits or domains leaks information; such
pairs are reported by :func:`check_duplicates`.
"""

from __future__ import annotations

import warnings
from typing import Iterable

import numpy as np
import pandas as pd

__all__ = ["DuplicateWarning", "find_duplicates", "check_duplicates"]


class DuplicateWarning(UserWarning):
    """Duplicate or near-duplicate images cross splits or domains."""


def find_duplicates(df: pd.DataFrame, max_distance: int = 4) -> pd.DataFrame:
    """Exact (sha256) and near-duplicate (perceptual hash) pairs.

    Parameters
    ----------
    df : DataFrame
        Manifest with ``sha256`` and ``phash`` columns.
    max_distance : int
        Largest Hamming distance between 64-bit perceptual hashes that counts as a
        near-duplicate.

    Returns
    -------
    DataFrame
        Columns ``a, b`` (row indices), ``path_a, path_b, kind`` (``exact``/``near``),
        ``distance``.
    """
    pairs = []
    for _, grp in df.groupby("sha256"):
        idx = list(grp.index)
        for i in range(len(idx)):
            for j in range(i + 1, len(idx)):
                pairs.append((idx[i], idx[j], "exact", 0))
    exact = {(a, b) for a, b, _, _ in pairs}
    if "phash" in df.columns and len(df) > 1:
        bits = np.array([[int(c) for c in bin(int(h, 16))[2:].zfill(64)] for h in df["phash"]], dtype=np.uint8)
        dist = (bits[:, None, :] != bits[None, :, :]).sum(-1)
        ii, jj = np.nonzero(np.triu(dist <= max_distance, k=1))
        for i, j in zip(ii, jj):
            a, b = int(df.index[i]), int(df.index[j])
            if (a, b) not in exact:
                pairs.append((a, b, "near", int(dist[i, j])))
    out = pd.DataFrame(pairs, columns=["a", "b", "kind", "distance"])
    out["path_a"] = [df.loc[a, "path"] for a in out["a"]]
    out["path_b"] = [df.loc[b, "path"] for b in out["b"]]
    return out


def check_duplicates(df: pd.DataFrame, dups: pd.DataFrame, columns: Iterable[str] = ("split", "domain")) -> list[str]:
    """Warn (and return the messages) for duplicate pairs whose members differ in ``columns``.

    Parameters
    ----------
    df : DataFrame
        The split manifest.
    dups : DataFrame
        From :func:`find_duplicates`.
    columns : iterable of str
        Columns both members of a pair must share.

    Returns
    -------
    list of str
        One message per crossing (each also warned as :class:`DuplicateWarning`).
    """
    messages = []
    for col in columns:
        if col not in df.columns or dups.empty:
            continue
        for row in dups.itertuples(index=False):
            va, vb = df.loc[row.a, col], df.loc[row.b, col]
            if va != vb:
                messages.append(
                    f"{row.kind} duplicate crosses {col} ({va} vs {vb}): {row.path_a} ~ {row.path_b}"
                )
    for m in messages:
        warnings.warn(m, DuplicateWarning, stacklevel=2)
    return messages
