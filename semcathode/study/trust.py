"""When not to trust a prediction: temperature scaling and a familiarity score, fitted and checked.

:func:`calibrate` fits both on a trained model's splits (temperature on the valid split;
the feature bank from the train split; the familiarity threshold at a quantile of the valid
split's scores). :func:`trust_report` checks them on held-out micrographs: expected
calibration error before and after scaling, and how well ``ood_score`` tells micrographs of
a composition the model never saw (e.g. NCM523) from the source test micrographs (AUROC).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["calibrate", "trust_report", "scale_check"]


def calibrate(tm, valid_items: pd.DataFrame, train_items: pd.DataFrame, classes: Sequence[str]) -> dict:
    """Fit the temperature and the familiarity score of a trained model.

    Parameters
    ----------
    tm : TrainedModel
    valid_items : DataFrame
        Micrographs of the valid split (temperature and threshold are chosen here).
    train_items : DataFrame
        Micrographs of the train split (the feature bank).
    classes : sequence of str

    Returns
    -------
    dict
        ``temperature``, ``ood_k``, ``ood_quantile``, ``ood_threshold``, ``bank`` (``(M, D)``
        embeddings), ``n_valid``, ``n_bank``: pass it to
        :func:`~semcathode.models.export_trained` as ``trust``.
    """
    from ..models.predict import fit_temperature, knn_ood_score
    from .evaluation import micrograph_outputs

    cfg = tm.cfg
    if valid_items.empty or train_items.empty:
        raise ValueError("calibration needs micrographs in both the valid and the train split")
    idx = {c: j for j, c in enumerate(classes)}
    tr = micrograph_outputs(tm, train_items, features=True)
    va = micrograph_outputs(tm, valid_items, features=True)
    y = np.array([idx[c] for c in valid_items["label"]])
    k, q = cfg.evaluate.ood_k, cfg.evaluate.familiar_quantile
    scores = knn_ood_score(tr.features, va.features, k)
    return {
        "temperature": fit_temperature(va.log_probs, y),
        "ood_k": int(k),
        "ood_quantile": float(q),
        "ood_threshold": float(np.quantile(scores, q)),
        "bank": tr.features.astype(np.float32),
        "n_valid": int(len(valid_items)),
        "n_bank": int(len(train_items)),
    }


def trust_report(tm, trust: dict, test_items: pd.DataFrame, unfamiliar_items: pd.DataFrame,
                 classes: Sequence[str], unfamiliar_name: str = "NCM523") -> pd.DataFrame:
    """Check calibration and familiarity on held-out micrographs.

    Parameters
    ----------
    tm : TrainedModel
    trust : dict
        From :func:`calibrate`.
    test_items : DataFrame
        Held-out micrographs of the training classes (e.g. the source test split).
    unfamiliar_items : DataFrame
        Micrographs the model should find unfamiliar (e.g. NCM523, a composition it never saw).

    Returns
    -------
    DataFrame
        One row per quantity: ``quantity``, ``value``, ``n``.
    """
    from ..models.predict import auroc, expected_calibration_error, knn_ood_score
    from .evaluation import micrograph_outputs

    idx = {c: j for j, c in enumerate(classes)}
    te = micrograph_outputs(tm, test_items, features=True)
    y = np.array([idx[c] for c in test_items["label"]])
    t = float(trust["temperature"])
    rows = [
        ("temperature (fitted on the valid split)", t, trust.get("n_valid", np.nan)),
        ("ECE on the test split, before scaling", expected_calibration_error(te.probs(1.0), y), len(y)),
        ("ECE on the test split, after scaling", expected_calibration_error(te.probs(t), y), len(y)),
    ]
    s_test = knn_ood_score(trust["bank"], te.features, trust["ood_k"])
    thr = float(trust["ood_threshold"])
    rows.append((f"familiar share of the test split (threshold {thr:.3f})", float((s_test <= thr).mean()), len(y)))
    if len(unfamiliar_items):
        un = micrograph_outputs(tm, unfamiliar_items, features=True)
        s_un = knn_ood_score(trust["bank"], un.features, trust["ood_k"])
        rows.append((f"ood_score AUROC, {unfamiliar_name} vs test split", auroc(s_test, s_un), len(s_un)))
        if "state" in unfamiliar_items:  # a new composition's pristine frames can share the known sessions' conditions
            pristine = (unfamiliar_items["state"] == "pristine").to_numpy()
            if pristine.any():
                rows.append((f"ood_score AUROC, {unfamiliar_name} pristine only vs test split",
                             auroc(s_test, s_un[pristine]), int(pristine.sum())))
        rows.append((f"familiar share of {unfamiliar_name}", float((s_un <= thr).mean()), len(s_un)))
        rows.append((f"mean ood_score, test split / {unfamiliar_name}", f"{s_test.mean():.3f} / {s_un.mean():.3f}",
                     len(s_un)))
    return pd.DataFrame(rows, columns=["quantity", "value", "n"])


def scale_check(model, paths: Sequence[str], factor: int = 2, pixel_size_um: float | None = None) -> pd.DataFrame:
    """Does a micrograph get the same answer when it is taken at a lower magnification?

    Each file is downsampled ``factor`` x (Lanczos) into a temporary folder, its instrument
    sidecar copied unchanged (so the pixel size it implies grows by ``factor``), and both
    files go through :func:`~semcathode.models.predict_paths`.

    Parameters
    ----------
    model : ExportedModel
    paths : sequence of str
        Micrographs (PNG/JPEG/TIFF with a ``<file>.txt`` sidecar, or pixel size given).
    factor : int
    pixel_size_um : float, optional
        As for :func:`~semcathode.models.predict_paths` (for the original files; multiplied
        by ``factor`` for the copies).

    Returns
    -------
    DataFrame
        ``path, pred, pred_downsampled, same, confidence, confidence_downsampled, error``.
    """
    import shutil
    import tempfile
    from pathlib import Path

    from PIL import Image

    from ..models.export import predict_paths

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        copies = []
        for i, p in enumerate(map(Path, paths)):
            dst = Path(tmp) / f"{i:04d}_{p.stem}.png"
            with Image.open(p) as im:
                im.convert("L").resize((max(1, im.width // factor), max(1, im.height // factor)),
                                       Image.Resampling.LANCZOS).save(dst)
            side = p.with_name(p.name + ".txt")
            if side.exists():
                shutil.copy(side, dst.with_name(dst.name + ".txt"))
            copies.append(dst)
        full = predict_paths(model, list(paths), pixel_size_um)
        down = predict_paths(model, copies, pixel_size_um * factor if pixel_size_um else None)
    for (_, a), (_, b) in zip(full.iterrows(), down.iterrows()):
        rows.append({"path": a["path"], "pred": a["pred"],
                     "pred_downsampled": b["pred"], "same": a["pred"] == b["pred"] and not a["error"] and not b["error"],
                     "confidence": a["confidence"], "confidence_downsampled": b["confidence"],
                     "error": a["error"] or b["error"]})
    return pd.DataFrame(rows)
