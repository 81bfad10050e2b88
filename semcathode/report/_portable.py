"""Portable reports: rewrite the absolute paths of this machine in what a run writes.

A report folder is meant to be moved, committed and opened elsewhere: paths under the run
folder become relative to it, micrograph paths relative to the data root, cache paths
``<cache>/...`` and library paths relative to the folder holding the package.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> tmp = tempfile.TemporaryDirectory()
>>> run = Path(tmp.name).resolve()
>>> PathRelativizer(run, data_root=run.parent / "data").text(f"see {run}/01_data/a.png")
'see 01_data/a.png'
>>> _ = (run / "notes.md").write_text(f"figure at {run / 'x.png'}")
>>> list(absolute_paths(run, (run,)))
['notes.md']
>>> [p.name for p in make_portable(run)], (run / "notes.md").read_text(), absolute_paths(run, (run,))
(['notes.md'], 'figure at x.png', {})
>>> tmp.cleanup()
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._files import atomic_write_text

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PathRelativizer", "REPORT_TEXT_SUFFIXES", "absolute_paths", "machine_relativizer", "make_portable",
           "path_spellings"]

#: Suffixes of the text files of a report that :func:`make_portable` rewrites.
REPORT_TEXT_SUFFIXES: tuple[str, ...] = (".md", ".html", ".csv", ".json", ".yaml", ".yml", ".ipynb", ".txt")


@dataclass
class PathRelativizer:
    """Rewrites absolute paths of this machine into portable ones for a report.

    A path under the run folder becomes relative to it; under the data root (named once in the
    run's ``config.yaml``) relative to the data root; under the cache root ``<cache>/...``.
    Absolute prefixes inside longer text are rewritten the same way. Each root is matched in
    every spelling it has on this machine (:func:`path_spellings`: as given, absolute, and
    with symbolic links resolved), so data reached through a link is relativised too.

    Parameters
    ----------
    run_dir : str or Path
        The report (run) folder.
    data_root : str or Path, optional
        Folder the micrographs were read from.
    cache_root : str or Path, optional
        Cache folder of pre-processed inputs and downloads.
    extra : dict of str to str, optional
        Further absolute prefix -> replacement pairs.
    """

    run_dir: Path
    data_root: Path | None = None
    cache_root: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # as given (made absolute now, links kept): the manifest may name the data through a link
        self._given = {k: os.path.abspath(os.fspath(v)) if v else None
                       for k, v in (("run_dir", self.run_dir), ("data_root", self.data_root), ("cache_root", self.cache_root))}
        self.run_dir = Path(self.run_dir).resolve()
        self.data_root = Path(self.data_root).resolve() if self.data_root else None
        self.cache_root = Path(self.cache_root).resolve() if self.cache_root else None

    def _roots(self) -> list[tuple[str, str]]:
        """(absolute prefix, replacement) pairs, every spelling of each root, most specific (longest) first."""
        key = (tuple(self.extra.items()), tuple(map(str, self._given.values())))
        if getattr(self, "_cache", (None,))[0] != key:
            self._cache = (key, self._compute_roots())
        return self._cache[1]

    def _compute_roots(self) -> list[tuple[str, str]]:
        """The pairs of :meth:`_roots` (the spellings look at the file system, so they are kept)."""
        pairs: dict[str, str] = {}
        for prefix, repl in self.extra.items():
            pairs.update(dict.fromkeys(path_spellings(prefix), repl))
        for name, repl in (("cache_root", "<cache>/"), ("data_root", ""), ("run_dir", "")):
            given = self._given.get(name)
            if given:
                pairs.update(dict.fromkeys(path_spellings(given), repl))
        return sorted(((p, r) for p, r in pairs.items() if p not in ("/", "")), key=lambda pr: -len(pr[0]))

    def _whole_path(self, s: str) -> str | None:
        """``s`` rewritten when it is one absolute path under a root in a spelling that the text
        match misses (``a//b``, ``a/./b``, ``a/../b``, or reached through a link); else None."""
        if "\n" in s or not os.path.isabs(s):
            return None
        for candidate in dict.fromkeys((os.path.normpath(s), os.path.realpath(s))):
            for prefix, repl in self._roots():
                if candidate == prefix:
                    return repl.rstrip("/") or "."
                if candidate.startswith(prefix.rstrip(os.sep) + os.sep):
                    return repl + candidate[len(prefix.rstrip(os.sep)) + 1:]
        return None

    def text(self, s: str) -> str:
        """``s`` with every known absolute prefix rewritten.

        Parameters
        ----------
        s : str
            Any text, e.g. a path, a caption or a traceback.

        Returns
        -------
        str
            The text; a path equal to a root becomes ``"."`` (or the root's replacement).
        """
        if "/" not in s and "\\" not in s:
            return s
        if not any(c.isspace() for c in s):  # one path: compared normalised, links resolved
            whole = self._whole_path(s)
            if whole is not None:
                return whole
        given = s
        for prefix, repl in self._roots():
            if s == prefix:
                return repl.rstrip("/") or "."
            if prefix in s:  # only where a path starts, not inside a longer path
                s = re.sub(r"(?<![\w.~/\\-])" + re.escape(prefix) + r"(?:/|\\|(?=[\s\"'<>)\],;:]|$))",
                           lambda m, r=repl: r if m.group(0)[-1] in "/\\" else (r.rstrip("/") or "."), s)
        if s == given:  # no root spelled as such: maybe one path spelled otherwise
            return self._whole_path(s) or s
        return s

    def value(self, v: Any) -> Any:
        """A JSON-like value (dict/list/str/path) with its paths rewritten.

        Parameters
        ----------
        v : object
            Nested dicts, lists, tuples, strings and paths; other values are kept.

        Returns
        -------
        object
            The same structure (tuples become lists, paths strings).
        """
        if isinstance(v, Path):
            return self.text(str(v))
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [self.value(x) for x in v]
        return v

    def frame(self, df: "pd.DataFrame") -> "pd.DataFrame":
        """A copy of ``df`` whose text columns hold no absolute path of this machine.

        Parameters
        ----------
        df : pandas.DataFrame
            Any table.

        Returns
        -------
        pandas.DataFrame
            ``df`` itself when it has no text column, else a rewritten copy.
        """
        import pandas as pd

        cols = [c for c in df.columns
                if pd.api.types.is_object_dtype(df[c]) or pd.api.types.is_string_dtype(df[c])]
        if not cols:
            return df
        out = df.copy()
        for c in cols:
            out[c] = out[c].map(lambda x: self.text(str(x)) if isinstance(x, (str, Path)) else x)
        return out


def path_spellings(path: str | Path) -> list[str]:
    """The absolute spellings of one folder on this machine, longest first.

    As given (when absolute), :func:`os.path.abspath` of it, and :func:`os.path.realpath` of
    both (symbolic links resolved): a report may name a data folder in any of them.

    Parameters
    ----------
    path : str or Path
        A folder (need not exist).

    Returns
    -------
    list of str
        Distinct spellings without a trailing separator.

    Examples
    --------
    >>> import os, tempfile
    >>> real = os.path.realpath(tempfile.mkdtemp())
    >>> os.symlink(real, real + "-link")
    >>> path_spellings(real + "-link") == [real + "-link", real]
    True
    """
    s = os.fspath(path)
    forms = [s] if os.path.isabs(s) else []
    forms += [os.path.abspath(s), os.path.realpath(s), os.path.realpath(os.path.abspath(s))]
    out = [f.rstrip(os.sep) or os.sep for f in forms]
    return sorted(dict.fromkeys(out), key=lambda f: -len(f))


def machine_relativizer(run_dir: str | Path, data_root: str | Path | None = None, cache_root: str | Path | None = None,
                        extra: tuple[str | Path, ...] = ()) -> PathRelativizer:
    """A :class:`PathRelativizer` that also knows the places of this machine that leak into
    notebook output (warnings, tracebacks).

    Parameters
    ----------
    run_dir : str or Path
        The report (run) folder.
    data_root, cache_root : str or Path, optional
        The run's data and cache roots (:func:`semcathode.pipeline.report_roots` gives them).
    extra : tuple of str or Path
        Further folders whose paths become relative (e.g. the final report folder of a staging run).

    Returns
    -------
    PathRelativizer
        Also rewriting the folder holding the ``semcathode`` package (the checkout or
        ``site-packages``), the Python prefix (``<python>/``) and the home folder (``~/``).
    """
    pkg_parent = Path(__file__).resolve().parents[2]
    more = {str(Path.home()): "~/", str(Path(sys.base_prefix).resolve()): "<python>/",
            str(Path(sys.prefix).resolve()): "<python>/", str(pkg_parent): ""}
    more.update({os.fspath(e): "" for e in extra})  # every spelling is matched (path_spellings)
    return PathRelativizer(run_dir, data_root, cache_root, extra=more)


def _report_text_files(run_dir: Path) -> list[tuple[Path, str]]:
    """(file, text) of every readable text file of a report folder, in name order."""
    out = []
    for f in sorted(run_dir.rglob("*")):
        if f.is_file() and f.suffix.lower() in REPORT_TEXT_SUFFIXES:
            try:
                out.append((f, f.read_text()))
            except (UnicodeDecodeError, OSError):
                continue
    return out


def _portable_notebook(name: str, text: str, rel: PathRelativizer) -> str:
    """An executed notebook's JSON with its paths rewritten and its papermill paths made relative."""
    nb = json.loads(text)
    pm_meta = nb.get("metadata", {}).get("papermill", {})
    if pm_meta.get("output_path"):
        pm_meta["output_path"] = name
    nb.get("metadata", {}).pop("jupytext", None)  # an executed copy is a product, not a paired source
    nb = rel.value(nb)
    pm_meta = nb.get("metadata", {}).get("papermill", {})
    if os.path.isabs(pm_meta.get("input_path") or ""):  # notebooks from elsewhere: keep the name
        pm_meta["input_path"] = Path(pm_meta["input_path"]).name
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def make_portable(run_dir: str | Path, data_root: str | Path | None = None, cache_root: str | Path | None = None,
                  also: tuple[str | Path, ...] = ()) -> list[Path]:
    """Rewrite every absolute path of this machine in the text files of a report folder.

    Paths under the run folder (or the folders in ``also``, e.g. the final report folder
    while the run is built in a staging folder) become relative to it, micrograph paths relative
    to the data root, cache paths ``<cache>/...``, library paths relative to the folder holding
    the package. Executed notebooks get their papermill ``input_path``/``output_path`` made
    relative too.

    Parameters
    ----------
    run_dir : str or Path
        The report folder.
    data_root, cache_root : str or Path, optional
        The run's data and cache roots (:func:`semcathode.pipeline.report_roots` gives them).
    also : tuple of str or Path
        Further folders whose paths become relative to ``run_dir``.

    Returns
    -------
    list of Path
        The files that were changed.
    """
    run_dir = Path(run_dir).resolve()
    rel = machine_relativizer(run_dir, data_root, cache_root, extra=tuple(also))
    changed = []
    for f, text in _report_text_files(run_dir):
        if f.suffix == ".ipynb":
            new = _portable_notebook(f.name, text, rel)
        elif f.suffix == ".json":
            new = json.dumps(rel.value(json.loads(text)), indent=2, ensure_ascii=False) + "\n"
        else:
            new = rel.text(text)
        if new != text:
            atomic_write_text(f, new)
            changed.append(f)
    return changed


def absolute_paths(run_dir: str | Path, needles: tuple[str | Path, ...]) -> dict[str, list[str]]:
    """Which text files of a report mention one of ``needles`` (absolute paths of a machine).

    Parameters
    ----------
    run_dir : str or Path
        The report folder.
    needles : tuple of str or Path
        Absolute paths to look for (``""`` and ``"/"`` are ignored).

    Returns
    -------
    dict
        Relative file name -> the needles found in it (empty dict: the report is portable).
    """
    run_dir = Path(run_dir)
    needles_s = sorted({str(n) for n in needles if str(n) not in ("", "/")})
    found: dict[str, list[str]] = {}
    for f, text in _report_text_files(run_dir):
        hits = [n for n in needles_s if n in text]
        if hits:
            found[str(f.relative_to(run_dir))] = hits
    return found
