"""Network inputs from cached micrographs: random training crops and evaluation tile grids.

The rows of :func:`semcathode.data.build_items` (one per cached micrograph) become
one row per network input: ``crop_y``/``crop_x`` of ``-1`` draw a new random crop each time
the item is loaded (training), fixed corners on the :func:`~semcathode.data._tiles.tile_grid`
cover the whole frame (evaluation). :func:`semcathode.data._loaders.crop_array` cuts them.
"""

from __future__ import annotations

import pandas as pd

from ._tiles import tile_grid

__all__ = ["crop_items", "grid_items"]


def crop_items(items: pd.DataFrame, k: int = 1) -> pd.DataFrame:
    """Training inputs: every micrograph ``k`` times, each drawing a new random crop when loaded.

    Parameters
    ----------
    items : DataFrame
        From :func:`~semcathode.data.build_items`.
    k : int
        Crops per micrograph per epoch (at least 1).

    Returns
    -------
    DataFrame
        ``items`` repeated ``k`` times with ``crop_y = crop_x = -1`` (random crop).
    """
    out = items.loc[items.index.repeat(max(1, int(k)))].copy()
    out["crop_y"] = -1
    out["crop_x"] = -1
    return out.reset_index(drop=True)


def grid_items(items: pd.DataFrame, stride: float = 1.0, center_only: bool = False) -> pd.DataFrame:
    """Evaluation inputs: the :func:`~semcathode.data._tiles.tile_grid` tiles of every micrograph (or its central tile).

    Parameters
    ----------
    items : DataFrame
        From :func:`~semcathode.data.build_items` (``height``, ``width``, ``size``).
    stride : float
        Tile-grid stride as a fraction of the input size.
    center_only : bool
        Only the central tile of each micrograph.

    Returns
    -------
    DataFrame
        One row per tile with ``tile`` (index in the grid), ``crop_y`` and ``crop_x``.
    """
    rows, tiles, ys, xs = [], [], [], []
    for i, (h, w, s) in enumerate(zip(items["height"], items["width"], items["size"])):
        pos = tile_grid((int(h), int(w)), int(s), stride)
        if center_only:
            pos = [(max(0, (int(h) - int(s)) // 2), max(0, (int(w) - int(s)) // 2))]
        for t, (y, x) in enumerate(pos):
            rows.append(i)
            tiles.append(t)
            ys.append(y)
            xs.append(x)
    out = items.iloc[rows].copy()
    out["tile"] = tiles
    out["crop_y"] = ys
    out["crop_x"] = xs
    return out.reset_index(drop=True)
