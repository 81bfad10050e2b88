"""Whole-micrograph CAMs at particle scale: tile CAMs stitched back into the frame, and the
``cam_fn`` the explorer calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._images import resize_map
from ._compute import _class_index, compute_cams
from ._layers import ModelLike, _as_layers

__all__ = ["stitch_tiles", "MicrographCam", "micrograph_cam", "make_cam_fn"]


def stitch_tiles(
    cams: np.ndarray,
    positions: Sequence[tuple[int, int]],
    frame_shape: tuple[int, int],
    tile_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Put tile-mode CAMs back into the frame, averaging where tiles overlap.

    Parameters
    ----------
    cams : numpy.ndarray
        ``(T, h, w)`` CAMs, one per tile.
    positions : list of (row, col)
        Top-left corner of each tile in the frame (pixels); tiles may overhang the frame.
    frame_shape : (H, W)
        Shape of the frame (the bar-free micrograph).
    tile_shape : (th, tw) or None
        Size of a tile in frame pixels when it differs from the CAM's (tiles resampled to
        the network input); None: the CAM's own shape.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``; 0 where no tile falls.  Each tile's CAM is normalised on its
        own, so values compare within a tile better than across tiles.

    Examples
    --------
    >>> import numpy as np
    >>> cams = np.stack([np.zeros((2, 2)), np.ones((2, 2))])
    >>> stitch_tiles(cams, [(0, 0), (0, 1)], (2, 4)).tolist()  # the overlap is averaged
    [[0.0, 0.5, 1.0, 0.0], [0.0, 0.5, 1.0, 0.0]]
    """
    cams = np.asarray(cams, np.float32)
    if cams.ndim == 2:
        cams = cams[None]
    if len(positions) != len(cams):
        raise ValueError(f"{len(cams)} CAMs but {len(positions)} positions")
    fh, fw = int(frame_shape[0]), int(frame_shape[1])
    acc = np.zeros((fh, fw), np.float64)
    cnt = np.zeros((fh, fw), np.int32)
    for cam, (r, c) in zip(cams, positions):
        if tile_shape is not None:
            cam = resize_map(cam, tile_shape)
        r, c = int(r), int(c)
        th, tw = cam.shape
        r0, c0, r1, c1 = max(r, 0), max(c, 0), min(r + th, fh), min(c + tw, fw)
        if r1 <= r0 or c1 <= c0:
            continue
        acc[r0:r1, c0:c1] += cam[r0 - r : r1 - r, c0 - c : c1 - c]
        cnt[r0:r1, c0:c1] += 1
    out = np.zeros((fh, fw), np.float64)
    np.divide(acc, cnt, out=out, where=cnt > 0)
    return out.astype(np.float32)


@dataclass
class MicrographCam:
    """A whole micrograph's CAM (:func:`micrograph_cam`).

    Attributes
    ----------
    cam : ndarray
        float32 ``(H, W)`` at the bar-free micrograph's own resolution, stitched from the tiles.
    target : int
        Class explained.
    probs : ndarray
        The micrograph's aggregated class probabilities.
    inputs : torch.Tensor
        Normalised tiles ``(T, 3, S, S)``.
    tile_cams : ndarray
        ``(T, S, S)`` per-tile CAMs at network resolution.
    tiles : ndarray
        uint8 ``(T, S, S)`` tiles of the scaled frame (for structure maps at the model's scale).
    """

    cam: np.ndarray
    target: int
    probs: np.ndarray
    inputs: torch.Tensor
    tile_cams: np.ndarray
    tiles: np.ndarray


