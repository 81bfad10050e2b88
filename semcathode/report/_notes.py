"""All report prose: the sentences and paragraphs the notebooks print about their results.

Every function takes plain values (tables, configs, dicts) computed elsewhere in the flow and
returns Markdown text; nothing here computes a result.
"""

from __future__ import annotations

import pandas as pd

from ..config._sections import DataConfig, ModelConfig, PreprocessConfig, ProtocolConfig, TargetConfig

__all__ = [
    "split_note",
    "representation_note", "training_note", "budget_note", "provenance_note", "cam_note", "target_domain_note", "duplicate_note",
    "trust_note", "probe_verdict", "curve_note",
]


def representation_note(preprocess: PreprocessConfig, model: ModelConfig, aggregate: str = "mean_log_prob") -> str:
    """What the network sees, in words (scale, field of view, crops, tile grid, aggregation).

    Parameters
    ----------
    preprocess : PreprocessConfig
        How micrographs become network inputs (``cfg.preprocess``).
    model : ModelConfig
        The network (``cfg.model``): with a trunk, :func:`training_note` is appended.
    aggregate : str
        How tiles become one prediction (``cfg.evaluate.aggregate``).

    Returns
    -------
    str
        One paragraph of markdown.

    Examples
    --------
    >>> from semcathode.config._run import load_config
    >>> cfg = load_config("demo")
    >>> representation_note(cfg.preprocess, cfg.model)[:99]
    'Input: every bar-free micrograph is resampled once from its instrument pixel size to 0.2625 µm/px; '
    >>> "(59 µm across)" in representation_note(cfg.preprocess, cfg.model)
    True
    """
    p = preprocess
    if p.mode == "resize":
        return (f"Input: the whole bar-free micrograph squeezed to {p.size} x {p.size} px (the paper's input; its "
                "physical scale depends on the frame). One prediction per micrograph.")
    scale = (f"is resampled once from its instrument pixel size to {p.scale_um:g} µm/px" if p.scale_um
             else "is kept at its native pixel size")
    fov = f" ({p.size * p.scale_um:.0f} µm across)" if p.scale_um else ""
    agg = {"mean_log_prob": "the mean of their log-probabilities", "mean_prob": "the mean of their probabilities"}
    train = (f"Training draws {p.crops_per_image} random crop(s) per micrograph per epoch (with flips, rotations, "
             f"zoom and lighting)" if not model.trunk else "Training reads the cached trunk output of the tiles")
    text = (f"Input: every bar-free micrograph {scale}; the "
            f"network sees {p.size} x {p.size} px fields of view{fov}. {train}; evaluation covers the "
            f"whole frame with a tile grid (stride {p.tile_stride:g} of a tile) and aggregates the tiles by "
            f"{agg.get(aggregate, aggregate)} into one prediction per micrograph.")
    return text + (" " + training_note(model) if model.trunk else "")


def training_note(model: ModelConfig) -> str:
    """What is trained and what stays at its ImageNet weights, in plain words.

    Parameters
    ----------
    model : ModelConfig
        ``cfg.model`` (``trunk``, ``head``, ``head_layer``, ``trunk_views``, ``trunk_dtype``, ``tiles_per_epoch``).

    Returns
    -------
    str

    Examples
    --------
    >>> from semcathode.config._run import load_config
    >>> training_note(load_config("smoke").model)
    "Every layer of the network is trained from pixels (the paper's full fine-tuning)."
    >>> cfg = load_config("smoke", overrides={"model.trunk": 6, "model.head": "linear"})
    >>> "only a linear classifier" in training_note(cfg.model)
    True
    """
    m = model
    if not m.trunk:
        return "Every layer of the network is trained from pixels (the paper's full fine-tuning)."
    from ..models._trunk import resolve_trunk_dtype

    views = " and ".join({"full": "the micrograph as it is", "half": "a half-resolution copy"}.get(v, v)
                         for v in m.trunk_views)
    frozen = (f"The stem and block stages 0-{m.trunk - 1} keep their ImageNet weights: their output for every tile "
              f"is computed once ({resolve_trunk_dtype(m.trunk_dtype)}) and cached, for training micrographs from {views}.")
    if m.head == "linear":
        return (f"{frozen} The network ends at {m.head_layer} (the later blocks and the head convolution are "
                f"removed); each tile's output there is averaged over space, standardised per channel and read "
                f"by a linear classifier, and only a linear classifier is trained: a trained linear probe that "
                f"is still one network from pixels to classes. Stage 2 re-estimates the standardisation on the "
                f"target images it trains on (as BatchNorm does in full fine-tuning) and fine-tunes that "
                f"classifier from the source model's (Pre+FT) or fits a new one on the target alone (FT-only).")
    return (f"{frozen} Only the rest is trained (block stages {m.trunk} onwards, the head convolution and the "
            f"classifier), drawing {m.tiles_per_epoch} cached tiles per micrograph per epoch, flipped and turned "
            f"on the maps themselves.")


