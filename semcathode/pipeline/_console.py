"""One-line messages of the ``semcathode`` command on stdout/stderr, printable on any stream
(file names that are not valid UTF-8 show their odd bytes as ``\\xNN``)."""

from __future__ import annotations

import sys
from typing import Any, Sequence

__all__ = ["error", "list_bad", "one_line", "safe", "say", "show_warning"]


def safe(text: str) -> str:
    """``text`` printable on any stream: undecodable file-name bytes as ``\\xNN``.

    Parameters
    ----------
    text : str
        Any text, e.g. a file name the OS gave.

    Returns
    -------
    str
        Valid UTF-8 text.
    """
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def say(text: str, err: bool = False) -> None:
    """Print one line (to stderr with ``err``), flushed, whatever the stream's encoding.

    Parameters
    ----------
    text : str
        The line.
    err : bool
        Print to stderr instead of stdout.
    """
    stream = sys.stderr if err else sys.stdout
    line = safe(text)
    try:
        print(line, file=stream, flush=True)
    except UnicodeEncodeError:
        enc = getattr(stream, "encoding", None) or "ascii"
        print(line.encode(enc, "backslashreplace").decode(enc), file=stream, flush=True)


def one_line(text: str) -> str:
    """A multi-line message as one line (its non-blank lines joined by ``"; "``).

    Parameters
    ----------
    text : str
        The message.

    Returns
    -------
    str
        One line.

    Examples
    --------
    >>> one_line("bad file\\n\\n  reason  ")
    'bad file; reason'
    """
    parts = [p.strip() for p in str(text).splitlines() if p.strip()]
    return "; ".join(parts) if parts else ""


def error(text: str) -> None:
    """Print ``error: <text>`` as one line on stderr.

    Parameters
    ----------
    text : str
        The message.
    """
    say(f"error: {one_line(text)}", err=True)


def list_bad(problems: Sequence[tuple[str, str]], word: str = "bad") -> None:
    """Print one ``<word>: <file>: <reason>`` line per problem on stderr.

    Parameters
    ----------
    problems : sequence of (file, reason)
        The bad files; a reason that already starts with its file name is not repeated.
    word : str
        First word of each line, e.g. ``"skipped"``.
    """
    for path, reason in problems:
        reason = one_line(reason)
        if reason.startswith(f"{path}: "):  # errors that already name their file
            reason = reason[len(path) + 2:]
        say(f"{word}: {path}: {reason}", err=True)


def show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    """Show a warning as one ``warning: ...`` line on stderr (a :data:`warnings.showwarning`).

    Parameters
    ----------
    message : Warning or str
        The warning.
    category, filename, lineno, file, line
        As :func:`warnings.showwarning` receives them; not shown.
    """
    say(f"warning: {one_line(str(message))}", err=True)
