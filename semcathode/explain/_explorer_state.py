"""Headless state of the Grad-CAM explorer: filters, position and display settings.

:class:`ExplorerState` is plain Python (no ipywidgets): the table of predictions, the
filters, the position, the CAM method, the class to explain and the overlay opacity.
Tests drive it directly; :class:`semcathode.explain._explorer.Explorer` wraps it in widgets.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ._records import correct_flags

__all__ = ["FILTERS", "CORRECTNESS", "DEFAULT_METHODS", "ExplorerState"]

#: Filter names of :meth:`ExplorerState.set_filter`: true class, predicted class,
#: correctness, domain, arm.
FILTERS: tuple[str, ...] = ("label", "pred", "correctness", "domain", "arm")
#: Values of the ``correctness`` filter.
CORRECTNESS: tuple[str, ...] = ("all", "correct", "incorrect")
#: CAM methods offered by default (keys of :data:`semcathode.explain._compute.CAM_METHODS`).
DEFAULT_METHODS: tuple[str, ...] = ("gradcam", "gradcampp", "eigencam", "layercam", "hirescam", "xgradcam")

_ALL = "(all)"
_PRED = "(predicted)"


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
        df["correct"] = correct_flags(df)
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
        """Values each filter can take, from the whole table (class order for classes).

        Returns
        -------
        dict
            ``{filter name: list of values}`` for every name of :data:`FILTERS`.
        """

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
        """Jump to ``index`` (taken modulo the number of items).

        Parameters
        ----------
        index : int
            Position in :attr:`items`.

        Returns
        -------
        Series or None
            :attr:`current`.
        """
        n = len(self._items)
        self._index = int(index) % n if n else 0
        return self.current

    def next(self) -> pd.Series | None:
        """Next item, wrapping to the first after the last.

        Returns
        -------
        Series or None
            :attr:`current`.
        """
        return self.go(self._index + 1)

    def prev(self) -> pd.Series | None:
        """Previous item, wrapping to the last before the first.

        Returns
        -------
        Series or None
            :attr:`current`.
        """
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
        """The class the CAM of ``row`` explains.

        Parameters
        ----------
        row : Series or None
            A record; None: the current one.

        Returns
        -------
        str or None
            The chosen target class, else the row's predicted class; None without a row.
        """
        row = self.current if row is None else row
        if row is None:
            return None
        return self._target if self._target is not None else str(row["pred"])

    def probabilities(self, row: pd.Series | None = None) -> pd.Series:
        """The class probabilities of ``row``.

        Parameters
        ----------
        row : Series or None
            A record; None: the current one.

        Returns
        -------
        Series
            ``p_<class>`` indexed by class, in class order (NaN where absent).
        """
        row = self.current if row is None else row
        vals = [float(row[f"p_{c}"]) if row is not None and f"p_{c}" in row.index else float("nan")
                for c in self.classes]
        return pd.Series(vals, index=self.classes, dtype=float)