def budget_note(protocol: ProtocolConfig, results: pd.DataFrame) -> str:
    """The fair-budget rule and the optimiser steps each arm actually made (mean over seeds).

    Parameters
    ----------
    protocol : ProtocolConfig
        ``cfg.protocol`` (``fair_budget``, ``fair_max_epochs``).
    results : pandas.DataFrame
        One row per arm and seed, with ``arm`` and ``steps`` columns (without ``steps``: the rule only).

    Returns
    -------
    str
        One paragraph of markdown.
    """
    rule = ("Fair-budget rule: arms that do not start from the stage-1 model (FT-only, Scratch+FT) train at least "
            "as many optimiser steps as Pre+FT spends in both stages together (its stage-1 steps plus its stage-2 "
            f"steps on the same target images), capped at {protocol.fair_max_epochs} epochs."
            if protocol.fair_budget else
            "Fair-budget rule off (protocol.fair_budget = false): every arm trains the stage-2 schedule only.")
    if "steps" not in results or results.empty:
        return rule
    steps = results.groupby("arm", sort=False)["steps"].mean()
    return rule + " Optimiser steps per arm (stage 1 + stage 2, mean over seeds): " + ", ".join(
        f"{a} {v:.0f}" for a, v in steps.items()) + "."


def provenance_note(weights_info: dict) -> str:
    """Backbone and weights provenance in one sentence for the report.

    Parameters
    ----------
    weights_info : dict
        ``backbone``, ``timm_name``, ``origin`` and optionally ``sha256`` and ``note``.

    Returns
    -------
    str
        One sentence of markdown (plus the note, if any).

    Examples
    --------
    >>> provenance_note({"backbone": "efficientnet_lite0", "timm_name": "tf_efficientnet_lite0", "origin": "packaged"})
    'Backbone `efficientnet_lite0` (timm `tf_efficientnet_lite0`), weights: packaged.'
    """
    w = weights_info
    text = (f"Backbone `{w.get('backbone')}` (timm `{w.get('timm_name')}`), weights: {w.get('origin')}"
            f"{', sha256 ' + str(w.get('sha256'))[:16] + '…' if w.get('sha256') else ''}.")
    if w.get("note"):
        text += f" Note: {w['note']}"
    return text


def cam_note(quant: pd.DataFrame) -> str:
    """What the quantitative CAM table shows, in words.

    Parameters
    ----------
    quant : pandas.DataFrame
        The quantitative CAM table: per arm (and ``label``, ``"(all)"`` for all classes)
        ``energy_share``, ``area_share``, ``ratio``, ``auc_cam`` and ``auc_random``.

    Returns
    -------
    str
        One sentence per arm.
    """
    overall = quant[quant["label"] == "(all)"] if "label" in quant else quant
    parts = []
    for r in overall.itertuples():
        parts.append(
            f"{r.arm}: {r.energy_share:.0%} of the CAM energy lies on particle boundaries and crack-like lines that "
            f"cover {r.area_share:.0%} of the image (ratio {r.ratio:.2f}; 1 = uniform map); deleting the most-attended "
            f"pixels first lowers the class score with AUC {r.auc_cam:.2f} against {r.auc_random:.2f} for random order "
            f"({'faster than random: the attended pixels matter' if r.auc_cam < r.auc_random else 'not faster than random'})."
        )
    return " ".join(parts)


