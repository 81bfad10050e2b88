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

__all__ = ["calibrate", "ood_scores", "trust_report", "fit_trust", "scale_check"]


def calibrate(tm, valid_items: pd.DataFrame, train_items: pd.DataFrame, classes: Sequence[str],
              select_items: pd.DataFrame | None = None) -> dict:
    """Fit the temperature and the familiarity score of a trained model.

    With ``evaluate.familiarity_layers`` empty the score is the kNN cosine distance of a micrograph's
    final (pre-logit) embedding to the train split's. With candidate layers (``blocks.4``,
    ``blocks.5``, ``final``, ...) it is :func:`semcathode.models._familiarity.multi_layer_score`: per layer a kNN
    score on standardised features, divided by its median on the valid split, summed over the layer
    set that best separates the valid split from ``select_items`` (micrographs known to be
    unfamiliar, e.g. NCM523's train split; :func:`semcathode.models._familiarity.select_layers`). Report it on
    other micrographs than ``select_items``.

    Parameters
    ----------
    tm : TrainedModel
    valid_items : DataFrame
        Micrographs of the valid split (temperature, layer scales and threshold are chosen here).
    train_items : DataFrame
        Micrographs of the train split (the feature bank).
    classes : sequence of str
    select_items : DataFrame, optional
        Known-unfamiliar micrographs on which the layer set is chosen (without them, or with one
        candidate, every candidate layer is used).

    Returns
    -------
    dict
        ``temperature``, ``ood_k``, ``ood_quantile``, ``ood_threshold``, ``n_valid``, ``n_bank`` and
        ``layer_selection`` (AUROC of every layer set tried; empty without a choice) and
        either ``bank`` (``(M, D)`` final embeddings) or ``banks`` (layer -> ``(M, D_layer)``),
        ``layers`` (the chosen set) and ``scales``: pass it to :func:`~semcathode.study.export_trained` as ``trust``.
    """
    from ..models._familiarity import layer_scales, multi_layer_score, select_layers
    from ..models._scores import fit_temperature, knn_ood_score
    from ._evaluation import micrograph_outputs

    settings = tm.settings
    if valid_items.empty or train_items.empty:
        raise ValueError("calibration needs micrographs in both the valid and the train split")
    idx = {c: j for j, c in enumerate(classes)}
    candidates = list(settings.evaluate.familiarity_layers)
    tr = micrograph_outputs(tm, train_items, features=True, layers=candidates)
    va = micrograph_outputs(tm, valid_items, features=True, layers=candidates)
    y = np.array([idx[c] for c in valid_items["label"]])
    k, q = settings.evaluate.ood_k, settings.evaluate.familiar_quantile
    out = {"temperature": fit_temperature(va.log_probs, y), "ood_k": int(k), "ood_quantile": float(q),
           "n_valid": int(len(valid_items)), "n_bank": int(len(train_items))}
    if not candidates:
        scores = knn_ood_score(tr.features, va.features, k)
        return {**out, "ood_threshold": float(np.quantile(scores, q)), "bank": tr.features.astype(np.float32),
                "layer_selection": pd.DataFrame(columns=["layers", "n_layers", "auroc"])}
    banks = {name: tr.layer_features[name] for name in candidates}  # in the configured order
    valid = {name: va.layer_features[name] for name in candidates}
    scales = layer_scales(banks, valid, k)
    layers, table = tuple(candidates), pd.DataFrame()
    if select_items is not None and len(select_items) and len(candidates) > 1:
        sel = micrograph_outputs(tm, select_items, layers=candidates).layer_features
        layers, table = select_layers(banks, valid, sel, scales, k)
        table = table.assign(n_familiar=len(valid_items), n_unfamiliar=len(select_items))
    scores = multi_layer_score(banks, valid, layers, scales, k)
    return {**out, "ood_threshold": float(np.quantile(scores, q)), "layers": list(layers),
            "scales": {name: float(scales[name]) for name in layers},
            "banks": {name: banks[name].astype(np.float32) for name in layers},
            "layer_selection": table}


def ood_scores(tm, trust: dict, items: pd.DataFrame) -> np.ndarray:
    """The familiarity score (higher = less familiar) of micrographs under a :func:`calibrate` result.

    Parameters
    ----------
    tm : TrainedModel
    trust : dict
        From :func:`calibrate` (final-layer ``bank`` or multi-layer ``banks``).
    items : DataFrame

    Returns
    -------
    ndarray
        ``(N,)``, one per row of ``items``.
    """
    from ..models._familiarity import multi_layer_score
    from ..models._scores import knn_ood_score
    from ._evaluation import micrograph_outputs

    if items.empty:
        return np.zeros(0)
    if "banks" in trust:
        layers = list(trust["layers"])
        mo = micrograph_outputs(tm, items, layers=layers)
        return multi_layer_score(trust["banks"], mo.layer_features, layers, trust["scales"], trust["ood_k"])
    return knn_ood_score(trust["bank"], micrograph_outputs(tm, items, features=True).features, trust["ood_k"])


