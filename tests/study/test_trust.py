"""Calibration and familiarity of a trained model (study.trust)."""

from __future__ import annotations

import pytest

from semcathode.study.trust import calibrate, trust_report

pytestmark = pytest.mark.usefixtures("one_thread")


def test_trust_report_gives_the_pristine_only_auroc_beside_the_overall_one(study_setup, study_run):
    cfg, items, _ = study_setup
    tm = study_run["models"][("stage1", 0)]
    classes = sorted(items["label"].unique())
    src = items[items["domain"] == "source"]
    trust = calibrate(tm, src[src["split"] == "valid"], src[src["split"] == "train"], classes)
    test = src[src["split"] == "test"]
    unfamiliar = items[items["domain"] == "target"]  # stands in for a new composition: its states are known
    table = trust_report(tm, trust, test, unfamiliar, classes)
    rows = dict(zip(table["quantity"], table["n"]))
    overall = next(q for q in rows if "AUROC" in q and "pristine" not in q)
    pristine = next(q for q in rows if "pristine only" in q)
    assert rows[overall] == len(unfamiliar)
    assert rows[pristine] == int((unfamiliar["state"] == "pristine").sum()) > 0
    without_state = trust_report(tm, trust, test, unfamiliar.drop(columns="state"), classes)
    assert not without_state["quantity"].str.contains("pristine only").any()