def target_domain_note(target: TargetConfig) -> str:
    """What the target domain of this configuration is, in words (printed in every output).

    Parameters
    ----------
    target : TargetConfig
        ``cfg.target`` (``kind``, ``domain``).

    Returns
    -------
    str
        One paragraph of markdown.
    """
    from ..data._splits import SIMULATED_SHIFT_NOTE

    if target.kind == "simulated_shift":
        from ..data._shift import simulated_instrument_shift

        return SIMULATED_SHIFT_NOTE + f" Shift parameters: {simulated_instrument_shift().to_dict()}."
    return f"Target domain: rows whose `domain` column is {target.domain!r} (real data given by the user)."


def split_note(data: DataConfig) -> str:
    """How the micrographs are split, in words (per session by frame; frame blocks inside).

    Parameters
    ----------
    data : DataConfig
        ``cfg.data`` (``tail_frac``, ``pretail_frac``, ``block_size``).

    Returns
    -------
    str
        One paragraph of markdown.

    Examples
    --------
    >>> from semcathode.config import load_config
    >>> "pre-tail" in split_note(load_config("demo").data)
    True
    """
    d = data
    text = (f"Per imaging session, ordered by frame: the last {d.tail_frac:.0%} of the frames are the **session tail** "
            "(a test of extrapolation along the stage, never trained on)")
    if d.pretail_frac:
        text += (f", and the {d.pretail_frac:.0%} just before them are the **pre-tail**, the valid split: every setting "
                 "(temperature, familiarity threshold, the representation and the schedule) is chosen there, on "
                 "frames shaped like the tail")
    text += (f". The other frames are split in blocks of {d.block_size} consecutive frames into train and the "
             "**frame-block test** (blocks inside each session)")
    if not d.pretail_frac:
        text += " and a frame-block valid split"
    return text + "; a block never straddles two splits."


def duplicate_note(dups: pd.DataFrame, warnings: list[str]) -> str:
    """A sentence on the duplicates found and whether they cross splits or domains.

    Parameters
    ----------
    dups : pandas.DataFrame
        Duplicate pairs with ``kind`` (``exact``/``near``) and optionally ``group_a``/``group_b``.
    warnings : list of str
        The pairs that cross a split or domain boundary.

    Returns
    -------
    str
        One paragraph of markdown.

    Examples
    --------
    >>> import pandas as pd
    >>> duplicate_note(pd.DataFrame({"kind": ["exact", "near"], "group_a": [1, 2], "group_b": [1, 3]}), [])
    '1 exact and 1 near-duplicate pairs (perceptual hash). 1 of them lie inside one frame-block group, \
as expected for neighbouring stage positions. None crosses a split or domain boundary.'
    """
    if dups.empty:
        return "No exact or near-duplicate images were found."
    n_exact = int((dups["kind"] == "exact").sum())
    n_near = int((dups["kind"] == "near").sum())
    same_group = int((dups["group_a"] == dups["group_b"]).sum()) if "group_a" in dups else 0
    text = (f"{n_exact} exact and {n_near} near-duplicate pairs (perceptual hash). "
            f"{same_group} of them lie inside one frame-block group, as expected for neighbouring stage positions. ")
    if warnings:
        text += (f"**Warning:** {len(warnings)} pair(s) cross a split or domain boundary: those images are "
                 f"nearly the same field of view on both sides, so scores on the held-out side are optimistic "
                 f"for them. A larger `data.block_size` keeps more neighbours together.")
    else:
        text += "None crosses a split or domain boundary."
    return text


