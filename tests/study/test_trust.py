"""Calibration and familiarity of a trained model (study.trust)."""

from __future__ import annotations

import pytest

from semcathode.study._trust import calibrate, trust_report

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


def test_fit_trust_chooses_layers_on_the_new_train_split_and_reports_on_its_test_split(study_setup, study_run):
    import copy
    from types import SimpleNamespace

    from semcathode.study._trust import fit_trust

    cfg, items, _ = study_setup
    tm = copy.copy(study_run["models"][("stage1", 0)])
    tm.settings = tm.settings.replace(evaluate={"familiarity_layers": ["blocks.4", "final"]})
    classes = sorted(items["label"].unique())
    src = items[items["domain"] == "source"]
    new = items[items["domain"] == "target"].copy()  # stands in for a new composition
    new["split"] = ["train" if i % 2 else "test" for i in range(len(new))]
    study = SimpleNamespace(classes=classes, new_items=new,
                            rows=lambda d, s: items[(items["domain"] == d) & (items["split"] == s)])
    seen = []
    real = __import__("semcathode.study._trust", fromlist=["calibrate"]).calibrate

    def spy(tm_, valid, train, classes_, select_items=None):
        seen.append(select_items)
        return real(tm_, valid, train, classes_, select_items=select_items)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("semcathode.study._trust.calibrate", spy)
        trust, table = fit_trust(tm, study)
    assert seen[0]["image_id"].tolist() == new.loc[new["split"] == "train", "image_id"].tolist()
    assert len(trust["layer_selection"]) == 3 and trust["layers"]
    rows = dict(zip(table["quantity"], table["n"]))
    n_test = int((new["split"] == "test").sum())
    auroc_rows = [q for q in rows if "AUROC" in q and "pristine" not in q]
    assert any("test split" in q for q in auroc_rows)
    assert any("session tail" in q for q in auroc_rows) == (not src[src["split"] == "tail"].empty)
    assert all(rows[q] == n_test for q in auroc_rows)  # reported on the micrographs it was not chosen on
    assert any(q.startswith("familiarity layers") for q in rows)
