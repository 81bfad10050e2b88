"""Interactive Grad-CAM explorer for JupyterLab (ipywidgets).

The headless state (filters, position, method, class to explain, opacity) is
:class:`~semcathode.explain._explorer_state.ExplorerState` (module ``explorer_state``, no ipywidgets).
:class:`Explorer` wraps it in widgets: dropdowns for the
filters, the method and the target class, prev/next buttons, an opacity slider, a toggle that
draws the segmented particle outlines over both images (when an ``outlines_fn`` is given), and
the original micrograph beside its overlay with the class probabilities as bars.

The explorer knows nothing about models: a ``cam_fn(row, method, target_class) ->
(grey image, cam)`` computes the map for a record (``target_class`` None = the predicted
class); :func:`semcathode.explain._micrograph.make_cam_fn` builds one from a model.  Building the widgets
needs no live kernel, so a notebook run by papermill just displays an inert widget.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from html import escape
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ._images import fit_side, grey01
from ._explorer_state import _ALL, _PRED, CORRECTNESS, DEFAULT_METHODS, FILTERS, ExplorerState

__all__ = ["CamFn", "Explorer", "explore"]

#: ``cam_fn(row, method, target_class) -> (grey image (H, W) in [0, 1], cam (h, w) in [0, 1])``
CamFn = Callable[[pd.Series, str, "str | None"], "tuple[np.ndarray, np.ndarray]"]
#: ``outlines_fn(row, shape) -> bool (h, w)``: the particle outlines of a record's micrograph drawn at ``shape``
OutlinesFn = Callable[[pd.Series, "tuple[int, int]"], np.ndarray]
#: Colour of the particle outlines.
OUTLINE_RGB = (255, 255, 0)


def _png(rgb_or_grey: np.ndarray) -> bytes:
    from PIL import Image

    arr = np.asarray(rgb_or_grey)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(np.nan_to_num(arr.astype(np.float32)) * 255), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


class Explorer:
    """ipywidgets explorer over an :class:`ExplorerState`.

    Parameters
    ----------
    records, classes, methods, method, opacity
        As for :class:`ExplorerState`.
    cam_fn : callable
        ``cam_fn(row, method, target_class) -> (grey image, cam)``; results are cached per
        (image_id, arm, method, target_class) so moving the opacity slider recomputes nothing.
    display_size : int
        Longest side, in pixels, of the images sent to the browser.
    cache_size : int
        CAMs kept in the cache.
    outlines_fn : callable, optional
        ``outlines_fn(row, shape) -> bool mask``: the particle outlines of the record's micrograph at
        the displayed size (:func:`semcathode.explain.explorer_for` builds one from the morphology
        settings). Without it the outlines toggle is disabled.

    Attributes
    ----------
    state : ExplorerState
    filter_widgets : dict of ipywidgets.Dropdown
        One per name of :data:`FILTERS`.
    method_widget, target_widget : ipywidgets.Dropdown
    prev_button, next_button : ipywidgets.Button
    opacity_slider : ipywidgets.FloatSlider
    outlines_toggle : ipywidgets.Checkbox
        Draw the particle outlines over both images.
    original_image, overlay_image : ipywidgets.Image
    info, probs_html, position_html : ipywidgets.HTML
    last_error : str or None
        Message of the last failed ``cam_fn`` call (also shown in :attr:`info`).
    """

    def __init__(
        self,
        records: pd.DataFrame,
        classes: Sequence[str],
        cam_fn: CamFn,
        methods: Sequence[str] = DEFAULT_METHODS,
        method: str = "gradcam",
        opacity: float = 0.45,
        display_size: int = 384,
        cache_size: int = 32,
        outlines_fn: OutlinesFn | None = None,
    ) -> None:
        import ipywidgets as W

        self.state = ExplorerState(records, classes, methods=methods, method=method, opacity=opacity)
        self.cam_fn = cam_fn
        self.display_size = int(display_size)
        self.cache_size = int(cache_size)
        self.last_error: str | None = None
        self._cache: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.outlines_fn = outlines_fn
        self._outline_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()

        opts = self.state.options()
        labels = {"label": "true", "pred": "predicted", "correctness": "correct?", "domain": "domain", "arm": "arm"}
        self.filter_widgets: dict[str, Any] = {}
        for name in FILTERS:
            choices = list(CORRECTNESS) if name == "correctness" else [_ALL] + list(opts[name])
            dd = W.Dropdown(options=choices, value=choices[0], description=labels[name],
                            layout=W.Layout(width="220px"))
            dd.observe(self._on_filter(name), names="value")
            self.filter_widgets[name] = dd
        self.method_widget = W.Dropdown(options=self.state.methods, value=self.state.method, description="method",
                                        layout=W.Layout(width="220px"))
        self.method_widget.observe(self._on_method, names="value")
        self.target_widget = W.Dropdown(options=[_PRED] + self.state.classes, value=_PRED, description="explain",
                                        layout=W.Layout(width="260px"))
        self.target_widget.observe(self._on_target, names="value")
        self.opacity_slider = W.FloatSlider(value=self.state.opacity, min=0.0, max=1.0, step=0.05,
                                            description="opacity", continuous_update=False)
        self.opacity_slider.observe(self._on_opacity, names="value")
        self.outlines_toggle = W.Checkbox(value=False, description="particle outlines", indent=False,
                                          disabled=outlines_fn is None, layout=W.Layout(width="160px"))
        self.outlines_toggle.observe(lambda _c: self.render(), names="value")
        self.prev_button = W.Button(description="◀ prev", layout=W.Layout(width="90px"))
        self.next_button = W.Button(description="next ▶", layout=W.Layout(width="90px"))
        self.prev_button.on_click(lambda _b: self._move(-1))
        self.next_button.on_click(lambda _b: self._move(+1))
        self.position_html = W.HTML()
        self.info = W.HTML()
        self.original_image = W.Image(format="png", layout=W.Layout(width=f"{self.display_size}px"))
        self.overlay_image = W.Image(format="png", layout=W.Layout(width=f"{self.display_size}px"))
        self.probs_html = W.HTML()
        self._widget = W.VBox([
            W.HBox([self.filter_widgets[n] for n in FILTERS[:3]]),
            W.HBox([self.filter_widgets[n] for n in FILTERS[3:]] + [self.method_widget, self.target_widget]),
            W.HBox([self.prev_button, self.position_html, self.next_button, self.opacity_slider,
                    self.outlines_toggle]),
            self.info,
            W.HBox([self.original_image, self.overlay_image, self.probs_html]),
        ])
        self.render()

    # ----------------------------------------------------------------- events

    def _on_filter(self, name: str) -> Callable[[dict], None]:
        def handler(change: dict) -> None:
            self.state.set_filter(name, change["new"])
            self.render()

        return handler

    def _on_method(self, change: dict) -> None:
        self.state.method = change["new"]
        self.render()

    def _on_target(self, change: dict) -> None:
        self.state.target_class = change["new"]
        self.render()

    def _on_opacity(self, change: dict) -> None:
        self.state.opacity = change["new"]
        self.render()

    def _move(self, step: int) -> None:
        self.state.go(self.state.index + step)
        self.render()

    def next(self) -> None:
        """Show the next item (as the button does)."""
        self._move(+1)

    def prev(self) -> None:
        """Show the previous item (as the button does)."""
        self._move(-1)

    # ----------------------------------------------------------------- drawing

    def _cam(self, row: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        key = (str(row.get("image_id")), str(row.get("arm", "")), self.state.method, self.state.target_class)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        grey, cam = self.cam_fn(row, self.state.method, self.state.target_class)
        grey = fit_side(grey01(grey), self.display_size)
        self._cache[key] = (grey, np.asarray(cam, np.float32))
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return self._cache[key]

    def _outlines(self, row: pd.Series, shape: tuple[int, int]) -> np.ndarray:
        key = (str(row.get("image_id")), str(row.get("path", "")), tuple(shape))
        if key not in self._outline_cache:
            self._outline_cache[key] = np.asarray(self.outlines_fn(row, shape), bool)
            while len(self._outline_cache) > self.cache_size:
                self._outline_cache.popitem(last=False)
        return self._outline_cache[key]

    def _probs_html(self, row: pd.Series) -> str:
        probs = self.state.probabilities(row)
        true, pred = str(row["label"]), str(row["pred"])
        lines = []
        for cls, p in probs.items():
            width = 0 if p != p else int(round(140 * min(max(p, 0.0), 1.0)))
            colour = "#27ae60" if cls == true else ("#c0392b" if cls == pred else "#7f8c8d")
            mark = " ✓" if cls == true else (" ✗" if cls == pred else "")
            lines.append(
                f'<div style="font:12px monospace;white-space:pre">{escape(cls):<12} '
                f'<span style="display:inline-block;width:{width}px;height:9px;background:{colour}"></span> '
                f'{"" if p != p else f"{p:.2f}"}{mark}</div>'
            )
        return "<div><b>probabilities</b>" + "".join(lines) + "</div>"

    def render(self) -> None:
        """Redraw the current item (calls ``cam_fn`` unless its CAM is cached)."""
        from ._overlays import overlay

        n = len(self.state)
        row = self.state.current
        self.position_html.value = f"&nbsp;{self.state.index + 1 if n else 0} / {n}&nbsp;"
        if row is None:
            self.info.value = "<i>No images match the filters.</i>"
            self.original_image.value = b""
            self.overlay_image.value = b""
            self.probs_html.value = ""
            return
        try:
            grey, cam = self._cam(row)
        except Exception as exc:  # shown in the widget rather than lost in a callback log
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.info.value = f'<span style="color:#c0392b">CAM failed: {escape(self.last_error)}</span>'
            self.original_image.value = b""
            self.overlay_image.value = b""
            return
        self.last_error = None
        ok = bool(row["correct"])
        self.info.value = (
            f"<b>{escape(str(row['image_id']))}</b> &middot; true <b>{escape(str(row['label']))}</b> &middot; "
            f"predicted <b>{escape(str(row['pred']))}</b> "
            f'<span style="color:{"#27ae60" if ok else "#c0392b"}">({"correct" if ok else "wrong"})</span>'
            f" &middot; domain {escape(str(row.get('domain', '')))} &middot; arm {escape(str(row.get('arm', '')))}"
            f" &middot; {escape(self.state.method)} for <b>{escape(str(self.state.explained_class(row)))}</b>"
        )
        original = np.repeat(np.clip(np.rint(grey * 255), 0, 255).astype(np.uint8)[..., None], 3, -1)
        over = overlay(grey, cam, opacity=self.state.opacity)
        if self.outlines_toggle.value and self.outlines_fn is not None:
            try:
                lines = self._outlines(row, grey.shape[:2])
            except Exception as exc:  # noqa: BLE001 - shown in the widget
                self.info.value += f' <span style="color:#c0392b">(outlines failed: {escape(str(exc))})</span>'
            else:
                original[lines] = OUTLINE_RGB
                over[lines] = OUTLINE_RGB
        self.original_image.value = _png(original)
        self.overlay_image.value = _png(over)
        self.probs_html.value = self._probs_html(row)

    @property
    def widget(self) -> Any:
        """The top-level ipywidgets box."""
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self._widget._repr_mimebundle_(**kwargs)


def explore(records: pd.DataFrame, classes: Sequence[str], cam_fn: CamFn, **kwargs: Any) -> Explorer:
    """Build an :class:`Explorer` (display it, or its ``.widget``, in a notebook).

    Parameters
    ----------
    records : DataFrame
        As for :class:`ExplorerState`.
    classes : sequence of str
        Class names.
    cam_fn : callable
        ``cam_fn(row, method, target_class) -> (grey image, cam)``.
    **kwargs
        Passed to :class:`Explorer`.

    Returns
    -------
    Explorer
    Examples
    --------
    Headless (the widgets render in JupyterLab); ``cam_fn`` explains one record:

    >>> import numpy as np, pandas as pd
    >>> from semcathode.explain import explore
    >>> records = pd.DataFrame({"image_id": ["a", "b"], "path": ["a.png", "b.png"], "label": ["X", "Y"],
    ...                         "pred": ["X", "X"], "p_X": [0.9, 0.6], "p_Y": [0.1, 0.4]})
    >>> cam_fn = lambda row, method, target: (np.zeros((32, 32)), np.ones((4, 4)))
    >>> ex = explore(records, ["X", "Y"], cam_fn)
    >>> len(ex.state.items), ex.method_widget.value
    (2, 'gradcam')
    """
    return Explorer(records, classes, cam_fn, **kwargs)
