"""All report prose: each note says what its small input table holds."""

import pandas as pd
import pytest

from semcathode.config._run import load_config
from semcathode.report._notes import (
    budget_note,
    cam_note,
    curve_note,
    duplicate_note,
    probe_verdict,
    provenance_note,
    representation_note,
    target_domain_note,
    trust_note,
)


def test_provenance_note():
    note = provenance_note({"backbone": "efficientnet_lite0", "timm_name": "tf_efficientnet_lite0",
                            "origin": "packaged", "sha256": "ab" * 32, "note": "fell back"})
    assert "tf_efficientnet_lite0" in note and "fell back" in note and "abababab" in note
    assert "sha256" not in provenance_note({"backbone": "b", "timm_name": "t", "origin": "o"})


def test_representation_note_scale_and_resize():
    cfg = load_config("demo")
    note = representation_note(cfg.preprocess, cfg.model, cfg.evaluate.aggregate)
    assert f"{cfg.preprocess.scale_um:g} µm/px" in note and f"{cfg.preprocess.size} x {cfg.preprocess.size} px" in note
    assert "log-probabilities" in note
    assert "cached trunk output" in note and "only a linear classifier is trained" in note  # the demo's linear head
    c = load_config("demo", overrides={"model.trunk": 0, "model.head": "conv"})
    pixels = representation_note(c.preprocess, c.model)
    assert f"{cfg.preprocess.crops_per_image} random crop(s)" in pixels and "trained" not in pixels
    c = load_config("demo", overrides={"model.head": "conv", "model.trunk": 5})
    top = representation_note(c.preprocess, c.model)
    assert "block stages 0-4 keep their ImageNet weights" in top and "block stages 5 onwards" in top
    c = load_config("demo", overrides={"preprocess.mode": "resize"})
    resized = representation_note(c.preprocess, c.model)
    assert resized.startswith("Input: the whole bar-free micrograph squeezed to") and "One prediction" in resized


def test_budget_note_lists_steps_per_arm():
    cfg = load_config("smoke")
    results = pd.DataFrame({"arm": ["pre_ft", "pre_ft", "ft_only"], "steps": [10, 20, 40]})
    note = budget_note(cfg.protocol, results)
    assert note.startswith("Fair-budget rule") and "pre_ft 15, ft_only 40." in note
    assert "Optimiser steps" not in budget_note(cfg.protocol, results.drop(columns="steps"))
    off = load_config("smoke", overrides={"protocol.fair_budget": False})
    assert "Fair-budget rule off" in budget_note(off.protocol, results.head(0))


def test_cam_note_compares_with_random_order():
    quant = pd.DataFrame({"arm": ["pre_ft", "pre_ft", "ft_only"], "label": ["(all)", "NCM333", "(all)"],
                          "energy_share": [0.6, 0.9, 0.3], "area_share": [0.25, 0.2, 0.3], "ratio": [2.4, 4.5, 1.0],
                          "auc_cam": [0.2, 0.1, 0.5], "auc_random": [0.4, 0.4, 0.4]})
    note = cam_note(quant)
    assert "pre_ft: 60% of the CAM energy" in note and "cover 25%" in note and "ratio 2.40" in note
    assert "faster than random: the attended pixels matter" in note and "ft_only" in note and "not faster than random" in note
    assert "90%" not in note  # per-class rows are left to the table


def test_target_domain_note():
    assert "SIMULATED INSTRUMENT SHIFT" in target_domain_note(load_config("smoke").target)


def test_duplicate_note_warns_about_crossing_pairs():
    assert duplicate_note(pd.DataFrame(), []) == "No exact or near-duplicate images were found."
    dups = pd.DataFrame({"kind": ["exact", "near", "near"], "group_a": [1, 2, 3], "group_b": [1, 2, 4]})
    note = duplicate_note(dups, ["a.png ~ b.png"])
    assert note.startswith("1 exact and 2 near-duplicate pairs") and "2 of them lie inside one frame-block group" in note
    assert "**Warning:** 1 pair(s) cross" in note


def test_trust_note_reads_ece_and_auroc():
    report = pd.DataFrame({"quantity": ["ECE (before scaling)", "ECE (after scaling)", "AUROC familiar vs NCM523"],
                           "value": [0.12, 0.04, 0.95]})
    note = trust_note(report, k=5)
    assert "from 0.120 to 0.040" in note and "AUROC of 0.950" in note and "separates them well" in note
    assert "AUROC" not in trust_note(report.head(2))
    both = pd.concat([report, pd.DataFrame({"quantity": ["ood_score AUROC, NCM523 pristine only vs test split"],
                                            "value": [0.62]})], ignore_index=True)
    note = trust_note(both)
    assert "AUROC of 0.950" in note and "pristine micrographs alone" in note and "AUROC 0.620" in note
    weak = trust_note(report.assign(value=[0.1, 0.1, 0.6]))
    assert "does not separate them reliably" in weak


@pytest.mark.parametrize("lo, hi, verdict", [(0.80, 0.90, "beats"), (0.50, 0.60, "does **not** beat"),
                                             (0.60, 0.80, "is not distinguishable from")])
def test_probe_verdict(lo, hi, verdict):
    summary = pd.DataFrame({"macro_f1_mean": [0.7], "macro_f1_lo": [lo], "macro_f1_hi": [hi]})
    probe = pd.DataFrame({"domain": ["source", "target"], "split": ["test", "test"], "macro_f1": [0.7, 0.1]})
    note = probe_verdict(summary, probe)
    assert f"[{lo:.3f}, {hi:.3f}]" in note and "same split: 0.700" in note and f"model {verdict} the linear" in note


def test_curve_note_says_where_pretraining_helps():
    assert curve_note(pd.DataFrame()) == "No learning curve was run."
    curve = pd.DataFrame({"n_per_class": [5, 5, 50, 50], "arm": ["pre_ft", "ft_only"] * 2,
                          "macro_f1": [0.6, 0.4, 0.8, 0.79]})
    note = curve_note(curve)
    assert "n=5: ft_only 0.40, pre_ft 0.60" in note and "at n = [5] images per class" in note
    flat = curve_note(curve.assign(macro_f1=0.5))
    assert "nowhere ahead" in flat


def test_trust_note_names_the_layers_and_reads_the_tail_rows():
    rows = [("ECE on the test split, before scaling", 0.1), ("ECE on the test split, after scaling", 0.2),
            ("familiarity layers (chosen on the valid split against known-unfamiliar micrographs)", "blocks.4 + final"),
            ("ood_score AUROC, NCM523 vs test split", 0.96), ("ood_score AUROC, NCM523 pristine only vs test split", 0.88),
            ("ood_score AUROC, NCM523 vs session tail", 0.86),
            ("ood_score AUROC, NCM523 pristine only vs session tail", 0.58)]
    note = trust_note(pd.DataFrame(rows, columns=["quantity", "value"]))
    assert "layers blocks.4 + final" in note and "chosen against NCM523's train split" in note
    assert "AUROC of 0.960 against the test micrographs" in note and "Against the session tail: 0.860." in note
    assert "AUROC 0.880 (0.580 against the tail)." in note
