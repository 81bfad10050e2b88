"""One-line messages of the ``semcathode`` command on stdout/stderr, printable on any stream.

Everything printed goes through :func:`safe`: file names that are not valid UTF-8 show their odd
bytes as ``\\xNN``, and control characters (C0 such as a newline or ``ESC``, ``DEL``, C1, the
line and paragraph separators, bidi and other format controls such as U+202E) are shown escaped
the way :func:`repr` writes them (``\\n``, ``\\x1b``, ``\\u202e``). A file name can therefore
neither colour or move the terminal's text nor start a line of its own (e.g. a forged
``error: ...``); ordinary letters and symbols (µ, 한국어) stay readable.
"""

from __future__ import annotations

import sys
import unicodedata
from typing import Any, Sequence

__all__ = ["CliError", "describe", "user_error_types", "error", "escape_name", "list_bad", "one_line", "safe", "say", "show_warning"]

#: Unicode categories shown escaped: controls (C0, DEL, C1), format characters (bidi controls,
#: zero-width joiners, BOM), surrogates, and the line and paragraph separators.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})



class CliError(Exception):
    """Bad command-line input; the message is the one line shown to the user (exit code 2)."""


def _escape(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable file-name byte (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if unicodedata.category(ch) in _ESCAPED_CATEGORIES:
        return repr(ch)[1:-1]
    return ch


def safe(text: Any) -> str:
    """``text`` printable on any stream, on one line, without terminal control sequences.

    Parameters
    ----------
    text : str
        Any text, e.g. a file name the OS gave.

    Returns
    -------
    str
        Valid UTF-8 text without control or format characters: undecodable file-name bytes as
        ``\\xNN``, controls escaped as :func:`repr` does (``\\n``, ``\\x1b``, ``\\u202e``).

    Examples
    --------
    >>> print(safe("a\\x1b[31mred\\nerror: forged \\u202etxt.exe µm 전극"))
    a\\x1b[31mred\\nerror: forged \\u202etxt.exe µm 전극
    >>> print(safe("img_\\udcff.png"))
    img_\\xff.png
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


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
        path, reason = str(path), str(reason)
        if reason.startswith(f"{path}: "):  # errors that already name their file
            reason = reason[len(path) + 2:]
        say(f"{word}: {safe(path)}: {one_line(escape_name(reason, path))}", err=True)


def escape_name(text: str, name: str) -> str:
    """``text`` with each occurrence of the file name ``name`` shown as :func:`safe` shows it.

    A name with a newline in it then stays one escaped name instead of being split by
    :func:`one_line`.

    Parameters
    ----------
    text : str
        A message that may quote ``name``.
    name : str
        A file name.

    Returns
    -------
    str
        The message.

    Examples
    --------
    >>> print(one_line(escape_name("a\\nb.png: cannot decode", "a\\nb.png")))
    a\\nb.png: cannot decode
    """
    name = str(name)
    return str(text).replace(name, safe(name)) if name and safe(name) != name else str(text)


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


def user_error_types() -> tuple[type, ...]:
    """Exception types that mean bad input (exit 2), from the modules already imported."""
    types: list[type] = [CliError, OSError, UnicodeError]
    for module, name in (("semcathode.config._sections", "ConfigError"), ("semcathode.data._manifest", "ManifestError"),
                         ("semcathode.data._download", "DatasetError"), ("semcathode.io._read", "SEMReadError"),
                         ("semcathode.models._modelcheck", "ModelFileError")):
        mod = sys.modules.get(module)
        if mod is not None and hasattr(mod, name):
            types.append(getattr(mod, name))
    return tuple(types)


def describe(exc: BaseException) -> str:
    """The one-line message of an error (an ``OSError`` as ``<file>: <reason>``)."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__
