"""What libraries say while an SEM file is read, turned into one warning that names the file.

Private to :mod:`semcathode.io`. :mod:`tifffile` logs problems of a file on the ``tifffile``
logger (twice when the file is opened twice), Pillow and numpy raise bare warnings; none of
them name the file. The readers wrap their library calls in :func:`library_calls`, and
:func:`semcathode.io.read_sem` wraps a whole read in :func:`one_warning`: what was said is
collected (each message once, cut to one short line) and given as one :class:`SEMReadWarning`
``"<file>: ..."`` when the read succeeds. A read that fails raises its :class:`SEMReadError`
instead. Only records of the reading thread are taken; other threads log as usual.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..config._limits import short_text
from ._guards import SEMReadWarning

__all__ = ["one_warning", "library_calls"]

#: Loggers of the libraries the readers call.
_LOGGERS = ("tifffile",)
#: Messages quoted in the warning; the rest are counted.
_SHOWN = 3

_state = threading.local()


class _Collector(logging.Filter):
    """Takes the records of one thread off the library loggers and keeps their text."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def add(self, text: str) -> None:
        line = short_text(text)
        if line not in self.messages:
            self.messages.append(line)

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003 - logging's name
        if record.thread != self.thread:
            return True
        self.add(f"{record.name}: {record.getMessage()}")
        return False

    def summary(self) -> str:
        shown = "; ".join(self.messages[:_SHOWN])
        more = len(self.messages) - _SHOWN
        return f"{self.path}: while reading: {shown}" + (f" (and {more} more)" if more > 0 else "")


@contextmanager
def one_warning(path: str | Path) -> Iterator[None]:
    """Collect what libraries say while ``path`` is read; give it as one warning at the end.

    Nested uses (a reader called inside another for the same read) add to the outermost one.

    Parameters
    ----------
    path : str or Path
        The file being read, named in the warning.

    Warns
    -----
    SEMReadWarning
        ``"<path>: while reading: <message>; ..."`` when a library logged or warned and the
        read succeeded; nothing when the block raised.
    """
    if getattr(_state, "collector", None) is not None:
        yield
        return
    collector = _Collector(Path(path))
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    _state.collector = collector
    for logger in loggers:
        logger.addFilter(collector)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(collector)
        _state.collector = None
    if collector.messages:
        warnings.warn(collector.summary(), SEMReadWarning, stacklevel=3)


@contextmanager
def library_calls(path: str | Path) -> Iterator[None]:
    """Around calls into tifffile / Pillow: their warnings and log lines go to :func:`one_warning`.

    numpy floating-point warnings are silenced inside (the readers check the values themselves).
    Library warnings are collected in the main thread only (``warnings.catch_warnings`` is not
    thread-safe); log records and numpy's error state are per thread everywhere.

    Parameters
    ----------
    path : str or Path
        The file being read.
    """
    if threading.current_thread() is not threading.main_thread():
        # warnings.catch_warnings swaps process-wide state: in a decoding thread it would take (and
        # lose) warnings of other threads; there only the thread-safe parts apply (this thread's log
        # records, numpy's per-thread error state) and library warnings pass as they are
        with one_warning(path), np.errstate(all="ignore"):
            yield
        return
    with one_warning(path):
        with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
            warnings.simplefilter("always")
            yield
        collector: _Collector = _state.collector
        for w in caught:
            if issubclass(w.category, SEMReadWarning):  # the readers' own warnings pass as they are
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
            else:
                collector.add(f"{w.category.__name__}: {w.message}")
