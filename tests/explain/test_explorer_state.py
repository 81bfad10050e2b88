"""The headless explorer state: filters, navigation, settings; no ipywidgets import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from semcathode.explain._explorer_state import CORRECTNESS, ExplorerState

CLASSES = ["NCM333 pristine", "NCM622 cycled", "NCM811 formation"]
A, B, C = CLASSES


def ids(state: ExplorerState) -> list[tuple[str, str]]:
    return list(zip(state.items["image_id"], state.items["arm"]))


def test_state_does_not_import_ipywidgets():
    code = (
        "import sys, pandas as pd\n"
        "from semcathode.explain._explorer_state import ExplorerState\n"
        "s = ExplorerState(pd.DataFrame({'image_id': ['a'], 'label': ['x'], 'pred': ['y']}), ['x', 'y'])\n"
        "s.next(); s.set_filter('correctness', 'incorrect'); assert s.current['image_id'] == 'a'\n"
        "assert 'ipywidgets' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_filters(records):
    s = ExplorerState(records, CLASSES)
    assert len(s.items) == 8
    s.set_filter("label", A)
    assert ids(s) == [("i1", "ft"), ("i2", "ft"), ("i1", "pre"), ("i2", "pre")]
    s.set_filter("pred", B)
    assert ids(s) == [("i2", "ft")]
    s.set_filter("label", None)
    s.set_filter("pred", "all")
    s.set_filter("correctness", "incorrect")
    assert ids(s) == [("i2", "ft"), ("i4", "ft"), ("i3", "pre")]
    s.set_filter("domain", "lab")
    assert ids(s) == [("i4", "ft"), ("i3", "pre")]
    s.set_filter("arm", "pre")
    assert ids(s) == [("i3", "pre")]
    s.set_filter("correctness", "correct")
    assert ids(s) == [("i4", "pre")]
    s.reset_filters()
    assert len(s.items) == 8
    with pytest.raises(ValueError, match="unknown filter"):
        s.set_filter("colour", "red")
    with pytest.raises(ValueError, match="correctness"):
        s.set_filter("correctness", "maybe")


def test_correct_derived_when_absent(records):
    s = ExplorerState(records.drop(columns="correct"), CLASSES)
    s.set_filter("correctness", "incorrect")
    assert ids(s) == [("i2", "ft"), ("i4", "ft"), ("i3", "pre")]


def test_options(records):
    opts = ExplorerState(records, CLASSES).options()
    assert opts["label"] == CLASSES
    assert opts["pred"] == CLASSES
    assert opts["correctness"] == list(CORRECTNESS)
    assert opts["domain"] == ["kaist", "lab"]
    assert opts["arm"] == ["ft", "pre"]


def test_navigation_wraps_and_filter_resets_position(records):
    s = ExplorerState(records, CLASSES)
    s.set_filter("arm", "ft")
    assert s.index == 0 and s.current["image_id"] == "i1"
    s.prev()
    assert s.index == 3 and s.current["image_id"] == "i4"
    s.next()
    assert s.index == 0
    s.next()
    s.next()
    assert s.current["image_id"] == "i3"
    s.set_filter("domain", "kaist")
    assert s.index == 0 and s.current["image_id"] == "i1"


def test_empty_result_has_no_current(records):
    s = ExplorerState(records, CLASSES)
    s.set_filter("label", C)
    s.set_filter("pred", B)
    assert s.items.empty
    assert s.current is None
    assert s.next() is None and s.prev() is None and s.index == 0
    assert s.explained_class() is None


def test_settings(records):
    s = ExplorerState(records, CLASSES, opacity=3.0)
    assert s.opacity == 1.0
    s.opacity = -0.2
    assert s.opacity == 0.0
    s.opacity = 0.3
    assert s.opacity == pytest.approx(0.3)
    s.opacity = float("nan")
    assert s.opacity == pytest.approx(0.3)
    assert s.method == "gradcam"
    s.method = "eigencam"
    assert s.method == "eigencam"
    with pytest.raises(ValueError):
        s.method = "magic"
    assert s.target_class is None and s.explained_class() == A
    s.target_class = C
    assert s.explained_class() == C
    s.target_class = "(predicted)"
    assert s.target_class is None
    with pytest.raises(ValueError):
        s.target_class = "NCM999"
    probs = s.probabilities()
    assert list(probs.index) == CLASSES and probs[A] == pytest.approx(0.8)
