"""Interactive Grad-CAM explorer for JupyterLab (ipywidgets), with headless state logic.

:class:`ExplorerState` is plain Python (no ipywidgets): the table of predictions, the
filters, the position, the CAM method, the class to explain and the overlay opacity.
Tests drive it directly.  :class:`Explorer` wraps it in widgets: dropdowns for the
filters, the method and the target class, prev/next buttons, an opacity slider, and the
original micrograph beside its overlay with the class probabilities as bars.

The explorer knows nothing about models: a ``cam_fn(row, method, target_class) ->
(grey image, cam)`` computes the map for a record (``target_class`` None = the predicted
class); :func:`semcathode.explain.make_cam_fn` builds one from a model.  Building the widgets
needs no live kernel, so a notebook run by papermill just displays an inert widget.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from html import escape
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

__all__ = ["FILTERS", "CORRECTNESS", "DEFAULT_METHODS", "CamFn", "ExplorerState", "Explorer", "explore"]

#: Filter names of :meth:`ExplorerState.set_filter`: true class, predicted class,
#: correctness, domain, arm.
FILTERS: tuple[str, ...] = ("label", "pred", "correctness", "domain", "arm")
#: Values of the ``correctness`` filter.
CORRECTNESS: tuple[str, ...] = ("all", "correct", "incorrect")
#: CAM methods offered by default (keys of :data:`semcathode.explain.CAM_METHODS`).
DEFAULT_METHODS: tuple[str, ...] = ("gradcam", "gradcampp", "eigencam", "layercam", "hirescam", "xgradcam")

#: ``cam_fn(row, method, target_class) -> (grey image (H, W) in [0, 1], cam (h, w) in [0, 1])``
CamFn = Callable[[pd.Series, str, "str | None"], "tuple[np.ndarray, np.ndarray]"]

_ALL = "(all)"
_PRED = "(predicted)"


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    try:
        return bool(v) and v == v
    except (TypeError, ValueError):
        return False


class ExplorerState:
    """Filters, position and display settings over a table of predictions.

    Parameters
    ----------
    records : DataFrame
        One row per (image, arm): ``image_id``, ``path``, ``label``, ``pred``, ``correct``
        (derived from ``label == pred`` when absent), ``domain``, ``arm`` and one
        ``p_<class>`` probability column per class (missing ones show as blank).
    classes : sequence of str
        Class names, in the model's order.
    methods : sequence of str
        CAM methods offered.
    method : str
        Initial method.
    opacity : float
        Initial overlay opacity (clamped to [0, 1]).

    Attributes
    ----------
    records : DataFrame
        The table (index reset).
    classes : list of str
    methods : list of str
    filters : dict
        Current filter values (None = all; ``correctness`` is one of :data:`CORRECTNESS`).
    """

    def __init__(
        self,
        records: pd.DataFrame,
        classes: Sequence[str],
        methods: Sequence[str] = DEFAULT_METHODS,
        method: str = "gradcam",
        opacity: float = 0.45,
    ) -> None:
        missing = [c for c in ("image_id", "label", "pred") if c not in records.columns]
        if missing:
            raise ValueError(f"records lack columns {missing}")
        df = records.reset_index(drop=True).copy()
        if "correct" in df.columns:
            df["correct"] = [_truthy(v) for v in df["correct"]]
        else:
            df["correct"] = [str(a) == str(b) for a, b in zip(df["label"], df["pred"])]
        self.records = df
        self.classes = [str(c) for c in classes]
        self.methods = [str(m) for m in methods]
        if not self.methods:
            raise ValueError("need at least one CAM method")
        self.filters: dict[str, Any] = {name: None for name in FILTERS}
        self.filters["correctness"] = "all"
        self._method = self.methods[0]
        self.method = method
        self._target: str | None = None
        self._opacity = 0.45
        self.opacity = opacity
        self._index = 0
        self._items = self._filtered()

    # ----------------------------------------------------------------- filters

    def _filtered(self) -> pd.DataFrame:
        df = self.records
        keep = np.ones(len(df), bool)
        for name in ("label", "pred", "domain", "arm"):
            value = self.filters[name]
            if value is not None:
                col = df[name].astype(str) if name in df.columns else pd.Series([""] * len(df))
                keep &= (col == str(value)).to_numpy()
        if self.filters["correctness"] != "all":
            want = self.filters["correctness"] == "correct"
            keep &= df["correct"].to_numpy(bool) == want
        return df[keep]

    def set_filter(self, name: str, value: Any) -> None:
        """Set one filter (None, ``''`` or ``'all'`` = no filter) and go back to the first item.

        Parameters
        ----------
        name : str
            One of :data:`FILTERS` (``'label'`` is the true class).
        value : Any
            A value of that column; for ``'correctness'`` one of :data:`CORRECTNESS`.
        """
        if name not in FILTERS:
            raise ValueError(f"unknown filter {name!r}; filters: {', '.join(FILTERS)}")
        empty = value is None or (isinstance(value, str) and value in ("", "all", _ALL))
        if name == "correctness":
            value = "all" if empty else str(value)
            if value not in CORRECTNESS:
                raise ValueError(f"correctness must be one of {CORRECTNESS}, got {value!r}")
        else:
            value = None if empty else value
        self.filters[name] = value
        self._items = self._filtered()
        self._index = 0

    def reset_filters(self) -> None:
        """Remove every filter."""
        for name in FILTERS:
            self.filters[name] = "all" if name == "correctness" else None
        self._items = self._filtered()
        self._index = 0

    def options(self) -> dict[str, list[Any]]:
        """Values each filter can take, from the whole table (class order for classes)."""

        def present(col: str, order: Sequence[str] = ()) -> list[Any]:
            if col not in self.records.columns:
                return []
            vals = [str(v) for v in dict.fromkeys(self.records[col].dropna())]
            ordered = [v for v in order if v in vals]
            rest = [v for v in vals if v not in ordered]
            return ordered + (rest if order else sorted(rest))

        return {
            "label": present("label", self.classes),
            "pred": present("pred", self.classes),
            "correctness": list(CORRECTNESS),
            "domain": present("domain"),
            "arm": present("arm"),
        }

    # ----------------------------------------------------------------- position

    @property
    def items(self) -> pd.DataFrame:
        """The filtered records (original index kept)."""
        return self._items

    @property
    def index(self) -> int:
        """Position in :attr:`items` (0 when empty)."""
        return self._index

    def __len__(self) -> int:
        return len(self._items)

    def go(self, index: int) -> pd.Series | None:
        """Jump to ``index`` (taken modulo the number of items); return :attr:`current`."""
        n = len(self._items)
        self._index = int(index) % n if n else 0
        return self.current

    def next(self) -> pd.Series | None:
        """Next item, wrapping to the first after the last."""
        return self.go(self._index + 1)

    def prev(self) -> pd.Series | None:
        """Previous item, wrapping to the last before the first."""
        return self.go(self._index - 1)

    @property
    def current(self) -> pd.Series | None:
        """The current record, or None when no record passes the filters."""
        if len(self._items) == 0:
            return None
        return self._items.iloc[self._index]

    # ----------------------------------------------------------------- display settings

    @property
    def method(self) -> str:
        """CAM method name (one of :attr:`methods`)."""
        return self._method

    @method.setter
    def method(self, value: str) -> None:
        if str(value) not in self.methods:
            raise ValueError(f"unknown CAM method {value!r}; offered: {', '.join(self.methods)}")
        self._method = str(value)

    @property
    def target_class(self) -> str | None:
        """Class to explain; None = each item's predicted class."""
        return self._target

    @target_class.setter
    def target_class(self, value: str | None) -> None:
        if value is None or value in ("", _PRED):
            self._target = None
            return
        if str(value) not in self.classes:
            raise ValueError(f"unknown class {value!r}; classes: {', '.join(self.classes)}")
        self._target = str(value)

    @property
    def opacity(self) -> float:
        """Overlay opacity, clamped to [0, 1]."""
        return self._opacity

    @opacity.setter
    def opacity(self, value: float) -> None:
        v = float(value)
        self._opacity = float(min(max(v, 0.0), 1.0)) if v == v else self._opacity

    def explained_class(self, row: pd.Series | None = None) -> str | None:
        """The class the CAM of ``row`` (default: current) explains."""
        row = self.current if row is None else row
        if row is None:
            return None
        return self._target if self._target is not None else str(row["pred"])

    def probabilities(self, row: pd.Series | None = None) -> pd.Series:
        """``p_<class>`` of ``row`` (default: current) as a Series indexed by class (NaN if absent)."""
        row = self.current if row is None else row
        vals = [float(row[f"p_{c}"]) if row is not None and f"p_{c}" in row.index else float("nan")
                for c in self.classes]
        return pd.Series(vals, index=self.classes, dtype=float)


