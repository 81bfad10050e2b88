"""The tile grid that covers a frame from edge to edge: its corners, its size, its tiles.

Evaluation, ``predict``, CAMs and the trunk cache all cut a pre-processed micrograph with this one
grid, so a tile means the same pixels everywhere.
"""

from __future__ import annotations

import numpy as np

__all__ = ["tile_grid", "grid_size", "cut_tiles"]


def tile_grid(shape: tuple[int, int], size: int, stride: float = 1.0) -> list[tuple[int, int]]:
    """Top-left corners of ``size``-px tiles that cover a frame from edge to edge.

    Along each axis ``n = ceil((L - size) / (stride * size)) + 1`` tiles are spread evenly
    from 0 to ``L - size``, so the last tile touches the far edge and every pixel is covered.

    Parameters
    ----------
    shape : (H, W)
        Frame shape (each at least ``size``).
    size : int
    stride : float
        Largest stride as a fraction of ``size`` (0 < stride <= 1 for full coverage).

    Returns
    -------
    list of (row, col)
        Row-major.
    """
    def axis(length: int) -> list[int]:
        span = length - size
        return sorted({int(round(v)) for v in np.linspace(0, max(span, 0), _axis_count(length, size, stride))})

    return [(y, x) for y in axis(int(shape[0])) for x in axis(int(shape[1]))]


def _axis_count(length: int, size: int, stride: float) -> int:
    """Tiles along one axis: ``ceil((length - size) / (stride * size)) + 1`` (one when it fits once)."""
    span = length - size
    return 1 if span <= 0 else int(np.ceil(span / max(1.0, stride * size))) + 1


def grid_size(shape: tuple[int, int], size: int, stride: float = 1.0) -> int:
    """How many tiles :func:`tile_grid` gives a frame, computed without listing them.

    Parameters
    ----------
    shape : (H, W)
    size : int
    stride : float

    Returns
    -------
    int

    Examples
    --------
    >>> grid_size((960, 1280), 224), len(tile_grid((960, 1280), 224))
    (30, 30)
    """
    return _axis_count(int(shape[0]), size, stride) * _axis_count(int(shape[1]), size, stride)


def cut_tiles(img: np.ndarray, size: int, stride: float = 1.0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The tiles of :func:`tile_grid` as one ``(T, size, size)`` array, and their corners.

    Parameters
    ----------
    img : ndarray
        A 2-D image at least ``size`` x ``size``.
    size : int
        Tile side in pixels.
    stride : float
        Stride as a fraction of ``size``.

    Returns
    -------
    tiles : ndarray
        ``(T, size, size)``, same dtype as ``img``.
    corners : list of (int, int)
        ``(y, x)`` of each tile's top-left corner.
    """
    pos = tile_grid(img.shape, size, stride)
    return np.stack([img[y : y + size, x : x + size] for y, x in pos]), pos
