"""Reading the ``correct`` flag of a table of predictions (gallery and explorer share it)."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["truthy", "correct_flags"]


def truthy(v: Any) -> bool:
    """A table cell as a bool: ``'true'``/``'1'``/``'yes'`` strings, truthy non-NaN values."""
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    try:
        return bool(v) and v == v
    except (TypeError, ValueError):
        return False


def correct_flags(df: pd.DataFrame) -> list[bool]:
    """Per row: the ``correct`` column read by :func:`truthy`, or ``label == pred`` when absent."""
    if "correct" in df.columns:
        return [truthy(v) for v in df["correct"]]
    return [str(a) == str(b) for a, b in zip(df["label"], df["pred"])]
