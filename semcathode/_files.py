"""Atomic file writing: write to a temporary path in the same folder, then rename.

Files get the usual mode of a new file, ``0666`` less the process umask (``0644`` with the
common umask ``022``), not the ``0600`` of the temporary file: a group sharing a results
folder can read them.

Text and CSV are written as UTF-8 with ``errors='surrogateescape'``: a file name the OS gave
that is not valid UTF-8 (Python holds its bytes as lone surrogates) is written back as its
original bytes, so a path column still opens the file it names. Read such CSVs back with
``encoding_errors='surrogateescape'`` (as :func:`semcathode.data.read_manifest` does).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pandas is imported by the writers that need it (keeps the CLI start fast)
    import pandas as pd

#: How characters that UTF-8 cannot encode (undecodable file-name bytes) are written.
TEXT_ERRORS = "surrogateescape"


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_text(path: str | Path, text: str, errors: str = TEXT_ERRORS) -> Path:
    """Write ``text`` to ``path`` atomically as UTF-8 (see the module notes on ``errors``)."""
    return _atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8", errors=errors))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_write_csv(path: str | Path, df: "pd.DataFrame", **kwargs: Any) -> Path:
    """Write a DataFrame as UTF-8 CSV atomically (``index=False`` and ``errors='surrogateescape'``
    unless given)."""
    kwargs.setdefault("index", False)
    kwargs.setdefault("encoding", "utf-8")
    kwargs.setdefault("errors", TEXT_ERRORS)
    return _atomic(path, lambda tmp: df.to_csv(tmp, **kwargs))


def atomic_save(path: str | Path, writer: Callable[[str], Any]) -> Path:
    """Call ``writer(tmp_path)`` and rename the result to ``path``."""
    return _atomic(path, writer)


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            m = re.search(r"^Umask:\s*([0-7]+)", fh.read(), re.MULTILINE)
        if m:
            return int(m.group(1), 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """Mode of a newly created regular file: ``0666 & ~umask``."""
    return 0o666 & ~current_umask()


def _atomic(path: str | Path, writer: Callable[[str], Any]) -> Path:
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "is a directory, not a file", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, new_file_mode())  # mkstemp's 0600 would otherwise survive the rename
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def swap_dir(new: str | Path, dest: str | Path) -> Path:
    """Replace directory ``dest`` by ``new`` (both on one file system).

    The old ``dest`` is moved aside first and removed only after ``new`` is in place.
    """
    new, dest = Path(new), Path(dest)
    old = dest.with_name(f".{dest.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        os.replace(dest, old)
    os.replace(new, dest)
    if old.exists():
        shutil.rmtree(old)
    return dest


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
