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

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:  # pandas is imported by the writers that need it (keeps the CLI start fast)
    import pandas as pd

__all__ = ["TEXT_ERRORS", "sha256_file", "atomic_write_text", "atomic_write_json", "atomic_write_csv", "atomic_save",
           "current_umask", "new_file_mode", "swap_dir", "LockedError", "exclusive_lock", "refuse_to_replace",
           "json_default"]

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
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=json_default) + "\n")


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


#: Seconds after which a lock file that cannot be read (a process died between creating and
#: filling it) counts as stale; a younger one is being written and counts as held.
LOCK_UNREADABLE_GRACE_S = 30.0


class LockedError(OSError):
    """Another process holds an :func:`exclusive_lock`; ``str()`` is one line naming the lock
    file and the holder (``filename`` is the lock file, ``holder`` its record)."""

    def __init__(self, path: str | Path, message: str, holder: dict | None = None) -> None:
        super().__init__(errno.EBUSY, message, str(path))
        self.holder = dict(holder or {})

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def _lock_record() -> dict:
    """What a lock file holds: who took it, where and when (the token tells two takers apart)."""
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "token": uuid.uuid4().hex}


def _create_lock(path: Path, text: str) -> bool:
    """Create ``path`` holding ``text`` if it does not exist (atomic ``O_CREAT | O_EXCL``)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, new_file_mode())
    except FileExistsError:
        return False
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    return True


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError, ValueError):  # not a usable pid: cannot tell, assume alive
        return True
    return True


def _lock_stale(path: Path, raw: bytes) -> tuple[bool, dict, str]:
    """(stale, record, description of the holder) of a lock file's contents."""
    try:
        rec = json.loads(raw.decode("utf-8"))
        pid, host = int(rec["pid"]), str(rec["host"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            age = 0.0
        return age > LOCK_UNREADABLE_GRACE_S, {}, "an unreadable lock record"
    who = f"pid {pid} on {host}" + (f" since {rec['started']}" if rec.get("started") else "")
    if host != socket.gethostname():  # cannot look at another machine's processes: held
        return False, rec, who
    return not _pid_alive(pid), rec, who


@contextlib.contextmanager
def exclusive_lock(path: str | Path, what: str = "this folder",
                   log: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold the lock file ``path`` for the block: one process at a time.

    The lock file is created atomically (``O_CREAT | O_EXCL``) and holds the pid, host and start
    time as JSON; it is removed when the block ends, however it ends (exception, ``SystemExit``,
    Ctrl-C). A lock whose process is no longer running on this host is stale: it is taken over
    (atomically: renamed aside, checked unchanged, removed) and ``log`` says so. A lock that cannot
    be read counts as stale after :data:`LOCK_UNREADABLE_GRACE_S` seconds.

    Parameters
    ----------
    path : str or Path
        The lock file, e.g. ``<report>.lock`` beside a report folder (its folder must exist).
    what : str
        What the lock guards, for the messages (e.g. ``"the report reports/demo"``).
    log : callable, optional
        Receives the one-line message when a stale lock is taken over.

    Yields
    ------
    Path
        The lock file.

    Raises
    ------
    LockedError
        Another live process holds the lock (the message names the lock file and its pid).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> lock = Path(tempfile.mkdtemp()) / "r.lock"
    >>> with exclusive_lock(lock, "r"):
    ...     try:
    ...         with exclusive_lock(lock, "r"):
    ...             pass
    ...     except LockedError as exc:
    ...         print("refused:", "in use by pid" in str(exc))
    refused: True
    >>> lock.exists()
    False
    """
    path = Path(path)
    mine = json.dumps(_lock_record())
    for _ in range(10):
        if _create_lock(path, mine):
            break
        try:
            raw = path.read_bytes()
        except FileNotFoundError:  # released meanwhile: try again
            continue
        stale, rec, who = _lock_stale(path, raw)
        if not stale:
            raise LockedError(path, f"{what} is in use by {who} (another run); wait for it to finish, "
                                    f"or remove the lock file if no such run is going on", rec)
        aside = path.with_name(f"{path.name}.stale.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:  # another process took it over first: try again
            continue
        if aside.read_bytes() != raw:  # replaced by a live taker in between: give it back
            with contextlib.suppress(OSError):
                os.link(aside, path)
            aside.unlink(missing_ok=True)
            raise LockedError(path, f"{what} was just locked by another run", rec)
        aside.unlink(missing_ok=True)
        if log is not None:
            log(f"took over the stale lock {path} of {what} ({who}, no longer running)")
    else:
        raise LockedError(path, f"{what}: could not take the lock (it keeps changing hands)")
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            if path.read_text(encoding="utf-8") == mine:
                path.unlink()


def refuse_to_replace(dest: str | Path, marker: str, what: str = "report folder") -> None:
    """Refuse a folder that a tool would replace or delete but that is not one of its own.

    ``dest`` may be absent, an empty folder, or a folder holding ``marker`` (e.g. a report's
    ``run_state.json``); it must never be the file-system root, the home folder, the working
    directory or one of its parents.

    Parameters
    ----------
    dest : str or Path
        The folder to be replaced (checked as resolved, following links).
    marker : str
        A file name that marks a folder as the tool's own.
    what : str
        What such a folder is called in the message.

    Raises
    ------
    FileExistsError
        ``dest`` is not safe to replace; ``filename`` is ``dest`` and the message says why.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> refuse_to_replace(d / "new", "run_state.json")  # absent: fine
    >>> _ = (d / "notes.txt").write_text("mine")
    >>> try:
    ...     refuse_to_replace(d, "run_state.json")
    ... except FileExistsError as exc:
    ...     print(exc.strerror.split(";")[0])
    not empty and not a report folder (no run_state.json)
    """
    p = Path(dest).resolve()
    cwd = Path.cwd().resolve()
    special = {Path(p.anchor): "the file-system root", Path.home().resolve(): "the home folder",
               cwd: "the working directory"}
    if p in special or p in cwd.parents:
        why = special.get(p, "a parent of the working directory")
        raise FileExistsError(errno.EEXIST, f"is {why}; refusing to replace it (give a folder of its own)", str(dest))
    if p.exists() and not p.is_dir():
        raise FileExistsError(errno.EEXIST, "exists and is not a folder; refusing to replace it", str(dest))
    if p.is_dir() and not (p / marker).is_file() and any(p.iterdir()):
        raise FileExistsError(errno.EEXIST, f"not empty and not a {what} (no {marker}); refusing to replace "
                                            "it: give a new or empty folder", str(dest))


def json_default(o: Any) -> Any:
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
