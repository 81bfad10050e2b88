"""Notebook outputs (figures, tables, JSON, sections) and the report index.

Each notebook collects what it shows in a :class:`NotebookOutputs` and saves it into
``<run_dir>/<notebook>/``; :func:`write_index` turns all of them into ``README.md`` and
``index.html``, the page a reader opens first.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ._files import atomic_save, atomic_write_csv, atomic_write_json, atomic_write_text

__all__ = ["NotebookOutputs", "write_index", "df_to_markdown", "read_outputs", "read_table", "provenance_note"]

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


@dataclass
class NotebookOutputs:
    """What one notebook writes: figures (PNG), tables (CSV), JSON and report sections.

    Parameters
    ----------
    run_dir : str or Path
        The run's output folder (the notebooks' ``out_dir`` parameter).
    name : str
        Notebook name, e.g. ``"01_data"``; files go to ``run_dir/name/``.
    """

    run_dir: Path
    name: str
    sections: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def dir(self) -> Path:
        return self.run_dir / self.name

    def _rel(self, p: Path) -> str:
        return str(p.relative_to(self.run_dir))

    def figure(self, fig: Any, stem: str, caption: str = "", section: str | None = None, dpi: int = 90) -> Path:
        """Save a matplotlib figure as PNG (atomically) and list it under ``section``."""
        path = self.dir / f"{stem}.png"
        atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight"))
        self.files.append(self._rel(path))
        self._add(section, figures=[{"path": self._rel(path), "caption": caption}])
        return path

    def table(self, df: pd.DataFrame, stem: str, caption: str = "", section: str | None = None,
              show: bool = True) -> Path:
        """Save a table as CSV; with ``show`` it is also printed in the report section."""
        path = self.dir / f"{stem}.csv"
        atomic_write_csv(path, df)
        self.files.append(self._rel(path))
        if section is not None:
            self._add(section, tables=[{"path": self._rel(path), "caption": caption, "show": show,
                                        "markdown": df_to_markdown(df) if show else ""}])
        return path

    def json(self, obj: Any, stem: str) -> Path:
        """Save an object as JSON."""
        path = self.dir / f"{stem}.json"
        atomic_write_json(path, obj)
        self.files.append(self._rel(path))
        return path

    def text(self, section: str, markdown: str) -> None:
        """Add a paragraph of markdown to a report section."""
        self._add(section, markdown=[markdown])

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
        return atomic_write_json(self.dir / "outputs.json", {
            "notebook": self.name, "sections": self.sections, "files": self.files,
            "summary": summary or {}, "wall_s": round(time.time() - self.started, 1),
        })


def read_outputs(run_dir: str | Path, name: str) -> dict | None:
    """The ``outputs.json`` of one notebook, or None."""
    p = Path(run_dir) / name / "outputs.json"
    return json.loads(p.read_text()) if p.exists() else None


def write_index(run_dir: str | Path, cfg: Any = None) -> tuple[Path, Path]:
    """Write ``README.md`` and ``index.html`` of a run folder from the notebooks' outputs.

    Returns
    -------
    tuple of Path
        The markdown and HTML index.
    """
    import mistune

    from .pipeline import NOTEBOOKS

    run_dir = Path(run_dir)
    state = json.loads((run_dir / "run_state.json").read_text()) if (run_dir / "run_state.json").exists() else {}
    profile = state.get("profile", getattr(cfg, "profile", "?"))
    md = [f"# semcathode report: profile `{profile}`", ""]
    md.append("Read this page first. Each section below comes from one notebook; the executed notebooks "
              "(`.ipynb`, `.html`), figures (PNG) and tables (CSV/JSON) are linked.")
    md.append("")
    toc = []
    body: list[str] = []
    for spec in NOTEBOOKS:
        nb, title = spec.name, spec.title
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


def provenance_note(weights_info: dict) -> str:
    """Backbone and weights provenance in one sentence for the report."""
    w = weights_info
    text = (f"Backbone `{w.get('backbone')}` (timm `{w.get('timm_name')}`), weights: {w.get('origin')}"
            f"{', sha256 ' + str(w.get('sha256'))[:16] + '…' if w.get('sha256') else ''}.")
    if w.get("note"):
        text += f" Note: {w['note']}"
    return text
