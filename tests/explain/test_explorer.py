"""The Grad-CAM explorer widgets, built without a kernel."""

from __future__ import annotations

import numpy as np
import pytest

from semcathode.explain._explorer import Explorer, explore
from semcathode.explain._explorer_state import ExplorerState

CLASSES = ["NCM333 pristine", "NCM622 cycled", "NCM811 formation"]
A, B, C = CLASSES


def ids(state: ExplorerState) -> list[tuple[str, str]]:
    return list(zip(state.items["image_id"], state.items["arm"]))


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


def test_outlines_toggle_draws_the_particle_outlines_over_both_images(records):
    from PIL import Image
    import io

    from semcathode.explain._explorer import OUTLINE_RGB

    calls = []

    def outlines(row, shape):
        calls.append(shape)
        m = np.zeros(shape, bool)
        m[10, :] = True
        return m

    ex = explore(records, CLASSES, FakeCam(), outlines_fn=outlines)
    assert not ex.outlines_toggle.value and not calls  # off by default: nothing segmented
    ex.outlines_toggle.value = True
    assert calls == [(48, 64)]
    for png in (ex.original_image.value, ex.overlay_image.value):
        rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        assert (rgb[10] == OUTLINE_RGB).all() and not (rgb[20] == OUTLINE_RGB).all(-1).any()
    ex.opacity_slider.value = 0.2  # the outlines are cached per micrograph
    assert len(calls) == 1
    assert explore(records, CLASSES, FakeCam()).outlines_toggle.disabled  # no outlines_fn: disabled