def _png(rgb_or_grey: np.ndarray) -> bytes:
    from PIL import Image

    arr = np.asarray(rgb_or_grey)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(np.nan_to_num(arr.astype(np.float32)) * 255), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _shrink(grey: np.ndarray, max_side: int) -> np.ndarray:
    grey = np.asarray(grey)
    if grey.ndim == 3:
        grey = grey[..., :3].mean(-1)
    h, w = grey.shape
    scale = max_side / max(h, w)
    if scale >= 1:
        return grey
    from skimage.transform import resize

    return resize(grey.astype(np.float32), (max(1, round(h * scale)), max(1, round(w * scale))),
                  anti_aliasing=True, preserve_range=True).astype(np.float32)


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

    Attributes
    ----------
    state : ExplorerState
    filter_widgets : dict of ipywidgets.Dropdown
        One per name of :data:`FILTERS`.
    method_widget, target_widget : ipywidgets.Dropdown
    prev_button, next_button : ipywidgets.Button
    opacity_slider : ipywidgets.FloatSlider
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
    ) -> None:
        import ipywidgets as W

        self.state = ExplorerState(records, classes, methods=methods, method=method, opacity=opacity)
        self.cam_fn = cam_fn
        self.display_size = int(display_size)
        self.cache_size = int(cache_size)
        self.last_error: str | None = None
        self._cache: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()

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
            W.HBox([self.prev_button, self.position_html, self.next_button, self.opacity_slider]),
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
        grey = _shrink(grey, self.display_size)
        self._cache[key] = (grey, np.asarray(cam, np.float32))
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return self._cache[key]

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
        from .cam import overlay

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
        self.original_image.value = _png(grey)
        self.overlay_image.value = _png(overlay(grey, cam, opacity=self.state.opacity))
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
    """
    return Explorer(records, classes, cam_fn, **kwargs)