def micrograph_cam(model_like: ModelLike, grey: np.ndarray, arr: np.ndarray, method: str = "gradcam",
                   target: int | None = None, target_layer: nn.Module | str | None = None,
                   batch_size: int = 8, forward: ModelLike | None = None) -> MicrographCam:
    """CAM of a whole micrograph at particle scale: one CAM per tile of the model's tile grid,
    stitched over the scaled frame (overlaps averaged) and resampled to the micrograph.

    Parameters
    ----------
    model_like : ModelLike
        A loaded model with ``params`` (size, tile_stride), ``normalise`` and ``predict_arrays``.
    grey : ndarray
        The bar-free micrograph (its shape is the output's).
    arr : ndarray
        uint8 frame at the model's scale (from ``load_array`` or the pre-processing cache).
    method : str
        A key of :data:`CAM_METHODS`.
    target : int or None
        Class index to explain; None: the micrograph's aggregated prediction.
    target_layer, batch_size
        As for :func:`compute_cams`.
    forward : ModelLike, optional
        The same model for the micrograph's probabilities (a forward-only pass), e.g. the faster
        copy of :meth:`~semcathode.models.ExportedModel.optimized`; None: ``model_like``.

    Returns
    -------
    MicrographCam
    """
    from ..data._tiles import cut_tiles

    params = model_like.params
    tiles, positions = cut_tiles(np.asarray(arr), params.size, params.tile_stride)
    x = model_like.normalise(tiles)
    probs = (forward or model_like).predict_arrays([arr]).probs()[0]
    t = int(probs.argmax()) if target is None else int(target)
    cams = compute_cams(model_like.model, x, method=method, targets=t, target_layer=target_layer,
                        batch_size=batch_size)
    stitched = stitch_tiles(cams, positions, np.asarray(arr).shape, tile_shape=(params.size, params.size))
    return MicrographCam(resize_map(stitched, grey.shape), t, probs, x, cams, tiles)


def make_cam_fn(
    model: nn.Module | ModelLike,
    load: Callable[[pd.Series], tuple[np.ndarray, Any]] | None = None,
    classes: Sequence[str] | None = None,
    target_layer: nn.Module | str | None = None,
) -> Callable[[pd.Series, str, str | None], tuple[np.ndarray, np.ndarray]]:
    """A ``cam_fn(row, method, target_class) -> (grey image, cam)`` for :mod:`semcathode.explain._explorer`.

    Parameters
    ----------
    model : nn.Module or ModelLike
        A loaded model (then ``load`` returns ``(grey, frame at the model's scale)``, default
        ``model.load_array(row['path'])``, and the CAM is the stitched :func:`micrograph_cam`;
        ``classes`` defaults to ``model.classes``), or a bare classifier (then ``load`` returns
        ``(grey, normalised input (1, 3, S, S))``).
    load : callable or None
        ``load(row) -> (grey, frame or input)`` as described for ``model``; required for a bare
        classifier.
    classes : sequence of str or None
        Class names (to turn ``target_class`` into an index).
    target_layer : module, str or None
        As for :func:`compute_cams`.

    Returns
    -------
    callable
        ``cam_fn(row, method, target_class) -> (grey image, cam)``; ``target_class`` (a class
        name or index) None explains the predicted class.
    """
    if isinstance(model, ModelLike):
        classes = list(classes if classes is not None else model.classes)
        load = load or (lambda row: model.load_array(row["path"]))
        layers = _as_layers(model.model, target_layer)

        def cam_fn(row: pd.Series, method: str, target_class: str | None) -> tuple[np.ndarray, np.ndarray]:
            grey, arr = load(row)
            t = _class_index(classes, target_class)
            return grey, micrograph_cam(model, grey, arr, method=method, target=t, target_layer=layers).cam

        return cam_fn
    if load is None or classes is None:
        raise ValueError("give load and classes (or a loaded model with load_array and classes)")
    layers = _as_layers(model, target_layer)

    def bare_cam_fn(row: pd.Series, method: str, target_class: str | None) -> tuple[np.ndarray, np.ndarray]:
        grey, x = load(row)
        t = _class_index(classes, target_class)
        cam = compute_cams(model, x, method=method, targets=None if t is None else [t], target_layer=layers)[0]
        return grey, cam

    return bare_cam_fn
