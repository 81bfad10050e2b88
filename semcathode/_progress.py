"""Text progress bars that stream through papermill to the ``semcathode run`` log."""

from __future__ import annotations

import sys
from typing import Iterable

__all__ = ["progress"]


def progress(it: Iterable, desc: str):
    """Wrap ``it`` in a plain-text tqdm bar on stderr (updates at most every 5 s)."""
    from tqdm import tqdm

    return tqdm(list(it), desc=desc, file=sys.stderr, mininterval=5, ascii=True, leave=False)
