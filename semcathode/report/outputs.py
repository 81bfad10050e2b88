"""Notebook outputs (figures, tables, JSON, sections) and the report index.

Each notebook collects what it shows in a :class:`NotebookOutputs` and saves it into
``<run_dir>/<notebook>/``; :func:`write_index` turns all of them into ``README.md`` and
``index.html``, the page a reader opens first.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from .._files import atomic_save, atomic_write_csv, atomic_write_json, atomic_write_text

__all__ = ["NotebookOutputs", "PathRelativizer", "absolute_paths", "make_portable", "write_index", "df_to_markdown", "read_outputs", "read_table"]

def df_to_markdown(df: pd.DataFrame, floatfmt: str = ".3f", max_rows: int = 60) -> str:
    """A DataFrame as a GitHub markdown table (no extra dependency)."""
    df = df.head(max_rows)
    cols = [str(c) for c in df.columns]

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return format(v, floatfmt) if v == v else ""
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


class _SavedPath(type(Path())):
    """The path of a saved figure; shows nothing as a cell's last value (the figure was shown)."""

    def _ipython_display_(self) -> None:
        pass


def _in_ipython() -> bool:
    import sys

    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    return get_ipython() is not None


def show_png(png: bytes) -> bool:
    """Display PNG bytes inline when running inside IPython/Jupyter (an ``image/png`` output).

    Returns
    -------
    bool
        Whether it was displayed (False outside IPython).
    """
    if not _in_ipython():
        return False
    from IPython.display import Image, display

    display(Image(data=png, format="png"))
    return True


