"""The Grad-CAM explorer: headless state logic and the widgets without a kernel."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from semcathode.explain.explorer import CORRECTNESS, Explorer, ExplorerState, explore

CLASSES = ["NCM333 pristine", "NCM622 cycled", "NCM811 formation"]
A, B, C = CLASSES


@pytest.fixture
def records() -> pd.DataFrame:
    rows = [
        # image_id, label, pred, domain, arm
        ("i1", A, A, "kaist", "ft"),
        ("i2", A, B, "kaist", "ft"),
        ("i3", B, B, "lab", "ft"),
        ("i4", C, A, "lab", "ft"),
        ("i1", A, A, "kaist", "pre"),
        ("i2", A, A, "kaist", "pre"),
        ("i3", B, C, "lab", "pre"),
        ("i4", C, C, "lab", "pre"),
    ]
    df = pd.DataFrame(rows, columns=["image_id", "label", "pred", "domain", "arm"])
    df["path"] = [f"/data/{i}.tif" for i in df["image_id"]]
    df["correct"] = df["label"] == df["pred"]
    probs = np.full((len(df), 3), 0.1)
    for k, p in enumerate(df["pred"]):
        probs[k, CLASSES.index(p)] = 0.8
    for j, c in enumerate(CLASSES):
        df[f"p_{c}"] = probs[:, j]
    return df


def ids(state: ExplorerState) -> list[tuple[str, str]]:
    return list(zip(state.items["image_id"], state.items["arm"]))


def test_state_does_not_import_ipywidgets():
    code = (
        "import sys, pandas as pd\n"
        "from semcathode.explain.explorer import ExplorerState\n"
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


class FakeCam:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, str, str, str | None]] = []
        self.fail = fail

    def __call__(self, row, method, target_class):
        self.calls.append((row["image_id"], row["arm"], method, target_class))
        if self.fail:
            raise RuntimeError("no model")
        grey = np.linspace(0, 1, 48 * 64, dtype=np.float32).reshape(48, 64)
        cam = np.zeros((8, 8), np.float32)
        cam[2:4, 2:4] = 1
        return grey, cam


def test_explorer_widgets_drive_state_and_cam_fn(records):
    fake = FakeCam()
    ex = explore(records, CLASSES, fake)
    assert isinstance(ex, Explorer)
    import ipywidgets as W

    assert isinstance(ex.widget, W.Widget)
    assert fake.calls == [("i1", "ft", "gradcam", None)]  # the first item is drawn on construction
    assert ex.original_image.value[:4] == b"\x89PNG" and ex.overlay_image.value[:4] == b"\x89PNG"
    assert "0.80" in ex.probs_html.value

    ex.filter_widgets["arm"].value = "pre"
    assert ex.state.filters["arm"] == "pre"
    assert fake.calls[-1] == ("i1", "pre", "gradcam", None)
    ex.filter_widgets["correctness"].value = "incorrect"
    assert ids(ex.state) == [("i3", "pre")]
    assert fake.calls[-1] == ("i3", "pre", "gradcam", None)

    ex.method_widget.value = "layercam"
    assert ex.state.method == "layercam"
    assert fake.calls[-1] == ("i3", "pre", "layercam", None)
    ex.target_widget.value = C
    assert ex.state.target_class == C
    assert fake.calls[-1] == ("i3", "pre", "layercam", C)
    assert "for <b>NCM811 formation</b>" in ex.info.value

    n = len(fake.calls)
    before = ex.overlay_image.value
    ex.opacity_slider.value = 0.9  # cached CAM: redrawn, not recomputed
    assert ex.state.opacity == pytest.approx(0.9)
    assert len(fake.calls) == n and ex.overlay_image.value != before

    ex.filter_widgets["correctness"].value = "all"
    ex.next_button.click()
    assert ex.state.index == 1 and fake.calls[-1][:2] == ("i2", "pre")
    ex.prev_button.click()
    ex.prev_button.click()
    assert ex.state.index == 3 and fake.calls[-1][:2] == ("i4", "pre")

    ex.filter_widgets["label"].value = C
    ex.filter_widgets["pred"].value = B  # nothing left
    assert ex.state.current is None
    assert "No images" in ex.info.value and ex.overlay_image.value == b""
    assert "0 / 0" in ex.position_html.value

    ex.filter_widgets["pred"].value = "(all)"
    assert ex.state.filters["pred"] is None and ids(ex.state) == [("i4", "pre")]
    assert fake.calls[-1] == ("i4", "pre", "layercam", C)


def test_explorer_shows_cam_errors(records):
    ex = Explorer(records, CLASSES, FakeCam(fail=True))
    assert ex.last_error == "RuntimeError: no model"
    assert "CAM failed" in ex.info.value


def test_explorer_displays_as_widget(records):
    bundle = Explorer(records, CLASSES, FakeCam())._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