def trust_note(report: pd.DataFrame, k: int = 5, unfamiliar_name: str = "NCM523") -> str:
    """The trust report in one paragraph for the report.

    Parameters
    ----------
    report : pandas.DataFrame
        ``quantity`` and ``value`` columns: ECE before/after temperature scaling and the
        familiarity AUROC (optional).
    k : int
        Number of nearest training micrographs of the familiarity score.
    unfamiliar_name : str
        The composition the model never saw.

    Returns
    -------
    str
        One paragraph of markdown.
    """
    v = dict(zip(report["quantity"], report["value"]))
    ece0 = next((x for q, x in v.items() if q.startswith("ECE") and "before" in q), float("nan"))
    ece1 = next((x for q, x in v.items() if q.startswith("ECE") and "after" in q), float("nan"))
    au = next((x for q, x in v.items() if "AUROC" in q and "pristine" not in q), None)
    au_pristine = next((x for q, x in v.items() if "AUROC" in q and "pristine" in q), None)
    text = (f"Temperature scaling (fitted on the valid split) moves the expected calibration error on the test "
            f"split from {ece0:.3f} to {ece1:.3f}.")
    layers = next((x for q, x in v.items() if q.startswith("familiarity layers")), None)
    au_tail = next((x for q, x in v.items() if "AUROC" in q and "pristine" not in q and "tail" in q), None)
    if au is not None:
        verdict = "separates them well" if au >= 0.9 else "does not separate them reliably"
        if layers:
            score = (f"the mean cosine distance to the {k} nearest training micrographs at the layers {layers}, "
                     f"each on the scale of its median on the valid split and summed; the layers were chosen "
                     f"against {unfamiliar_name}'s train split, and it is scored here on its test split")
        else:
            score = f"mean cosine distance to the {k} nearest training micrographs in feature space"
        text += (f" The familiarity score ({score}) gives {unfamiliar_name} micrographs, a composition the model "
                 f"never saw, an AUROC of {au:.3f} against the test micrographs: it {verdict}.")
        if au_tail is not None:
            text += f" Against the session tail: {au_tail:.3f}."
        if au_pristine is not None:
            pr_tail = next((x for q, x in v.items() if "AUROC" in q and "pristine" in q and "tail" in q), None)
            text += (f" Its pristine micrographs alone, imaged under the same session conditions as the known "
                     f"pristine classes: AUROC {au_pristine:.3f}"
                     + (f" ({pr_tail:.3f} against the tail)." if pr_tail is not None else "."))
    return text


def probe_verdict(stage1_summary: pd.DataFrame, probe: pd.DataFrame) -> str:
    """Does fine-tuning beat the linear probe on the same split? A sentence for the report.

    Parameters
    ----------
    stage1_summary : pandas.DataFrame
        Summary of the stage-1 runs: ``macro_f1_mean``, ``macro_f1_lo`` and ``macro_f1_hi``.
    probe : pandas.DataFrame
        The linear probe's ``macro_f1`` per ``domain`` and ``split`` (the source test row is used).

    Returns
    -------
    str
        One paragraph of markdown.
    """
    cnn = float(stage1_summary["macro_f1_mean"].iloc[0])
    lo, hi = float(stage1_summary["macro_f1_lo"].iloc[0]), float(stage1_summary["macro_f1_hi"].iloc[0])
    lp = float(probe.loc[(probe["domain"] == "source") & (probe["split"] == "test"), "macro_f1"].iloc[0])
    if lo > lp:
        verdict = "beats"
    elif hi < lp:
        verdict = "does **not** beat"
    else:
        verdict = "is not distinguishable from"
    return (f"Stage-1 fine-tuned CNN: source-test macro-F1 {cnn:.3f} (95% CI over seeds [{lo:.3f}, {hi:.3f}]); "
            f"linear probe on frozen ImageNet features, same split: {lp:.3f}. The fine-tuned model {verdict} "
            f"the linear probe on this split.")


def curve_note(curve: pd.DataFrame) -> str:
    """Read a learning curve in words: where Pre+FT helps and where the arms meet.

    Parameters
    ----------
    curve : pandas.DataFrame
        One row per ``n_per_class``, ``arm`` and seed with ``macro_f1``.

    Returns
    -------
    str
        One paragraph of markdown.
    """
    if curve.empty:
        return "No learning curve was run."
    m = curve.groupby(["n_per_class", "arm"])["macro_f1"].mean().unstack()
    parts = []
    for n, r in m.iterrows():
        parts.append(f"n={n}: " + ", ".join(f"{a} {v:.2f}" for a, v in r.items()))
    text = "Mean target macro-F1 over seeds — " + "; ".join(parts) + "."
    pre = next((a for a in ("pre_ft_oversample", "pre_ft") if a in m.columns), None)
    if pre and "ft_only" in m.columns:
        gap = (m[pre] - m["ft_only"])
        helps = [int(n) for n, g in gap.items() if g > 0.05]
        text += (f" Pre+FT is ahead of FT-only by more than 0.05 at n = {helps} images per class." if helps else
                 " Pre+FT is nowhere ahead of FT-only by more than 0.05.")
    return text
