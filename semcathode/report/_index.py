"""The report index: ``README.md`` and ``index.html`` of a run folder, the page a reader opens
first, built from the notebooks' ``outputs.json`` and the run's ``run_state.json``.

Examples
--------
>>> import tempfile
>>> import pandas as pd
>>> from semcathode.report._outputs import NotebookOutputs
>>> tmp = tempfile.TemporaryDirectory()
>>> out = NotebookOutputs(tmp.name, "01_data")
>>> _ = out.table(pd.DataFrame({"label": ["NCM333"], "n": [3]}), "counts", "Images per class", section="Summary")
>>> _ = out.save()
>>> md, html = write_index(tmp.name, notebooks=[("01_data", "Dataset")])
>>> text = md.read_text()
>>> "## Dataset" in text, "### Summary" in text, "| NCM333 | 3 |" in text, "[CSV](01_data/counts.csv)" in text
(True, True, True, True)
>>> "<table>" in html.read_text()
True
>>> tmp.cleanup()
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Sequence

from .._files import atomic_write_text
from ._outputs import OUTPUTS_FILE, read_outputs

__all__ = ["RUN_STATE", "read_run_state", "write_index"]

#: The run's state (profile, configuration hash, per-notebook status and wall time, package
#: versions), written by the pipeline and read by the index.
RUN_STATE = "run_state.json"

_STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
          "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px}"
          "img{max-width:100%}")


def read_run_state(run_dir: str | Path) -> dict:
    """The ``run_state.json`` of a run folder.

    Parameters
    ----------
    run_dir : str or Path
        The run folder.

    Returns
    -------
    dict
        The state; empty when the file is absent or unreadable (a run not started or torn).
    """
    path = Path(run_dir) / RUN_STATE
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return state if isinstance(state, dict) else {}


def write_index(run_dir: str | Path, notebooks: Sequence[tuple[str, str]] | None = None,
                profile: str | None = None) -> tuple[Path, Path]:
    """Write ``README.md`` and ``index.html`` of a run folder from the notebooks' outputs.

    Parameters
    ----------
    run_dir : str or Path
        The run folder (one sub-folder of outputs per notebook).
    notebooks : sequence of (name, title), optional
        The notebooks in report order (the pipeline passes its declaration); default: the
        sub-folders holding notebook outputs, in name order, titled by their names.
    profile : str, optional
        The run's profile, heading the page when ``run_state.json`` does not name one.

    Returns
    -------
    tuple of Path
        The markdown and HTML index.
    """
    import mistune

    run_dir = Path(run_dir)
    state = read_run_state(run_dir)
    if notebooks is None:
        notebooks = [(d.name, d.name) for d in sorted(run_dir.iterdir()) if (d / OUTPUTS_FILE).is_file()]
    text = _index_markdown(run_dir, state, notebooks, state.get("profile", profile or "?"))
    md_path = atomic_write_text(run_dir / "README.md", text)
    # raw HTML in the markdown is escaped, not passed through: the tables already escape their
    # values (report._outputs.markdown_cell), and this holds for any other text that reaches the page
    to_html = mistune.create_markdown(escape=True, plugins=["strikethrough", "footnotes", "table"])
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>semcathode report</title>"
            f"<style>{_STYLE}</style></head><body>" + to_html(text) + "</body></html>")
    html_path = atomic_write_text(run_dir / "index.html", page)
    return md_path, html_path


def _index_markdown(run_dir: Path, state: dict, notebooks: Sequence[tuple[str, str]], profile: str) -> str:
    """The markdown of the index: contents, one part per notebook, run provenance."""
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
            body += _section_markdown(s)
    md += ["## Contents", ""] + toc + ["- [Run provenance](#run-provenance)", ""] + body
    md += ["## Run provenance", ""] + _provenance_lines(run_dir, state) + [""]
    return "\n".join(md)


def _section_markdown(s: dict) -> list[str]:
    """Lines of one report section: its paragraphs, tables and figures."""
    lines = [f"### {s['heading']}", ""]
    lines += [m + "\n" for m in s["markdown"]]
    for t in s["tables"]:
        if t.get("caption"):
            lines.append(f"*{t['caption']}* ([CSV]({t['path']}))\n")
        if t.get("show") and t.get("markdown"):
            lines += [t["markdown"], ""]
    for f in s["figures"]:
        lines += [f"![{f['caption']}]({f['path']})", f"*{f['caption']}*" if f["caption"] else "", ""]
    return lines


def _provenance_lines(run_dir: Path, state: dict) -> list[str]:
    """Configuration, wall times, package versions and data attribution of a run."""
    lines = [f"- Configuration: [config.yaml](config.yaml) (hash `{state.get('config_hash', '?')}`)"]
    walls = {k: v.get("wall_s") for k, v in state.get("notebooks", {}).items()}
    if walls:
        lines.append("- Wall time per notebook: " + ", ".join(f"{k} {v} s" for k, v in walls.items())
                     + f" (total {round(sum(v or 0 for v in walls.values()), 1)} s)")
    if state.get("versions"):
        lines.append("- Package versions: " + ", ".join(f"{k} {v}" for k, v in state["versions"].items()))
    if (run_dir / "ATTRIBUTION.md").exists():
        lines.append("- Data attribution: [ATTRIBUTION.md](ATTRIBUTION.md)")
    return lines


def _anchor(title: str) -> str:
    """The anchor GitHub and mistune give a heading."""
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")
