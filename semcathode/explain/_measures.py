"""Quantitative checks of what a CAM shows.

:func:`structure_map` (particle boundaries and dark crack-like lines),
:func:`energy_on_mask` (share of the CAM's energy on a mask, against its area share),
:func:`deletion_curve` / :func:`deletion_auc` (does the class probability fall faster
when the most-attended pixels are blurred away first than when random pixels are?),
aggregated by :func:`cam_quant_table`; :func:`explain_items` does all of it for a batch.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._images import grey01, resize_map
from ..models._forward import predict_probs
from ._compute import _as_batch, _class_index, _kept_modes, compute_cams

__all__ = ["structure_map", "energy_on_mask", "deletion_curve", "deletion_auc", "cam_quant_table", "explain_items"]

_QUANT_COLUMNS = ("arm", "label", "energy_share", "area_share", "ratio", "auc_cam", "auc_random")


def structure_map(
    image: np.ndarray,
    quantile: float = 0.8,
    sigma: float = 1.0,
    ridge_sigmas: Sequence[float] = (1.0, 2.0, 3.0),
) -> np.ndarray:
    """Particle boundaries and dark crack-like lines of a grey micrograph.

    The union of two maps, each thresholded at its own ``quantile``: the Scharr edge
    magnitude of the image smoothed with a Gaussian of ``sigma`` px (particle outlines,
    bright SE rims) and the Sato tubeness filter with ``black_ridges=True`` at
    ``ridge_sigmas`` px (thin dark lines: cracks, opened grain boundaries, gaps).  With
    the default 0.8 each map marks its top 20 % of pixels, so the union covers 20-40 % of
    the image.  A flat map contributes nothing.

    Parameters
    ----------
    image : numpy.ndarray
        Grey ``(H, W)`` (RGB is averaged), bar-free; resize it to the CAM first.
    quantile : float
        In (0, 1).
    sigma, ridge_sigmas : float
        Scales in pixels.

    Returns
    -------
    numpy.ndarray
        bool ``(H, W)``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((32, 32), 0.6)
    >>> img[:, 15:17] = 0.1  # a dark crack
    >>> m = structure_map(img)
    >>> bool(m[:, 15:17].all()), bool(m[:, :8].any())
    (True, False)
    >>> bool(structure_map(np.full((16, 16), 0.5)).any())  # a flat image has no structure
    False
    """
    from scipy import ndimage
    from skimage.filters import sato, scharr

    if not 0.0 < quantile < 1.0:
        raise ValueError("quantile must be in (0, 1)")
    img = grey01(image).astype(np.float64)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {img.shape}")
    mask = np.zeros(img.shape, bool)
    edge = scharr(ndimage.gaussian_filter(img, sigma) if sigma > 0 else img)
    ridge = sato(img, sigmas=list(ridge_sigmas), black_ridges=True, mode="reflect")
    for m in (edge, ridge):
        m = np.nan_to_num(m)
        if np.ptp(m) > 1e-12:
            mask |= m > np.quantile(m, quantile)
    return mask


def energy_on_mask(cam: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """How much of a CAM's energy falls on a mask, relative to the mask's area.

    Parameters
    ----------
    cam : numpy.ndarray
        Non-negative map ``(H, W)`` (negative values are clipped to 0).
    mask : numpy.ndarray
        bool ``(H, W)`` (or resized, nearest, to the CAM's shape).

    Returns
    -------
    dict
        ``energy_share`` = sum(cam[mask]) / sum(cam); ``area_share`` = mask.mean();
        ``ratio`` = energy_share / area_share (1: what a uniform map gives; > 1: the CAM
        concentrates on the mask).  NaN when the CAM or the mask is empty.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((4, 4), bool)
    >>> mask[:1] = True  # a quarter of the image
    >>> energy_on_mask(mask.astype(float), mask)
    {'energy_share': 1.0, 'area_share': 0.25, 'ratio': 4.0}
    >>> energy_on_mask(np.ones((4, 4)), mask)["ratio"]  # a uniform map
    1.0
    """
    cam = np.clip(np.nan_to_num(np.asarray(cam, np.float64)), 0.0, None)
    mask = np.asarray(mask, bool)
    if mask.shape != cam.shape:
        mask = resize_map(mask, cam.shape, nearest=True) > 0.5
    total = float(cam.sum())
    area = float(mask.mean()) if mask.size else float("nan")
    energy = float(cam[mask].sum()) / total if total > 0 else float("nan")
    ratio = energy / area if area > 0 else float("nan")
    return {"energy_share": energy, "area_share": area, "ratio": ratio}


def deletion_curve(
    model: nn.Module,
    input: torch.Tensor,
    cam: np.ndarray,
    target: int,
    steps: int = 8,
    order: str = "cam",
    seed: int = 0,
    blur_sigma: float = 5.0,
) -> np.ndarray:
    """Class probability as pixels are progressively replaced by a blurred input.

    Parameters
    ----------
    model : nn.Module
        The classifier (evaluated in eval mode; its modes are restored).
    input : torch.Tensor
        One normalised input ``(1, C, H, W)`` or ``(C, H, W)``.
    cam : numpy.ndarray
        The CAM ``(h, w)`` (resized to ``(H, W)``).
    target : int
        Class whose softmax probability is tracked.
    steps : int
        The fractions ``0, 1/steps, ..., 1`` of the pixels are deleted.
    order : {'cam', 'random'}
        Most-attended pixels first (ties broken at random) or a random order.
    seed : int
        Seed of the random order / tie breaking.
    blur_sigma : float
        Gaussian blur (input pixels) of the replacement image.

    Returns
    -------
    numpy.ndarray
        float64 ``(steps + 1,)`` probabilities; the first is the unperturbed input's, the
        last the fully blurred input's (the same for both orders).
    """
    from scipy import ndimage

    if steps < 1:
        raise ValueError("steps must be >= 1")
    if order not in ("cam", "random"):
        raise ValueError(f"order must be 'cam' or 'random', got {order!r}")
    x = _as_batch(input)
    if x.shape[0] != 1:
        raise ValueError("deletion_curve takes one input")
    _, c, h, w = x.shape
    x0 = x[0].detach().to("cpu", torch.float32).numpy()
    cam = np.nan_to_num(resize_map(np.asarray(cam, np.float32), (h, w))).ravel()
    rng = np.random.default_rng(seed)
    if order == "cam":
        ranking = np.lexsort((rng.random(h * w), -cam))  # last key is the primary one
    else:
        ranking = rng.permutation(h * w)
    rank = np.empty(h * w, np.int64)
    rank[ranking] = np.arange(h * w)
    blurred = ndimage.gaussian_filter(x0, sigma=(0.0, blur_sigma, blur_sigma), mode="reflect")
    counts = np.rint(np.linspace(0.0, 1.0, steps + 1) * h * w).astype(np.int64)
    deleted = (rank[None, :] < counts[:, None]).reshape(steps + 1, 1, h, w)
    batch = np.where(deleted, blurred[None], x0[None]).astype(np.float32)
    with _kept_modes(model), torch.no_grad():
        probs = predict_probs(model, torch.from_numpy(batch))[:, int(target)]
    return probs.numpy().astype(np.float64)


def deletion_auc(curve: Sequence[float]) -> float:
    """Area under a deletion curve, its points spread evenly over [0, 1] (trapezoid rule).

    Lower is better for a faithful CAM: the probability falls early when the
    most-attended pixels go first.

    Parameters
    ----------
    curve : sequence of float
        The probabilities of :func:`deletion_curve` (at least 2 points).

    Returns
    -------
    float
        The area, in [0, 1] for probabilities.

    Examples
    --------
    >>> deletion_auc([1.0, 0.5, 0.0])
    0.5
    """
    y = np.asarray(curve, np.float64)
    if y.size < 2:
        raise ValueError("a deletion curve needs at least 2 points")
    return float(np.trapezoid(y, np.linspace(0.0, 1.0, y.size)))


def cam_quant_table(records: pd.DataFrame | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Aggregate per-image CAM checks per (arm, class).

    Parameters
    ----------
    records : DataFrame or list of dict
        One row per explained image with columns ``arm`` (model/arm name), ``label`` (true
        class name), ``energy_share``, ``area_share``, ``ratio`` (from
        :func:`energy_on_mask` on the :func:`structure_map`), ``auc_cam`` and ``auc_random``
        (:func:`deletion_auc` of the cam- and random-order deletion curves); other columns
        are ignored.  :func:`explain_items` returns such records.

    Returns
    -------
    DataFrame
        Columns ``arm, label, n, energy_share, area_share, ratio, auc_cam, auc_random,
        auc_gap`` (means; ``auc_gap = auc_random - auc_cam``, > 0 when deleting by the CAM
        hurts the class faster than random deletion).  Per arm, the classes in order of
        appearance then an ``'(all)'`` row over all its images.
    """
    df = pd.DataFrame(list(records) if not isinstance(records, pd.DataFrame) else records)
    cols = ["arm", "label", "n", "energy_share", "area_share", "ratio", "auc_cam", "auc_random", "auc_gap"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    missing = [c for c in _QUANT_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"records lack columns {missing}")
    df = df.assign(arm=df["arm"].astype(str), label=df["label"].astype(str))
    metrics = list(_QUANT_COLUMNS[2:])
    df[metrics] = df[metrics].astype(float)
    rows = []
    for arm, g in df.groupby("arm", sort=False):
        parts = [(lab, gg) for lab, gg in g.groupby("label", sort=False)] + [("(all)", g)]
        for lab, gg in parts:
            row = {"arm": arm, "label": lab, "n": len(gg)}
            row.update({m: float(gg[m].mean()) for m in metrics})
            row["auc_gap"] = row["auc_random"] - row["auc_cam"]
            rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def explain_items(
    model: nn.Module,
    inputs: torch.Tensor,
    images: Sequence[np.ndarray] | None,
    labels: Sequence[int | str],
    classes: Sequence[str],
    method: str = "gradcam",
    arm: str = "",
    steps: int = 8,
    target: str = "pred",
    target_layer: nn.Module | str | None = None,
    quantile: float = 0.8,
    seed: int = 0,
    batch_size: int = 8,
    targets: Sequence[int] | None = None,
    forward_model: nn.Module | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """CAMs for a batch and the per-image quantitative records (for notebook 05).

    Parameters
    ----------
    model : nn.Module
        The classifier.
    inputs : torch.Tensor
        Normalised ``(N, 3, S, S)``.
    images : sequence of numpy.ndarray or None
        Grey bar-free images (any size; resized, not cropped, to the CAM for the structure
        map, so the input must show the whole image); None: the channel mean of ``inputs``.
    labels : sequence of int or str
        True classes (indices or names).
    classes : sequence of str
        Class names in logit order.
    method, target_layer, batch_size
        As for :func:`compute_cams`.
    arm : str
        Recorded in each row.
    steps : int
        Deletion-curve steps.
    target : {'pred', 'label'}
        Explain the predicted or the true class.
    targets : sequence of int, optional
        Explicit class indices to explain (overrides ``target``; e.g. the whole micrograph's
        prediction for each of its tiles).
    quantile : float
        Of :func:`structure_map`.
    seed : int
        Random-order deletion uses ``seed + i`` for image ``i``.
    forward_model : nn.Module, optional
        The same classifier for the forward-only passes (the probabilities and the deletion curves),
        e.g. the faster copy of :meth:`~semcathode.models.ExportedModel.optimized`; None: ``model``.

    Returns
    -------
    cams : numpy.ndarray
        float32 ``(N, S, S)``.
    records : DataFrame
        Per image: ``arm, index, label, pred, target, correct, prob_target, method,
        energy_share, area_share, ratio, auc_cam, auc_random`` (input of
        :func:`cam_quant_table`).
    """
    if target not in ("pred", "label"):
        raise ValueError("target must be 'pred' or 'label'")
    x = _as_batch(inputs)
    n = x.shape[0]
    names = [str(c) for c in classes]
    lab_idx = [_class_index(names, v) for v in labels]
    if len(lab_idx) != n:
        raise ValueError(f"{len(lab_idx)} labels for {n} inputs")
    if images is not None and len(images) != n:
        raise ValueError(f"{len(images)} images for {n} inputs")
    fwd = model if forward_model is None else forward_model
    with _kept_modes(fwd), torch.no_grad():
        probs = predict_probs(fwd, x) if n else torch.zeros((0, len(names)))
    preds = probs.argmax(1).numpy()
    if targets is not None:
        tg = [int(v) for v in targets]
    else:
        tg = [int(p) for p in preds] if target == "pred" else [int(v) for v in lab_idx]
    cams = compute_cams(model, x, method=method, targets=tg, target_layer=target_layer, batch_size=batch_size)
    rows = []
    for i in range(n):
        cam = cams[i]
        grey = x[i].detach().float().mean(0).cpu().numpy() if images is None else grey01(images[i])
        if images is None:  # normalised input: rescale to [0, 1] for the filters
            grey = (grey - grey.min()) / max(float(np.ptp(grey)), 1e-12)
        smap = structure_map(resize_map(grey, cam.shape), quantile=quantile)
        e = energy_on_mask(cam, smap)
        auc_c = deletion_auc(deletion_curve(fwd, x[i : i + 1], cam, tg[i], steps=steps, order="cam", seed=seed + i))
        auc_r = deletion_auc(deletion_curve(fwd, x[i : i + 1], cam, tg[i], steps=steps, order="random",
                                            seed=seed + i))
        rows.append({
            "arm": arm, "index": i, "label": names[lab_idx[i]], "pred": names[int(preds[i])],
            "target": names[tg[i]], "correct": bool(lab_idx[i] == int(preds[i])),
            "prob_target": float(probs[i, tg[i]]), "method": method, **e,
            "auc_cam": auc_c, "auc_random": auc_r,
        })
    return cams, pd.DataFrame(rows, columns=[
        "arm", "index", "label", "pred", "target", "correct", "prob_target", "method",
        "energy_share", "area_share", "ratio", "auc_cam", "auc_random"])