def trust_report(tm, trust: dict, test_items: pd.DataFrame, unfamiliar_items: pd.DataFrame,
                 classes: Sequence[str], unfamiliar_name: str = "NCM523",
                 tail_items: pd.DataFrame | None = None) -> pd.DataFrame:
    """Check calibration and familiarity on held-out micrographs.

    Parameters
    ----------
    tm : TrainedModel
    trust : dict
        From :func:`calibrate`.
    test_items : DataFrame
        Held-out micrographs of the training classes (e.g. the source test split).
    unfamiliar_items : DataFrame
        Micrographs the model should find unfamiliar (e.g. NCM523, a composition it never saw), none
        of them among those the familiarity layers were chosen on.
    unfamiliar_name : str
    tail_items : DataFrame, optional
        The session tail: the unfamiliar micrographs are also scored against it.

    Returns
    -------
    DataFrame
        One row per quantity: ``quantity``, ``value``, ``n``.
    """
    from ..models._scores import auroc, expected_calibration_error
    from ._evaluation import micrograph_outputs

    idx = {c: j for j, c in enumerate(classes)}
    te = micrograph_outputs(tm, test_items)
    y = np.array([idx[c] for c in test_items["label"]])
    t = float(trust["temperature"])
    rows = [
        ("temperature (fitted on the valid split)", t, trust.get("n_valid", np.nan)),
        ("ECE on the test split, before scaling", expected_calibration_error(te.probs(1.0), y), len(y)),
        ("ECE on the test split, after scaling", expected_calibration_error(te.probs(t), y), len(y)),
    ]
    if "banks" in trust:
        rows.append(("familiarity layers (chosen on the valid split against known-unfamiliar micrographs)",
                     " + ".join(trust["layers"]), trust.get("n_valid", np.nan)))
    s_test = ood_scores(tm, trust, test_items)
    thr = float(trust["ood_threshold"])
    rows.append((f"familiar share of the test split (threshold {thr:.3f})", float((s_test <= thr).mean()), len(y)))
    if len(unfamiliar_items):
        s_un = ood_scores(tm, trust, unfamiliar_items)
        pristine = ((unfamiliar_items["state"] == "pristine").to_numpy() if "state" in unfamiliar_items
                    else np.zeros(len(s_un), bool))  # a new composition's pristine frames can share the known sessions' conditions
        others = [("test split", s_test)]
        if tail_items is not None and len(tail_items):
            others.append(("session tail", ood_scores(tm, trust, tail_items)))
        for name, neg in others:
            rows.append((f"ood_score AUROC, {unfamiliar_name} vs {name}", auroc(neg, s_un), len(s_un)))
            if pristine.any():
                rows.append((f"ood_score AUROC, {unfamiliar_name} pristine only vs {name}",
                             auroc(neg, s_un[pristine]), int(pristine.sum())))
        rows.append((f"familiar share of {unfamiliar_name}", float((s_un <= thr).mean()), len(s_un)))
        rows.append((f"mean ood_score, test split / {unfamiliar_name}", f"{s_test.mean():.3f} / {s_un.mean():.3f}",
                     len(s_un)))
    return pd.DataFrame(rows, columns=["quantity", "value", "n"])


def fit_trust(tm, study, unfamiliar_name: str = "NCM523") -> tuple[dict, pd.DataFrame]:
    """:func:`calibrate` and :func:`trust_report` on a study's splits, the way the report uses them.

    Temperature, layer scales and threshold come from the source valid split (the pre-tail), the
    feature bank from the source train split. With ``evaluate.familiarity_layers`` the layer set is
    chosen against the new composition's train split and reported on its test split only (never on
    the micrographs it was chosen on); with the final embedding alone every new micrograph is reported.

    Parameters
    ----------
    tm : TrainedModel
    study : Study
        Gives ``rows(domain, split)``, ``new_items`` and ``classes``.
    unfamiliar_name : str

    Returns
    -------
    trust : dict
        From :func:`calibrate` (pass it to :func:`~semcathode.study.export_trained`).
    table : DataFrame
        From :func:`trust_report`, with the session tail as a second familiar split.
    """
    new = study.new_items
    select, report = None, new
    if tm.settings.evaluate.familiarity_layers and len(new) and "split" in new:
        select, report = new[new["split"] == "train"], new[new["split"] != "train"]
    trust = calibrate(tm, study.rows("source", "valid"), study.rows("source", "train"), study.classes,
                      select_items=select)
    table = trust_report(tm, trust, study.rows("source", "test"), report, study.classes, unfamiliar_name,
                         tail_items=study.rows("source", "tail"))
    return trust, table


def scale_check(model, paths: Sequence[str], factor: int = 2, pixel_size_um: float | None = None) -> pd.DataFrame:
    """Does a micrograph get the same answer when it is taken at a lower magnification?

    Each file is downsampled ``factor`` x (Lanczos) into a temporary folder, its instrument
    sidecar copied unchanged (so the pixel size it implies grows by ``factor``), and both
    files go through :func:`~semcathode.models._export.predict_paths`.

    Parameters
    ----------
    model : ExportedModel
    paths : sequence of str
        Micrographs (PNG/JPEG/TIFF with a ``<file>.txt`` sidecar, or pixel size given).
    factor : int
    pixel_size_um : float, optional
        As for :func:`~semcathode.models._export.predict_paths` (for the original files; multiplied
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

    from ..models._export import predict_paths

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
