"""Scores of predictions: temperature calibration and its error, and the kNN familiarity score with its AUROC."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["fit_temperature", "expected_calibration_error", "knn_ood_score", "auroc"]


def fit_temperature(log_probs: np.ndarray, y: Sequence[int]) -> float:
    """Temperature ``T`` minimising the negative log-likelihood of ``softmax(log_probs / T)``.

    Parameters
    ----------
    log_probs : ndarray
        ``(N, C)`` (e.g. a valid split's aggregated log-probabilities).
    y : sequence of int
        True class indices.

    Returns
    -------
    float
        In [0.05, 20]; 1.0 when ``N`` is 0.

    Examples
    --------
    >>> import numpy as np
    >>> lp = np.log([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.1, 0.9]])
    >>> t = fit_temperature(lp, [0, 1, 0, 1])  # over-confident: one in two is right
    >>> t > 1
    True
    """
    from scipy.optimize import minimize_scalar

    lp = np.asarray(log_probs, dtype=np.float64)
    y = np.asarray(y, dtype=int)
    if not len(lp):
        return 1.0

    def nll(log_t: float) -> float:
        z = lp / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def expected_calibration_error(probs: np.ndarray, y: Sequence[int], bins: int = 10) -> float:
    """Expected calibration error: ``sum_b (n_b / N) |accuracy_b - confidence_b|`` over equal-width
    confidence bins.

    Parameters
    ----------
    probs : ndarray
        ``(N, C)`` probabilities.
    y : sequence of int
        True class indices.
    bins : int

    Returns
    -------
    float
        NaN when ``N`` is 0.

    Examples
    --------
    >>> import numpy as np
    >>> round(expected_calibration_error(np.array([[0.8, 0.2], [0.8, 0.2]]), [0, 1]), 3)
    0.3
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y, dtype=int)
    if not len(p):
        return float("nan")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def knn_ood_score(bank: np.ndarray, features: np.ndarray, k: int = 5, exclude_self: bool = False) -> np.ndarray:
    """Mean cosine distance of each feature row to its ``k`` nearest rows of ``bank``.

    Both are L2-normalised first. Higher = less like the training micrographs.

    Parameters
    ----------
    bank : ndarray
        ``(M, D)`` embeddings of the training micrographs.
    features : ndarray
        ``(N, D)`` embeddings to score.
    k : int
    exclude_self : bool
        Drop the nearest neighbour (scoring the bank against itself).

    Returns
    -------
    ndarray
        ``(N,)`` scores in [0, 2].
    """
    b = np.asarray(bank, dtype=np.float64)
    f = np.asarray(features, dtype=np.float64)
    if not len(b):
        raise ValueError("empty feature bank: no training micrographs to compare with")
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    d = 1.0 - f @ b.T
    d.sort(axis=1)
    start = 1 if exclude_self else 0
    kk = max(1, min(int(k), d.shape[1] - start))
    return d[:, start : start + kk].mean(axis=1)


def auroc(scores_negative: Sequence[float], scores_positive: Sequence[float]) -> float:
    """Area under the ROC curve for telling positives (higher scores expected) from negatives.

    Parameters
    ----------
    scores_negative, scores_positive : sequence of float

    Returns
    -------
    float
        NaN when either side is empty.

    Examples
    --------
    >>> auroc([0.1, 0.2], [0.3, 0.15])
    0.75
    """
    from sklearn.metrics import roc_auc_score

    neg, pos = np.asarray(scores_negative, float), np.asarray(scores_positive, float)
    if not len(neg) or not len(pos):
        return float("nan")
    return float(roc_auc_score(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos]))