@dataclass
class PathRelativizer:
    """Rewrites absolute paths of this machine into portable ones for a report.

    A path under the run folder becomes relative to it; under the data root (named once in the
    run's ``config.yaml``) relative to the data root; under the cache root ``<cache>/...``.
    Absolute prefixes inside longer text are rewritten the same way.

    Parameters
    ----------
    run_dir : str or Path
        The report (run) folder.
    data_root : str or Path, optional
        Folder the micrographs were read from.
    cache_root : str or Path, optional
        Cache folder of pre-processed inputs and downloads.
    """

    run_dir: Path
    data_root: Path | None = None
    cache_root: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir).resolve()
        self.data_root = Path(self.data_root).resolve() if self.data_root else None
        self.cache_root = Path(self.cache_root).resolve() if self.cache_root else None

    def _roots(self) -> list[tuple[str, str]]:
        """(absolute prefix, replacement) pairs, most specific (longest) first."""
        pairs = dict(self.extra)
        if self.cache_root is not None:
            pairs[str(self.cache_root)] = "<cache>/"
        if self.data_root is not None:
            pairs[str(self.data_root)] = ""
        pairs[str(self.run_dir)] = ""
        return sorted(((p, r) for p, r in pairs.items() if p not in ("/", "")), key=lambda pr: -len(pr[0]))

    def text(self, s: str) -> str:
        """``s`` with every known absolute prefix rewritten."""
        if "/" not in s and "\\" not in s:
            return s
        for prefix, repl in self._roots():
            if s == prefix:
                return repl.rstrip("/") or "."
            if prefix in s:  # only where a path starts, not inside a longer path
                s = re.sub(r"(?<![\w.~/\\-])" + re.escape(prefix) + r"(?:/|\\|(?=[\s\"'<>)\],;:]|$))",
                           lambda m, r=repl: r if m.group(0)[-1] in "/\\" else (r.rstrip("/") or "."), s)
        return s

    def value(self, v: Any) -> Any:
        """A JSON-like value (dict/list/str/path) with its paths rewritten."""
        if isinstance(v, Path):
            return self.text(str(v))
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [self.value(x) for x in v]
        return v

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``df`` whose text columns hold no absolute path of this machine."""
        cols = [c for c in df.columns
                if pd.api.types.is_object_dtype(df[c]) or pd.api.types.is_string_dtype(df[c])]
        if not cols:
            return df
        out = df.copy()
        for c in cols:
            out[c] = out[c].map(lambda x: self.text(str(x)) if isinstance(x, (str, Path)) else x)
        return out


def _roots_from_config(cfg: Any) -> tuple[Path | None, Path | None]:
    """Data root and cache root of a configuration (None where they cannot be known)."""
    if cfg is None:
        return None, None
    data_root = cache_root = None
    try:
        from ..data.factory import data_dir_for

        data_root = data_dir_for(cfg)
    except Exception:  # a report must not fail because the data root cannot be resolved
        pass
    try:
        from ..config.paths import cache_root as _cache_root

        cache_root = _cache_root(cfg)
    except Exception:
        pass
    return data_root, cache_root


@dataclass
class NotebookOutputs:
    """What one notebook writes: figures (PNG), tables (CSV), JSON and report sections.

    Figures are also displayed inline (in JupyterLab and in the executed notebook). Paths in
    tables, JSON and text are written relative to the run folder or the data root, so the
    report folder can be moved (see :class:`PathRelativizer`).

    Parameters
    ----------
    run_dir : str or Path
        The run's output folder (the notebooks' ``out_dir`` parameter).
    name : str
        Notebook name, e.g. ``"01_data"``; files go to ``run_dir/name/``.
    cfg : RunConfig, optional
        The run's configuration: names the data root that micrograph paths are made relative to.
    """

    run_dir: Path
    name: str
    cfg: Any = None
    sections: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        data_root, cache_root = _roots_from_config(self.cfg)
        self.paths = PathRelativizer(self.run_dir, data_root, cache_root)

    @property
    def dir(self) -> Path:
        return self.run_dir / self.name

    def _rel(self, p: Path) -> str:
        return str(p.relative_to(self.run_dir))

    def figure(self, fig: Any, stem: str, caption: str = "", section: str | None = None, dpi: int = 90) -> Path:
        """Show a matplotlib figure inline, save it as PNG (atomically) and list it under ``section``.

        The figure is closed afterwards (so JupyterLab's inline backend does not show it twice).

        Returns
        -------
        Path
            The PNG file (it displays as nothing, so a cell ending in this call shows the figure only).
        """
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        png = buf.getvalue()
        path = self.dir / f"{stem}.png"
        atomic_save(path, lambda tmp: Path(tmp).write_bytes(png))
        self.files.append(self._rel(path))
        self._add(section, figures=[{"path": self._rel(path), "caption": caption}])
        show_png(png)
        try:
            import matplotlib.pyplot as plt

            plt.close(fig)
        except Exception:  # not a pyplot-managed figure
            pass
        return _SavedPath(path)

    def table(self, df: pd.DataFrame, stem: str, caption: str = "", section: str | None = None,
              show: bool = True) -> Path:
        """Save a table as CSV (paths made portable); with ``show`` it is also printed in the report section."""
        path = self.dir / f"{stem}.csv"
        df = self.paths.frame(df)
        atomic_write_csv(path, df)
        self.files.append(self._rel(path))
        if section is not None:
            self._add(section, tables=[{"path": self._rel(path), "caption": self.paths.text(caption), "show": show,
                                        "markdown": df_to_markdown(df) if show else ""}])
        return path

    def json(self, obj: Any, stem: str) -> Path:
        """Save an object as JSON (paths made portable)."""
        path = self.dir / f"{stem}.json"
        atomic_write_json(path, self.paths.value(json.loads(json.dumps(obj, default=_jsonable))))
        self.files.append(self._rel(path))
        return path

    def text(self, section: str, markdown: str) -> None:
        """Add a paragraph of markdown to a report section."""
        self._add(section, markdown=[self.paths.text(markdown)])

    def _add(self, section: str | None, **items: list) -> None:
        if section is None:
            return
        for s in self.sections:
            if s["heading"] == section:
                break
        else:
            s = {"heading": section, "markdown": [], "figures": [], "tables": []}
            self.sections.append(s)
        for k, v in items.items():
            s[k].extend(v)

    def save(self, summary: dict | None = None) -> Path:
        """Write ``outputs.json`` (the marker of a completed notebook)."""
        summary = self.paths.value(json.loads(json.dumps(summary or {}, default=_jsonable)))
        return atomic_write_json(self.dir / "outputs.json", {
            "notebook": self.name, "sections": self.sections, "files": self.files,
            "summary": summary, "wall_s": round(time.time() - self.started, 1),
        })


#: Suffixes of the text files of a report that :func:`make_portable` rewrites.
REPORT_TEXT_SUFFIXES: tuple[str, ...] = (".md", ".html", ".csv", ".json", ".yaml", ".yml", ".ipynb", ".txt")


def machine_relativizer(run_dir: str | Path, cfg: Any = None, extra: tuple[str | Path, ...] = ()) -> PathRelativizer:
    """A :class:`PathRelativizer` that also knows the places of this machine that leak into
    notebook output (warnings, tracebacks): the folder holding the ``semcathode`` package (the
    checkout or ``site-packages``), the Python prefix and the home folder."""
    import sys

    data_root, cache_root = _roots_from_config(cfg)
    pkg_parent = Path(__file__).resolve().parents[2]
    more = {str(Path.home()): "~/", str(Path(sys.base_prefix).resolve()): "<python>/",
            str(Path(sys.prefix).resolve()): "<python>/", str(pkg_parent): ""}
    more.update({str(Path(e).resolve()): "" for e in extra})
    return PathRelativizer(run_dir, data_root, cache_root, extra=more)


def make_portable(run_dir: str | Path, cfg: Any = None, also: tuple[str | Path, ...] = ()) -> list[Path]:
    """Rewrite every absolute path of this machine in the text files of a report folder.

    Paths under the run folder (or the folders in ``also``, e.g. the final report folder
    while the run is built in a staging folder) become relative to it, micrograph paths relative
    to the data root, cache paths ``<cache>/...``, library paths relative to the folder holding
    the package. Executed notebooks get their papermill ``input_path``/``output_path`` made
    relative too.

    Returns
    -------
    list of Path
        The files that were changed.
    """
    run_dir = Path(run_dir).resolve()
    rel = machine_relativizer(run_dir, cfg, extra=tuple(also))
    changed = []
    for f in sorted(run_dir.rglob("*")):
        if not f.is_file() or f.suffix.lower() not in REPORT_TEXT_SUFFIXES:
            continue
        try:
            text = f.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if f.suffix == ".ipynb":
            nb = json.loads(text)
            pm_meta = nb.get("metadata", {}).get("papermill", {})
            if pm_meta.get("output_path"):
                pm_meta["output_path"] = f.name
            nb.get("metadata", {}).pop("jupytext", None)  # an executed copy is a product, not a paired source
            nb = rel.value(nb)
            pm_meta = nb.get("metadata", {}).get("papermill", {})
            if os.path.isabs(pm_meta.get("input_path") or ""):  # notebooks from elsewhere: keep the name
                pm_meta["input_path"] = Path(pm_meta["input_path"]).name
            new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        elif f.suffix in (".json",):
            new = json.dumps(rel.value(json.loads(text)), indent=2, ensure_ascii=False) + "\n"
        else:
            new = rel.text(text)
        if new != text:
            atomic_write_text(f, new)
            changed.append(f)
    return changed


def absolute_paths(run_dir: str | Path, needles: tuple[str | Path, ...]) -> dict[str, list[str]]:
    """Which text files of a report mention one of ``needles`` (absolute paths of a machine).

    Returns
    -------
    dict
        Relative file name -> the needles found in it (empty dict: the report is portable).
    """
    run_dir = Path(run_dir)
    needles_s = sorted({str(n) for n in needles if str(n) not in ("", "/")})
    found: dict[str, list[str]] = {}
    for f in sorted(run_dir.rglob("*")):
        if f.is_file() and f.suffix.lower() in REPORT_TEXT_SUFFIXES:
            try:
                text = f.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            hits = [n for n in needles_s if n in text]
            if hits:
                found[str(f.relative_to(run_dir))] = hits
    return found


def _jsonable(o: Any) -> Any:
    from .._files import _json_default

    return _json_default(o)


def read_outputs(run_dir: str | Path, name: str) -> dict | None:
    """The ``outputs.json`` of one notebook, or None."""
    p = Path(run_dir) / name / "outputs.json"
    return json.loads(p.read_text()) if p.exists() else None


def write_index(run_dir: str | Path, cfg: Any = None,
                notebooks: Sequence[tuple[str, str]] | None = None) -> tuple[Path, Path]:
    """Write ``README.md`` and ``index.html`` of a run folder from the notebooks' outputs.

    Parameters
    ----------
    run_dir : str or Path
        The run folder (one sub-folder of outputs per notebook).
    cfg : RunConfig, optional
        The run's configuration (its profile heads the page when ``run_state.json`` is absent).
    notebooks : sequence of (name, title), optional
        The notebooks in report order (the pipeline passes its declaration); default: the
        sub-folders holding notebook outputs, in name order, titled by their names.

    Returns
    -------
    tuple of Path
        The markdown and HTML index.
    """
    import mistune

    run_dir = Path(run_dir)
    state = json.loads((run_dir / "run_state.json").read_text()) if (run_dir / "run_state.json").exists() else {}
    if notebooks is None:
        notebooks = [(d.name, d.name) for d in sorted(run_dir.iterdir()) if (d / "outputs.json").is_file()]
    profile = state.get("profile", getattr(cfg, "profile", "?"))
    md = [f"# semcathode report: profile `{profile}`", ""]
    md.append("Read this page first. Each section below comes from one notebook; the executed notebooks "
              "(`.ipynb`, `.html`), figures (PNG) and tables (CSV/JSON) are linked.")
    md.append("")
    toc = []
    body: list[str] = []
    for nb, title in notebooks:
        out = read_outputs(run_dir, nb)
        if out is None:
            continue
        toc.append(f"- [{title}](#{_anchor(title)})")
        body += [f"## {title}", "", f"Notebook: [{nb}.ipynb]({nb}.ipynb) · [HTML]({nb}.html) · "
                 f"wall time {out.get('wall_s', '?')} s", ""]
        for s in out["sections"]:
            body += [f"### {s['heading']}", ""]
            body += [m + "\n" for m in s["markdown"]]
            for t in s["tables"]:
                if t.get("caption"):
                    body.append(f"*{t['caption']}* ([CSV]({t['path']}))\n")
                if t.get("show") and t.get("markdown"):
                    body += [t["markdown"], ""]
            for f in s["figures"]:
                body += [f"![{f['caption']}]({f['path']})", f"*{f['caption']}*" if f["caption"] else "", ""]
    md += ["## Contents", ""] + toc + ["- [Run provenance](#run-provenance)", ""] + body
    md += ["## Run provenance", ""]
    md.append(f"- Configuration: [config.yaml](config.yaml) (hash `{state.get('config_hash', '?')}`)")
    walls = {k: v.get("wall_s") for k, v in state.get("notebooks", {}).items()}
    if walls:
        md.append("- Wall time per notebook: " + ", ".join(f"{k} {v} s" for k, v in walls.items())
                  + f" (total {round(sum(v or 0 for v in walls.values()), 1)} s)")
    if state.get("versions"):
        md.append("- Package versions: " + ", ".join(f"{k} {v}" for k, v in state["versions"].items()))
    if (run_dir / "ATTRIBUTION.md").exists():
        md.append("- Data attribution: [ATTRIBUTION.md](ATTRIBUTION.md)")
    md.append("")
    text = "\n".join(md)
    md_path = atomic_write_text(run_dir / "README.md", text)
    html = mistune.html(text)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>semcathode report</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px}"
        "img{max-width:100%}</style></head><body>" + html + "</body></html>"
    )
    html_path = atomic_write_text(run_dir / "index.html", page)
    return md_path, html_path


def _anchor(title: str) -> str:
    import re

    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def read_table(run_dir: str | Path, notebook: str, stem: str) -> pd.DataFrame:
    """A CSV table written by an earlier notebook of the same run."""
    path = Path(run_dir) / notebook / f"{stem}.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run notebook {notebook} first (same out_dir)")
    return pd.read_csv(path)


