"""What each notebook writes: figures (PNG), tables (CSV), JSON and report sections.

Each notebook collects what it shows in a :class:`NotebookOutputs` and saves it into
``<run_dir>/<notebook>/``, ending with ``outputs.json``; later notebooks read it back with
:func:`read_outputs` and :func:`read_table`, and :func:`semcathode.report.write_index` turns all
of them into the report index.
"""

from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._files import json_default, atomic_save, atomic_write_csv, atomic_write_json
from ._portable import PathRelativizer

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["OUTPUTS_FILE", "NotebookOutputs", "df_to_markdown", "markdown_cell", "read_outputs", "read_table", "show_png"]

#: The file a notebook writes last into its output folder: what it showed, and the marker of a
#: completed notebook.
OUTPUTS_FILE = "outputs.json"


#: Characters that would start markup inside a table cell (raw HTML, an entity, a link, an
#: image, a code span, a new column); each is shown literally by a CommonMark backslash escape.
#: Emphasis characters stay as they are (``NCM333_pristine`` reads as it is).
_MD_SPECIAL = re.compile(r"([\\`\[\]!<>&|])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def markdown_cell(value: Any) -> str:
    r"""``value`` as the literal text of one markdown table cell.

    The one escaping point of report tables (README.md and ``index.html`` both come from them):
    every character that could start markup (``< > &`` of raw HTML and entities, ``[ ] !`` of links
    and images, backticks, ``|``, the backslash itself) gets a backslash, so a value (a micrograph
    named ``<img onerror=…>.png``, a labels-CSV ``session`` holding ``<script>``) shows as its text in
    any markdown viewer and in the HTML page; line breaks and other control characters become spaces,
    so a value cannot start a new row.

    Parameters
    ----------
    value : object
        A header or cell value.

    Returns
    -------
    str
        Markdown that renders as the value's text.

    Examples
    --------
    >>> markdown_cell("<script>alert(1)</script>")
    '\\<script\\>alert(1)\\</script\\>'
    >>> markdown_cell("a|b\n[x](javascript:alert(1))")
    'a\\|b \\[x\\](javascript:alert(1))'
    >>> markdown_cell("NCM333_pristine")
    'NCM333_pristine'
    """
    return _MD_SPECIAL.sub(r"\\\1", _CONTROL.sub(" ", str(value)))


def df_to_markdown(df: "pd.DataFrame", floatfmt: str = ".3f", max_rows: int = 60) -> str:
    """A DataFrame as a GitHub markdown table (no extra dependency).

    Parameters
    ----------
    df : pandas.DataFrame
        The table; its index is left out.
    floatfmt : str
        Format of float cells (NaN shows as an empty cell).
    max_rows : int
        Rows shown at most.

    Returns
    -------
    str
        The markdown table; every header and cell goes through :func:`markdown_cell`, so a value
        (a file name, a labels-CSV field) shows as its text and never as markup.

    Examples
    --------
    >>> import pandas as pd
    >>> print(df_to_markdown(pd.DataFrame({"arm": ["pre_ft", "a|b"], "f1": [0.91234, float("nan")]})))
    | arm | f1 |
    |---|---|
    | pre_ft | 0.912 |
    | a\\|b |  |
    >>> print(df_to_markdown(pd.DataFrame({"file": ["<img src=x onerror=alert(1)>.png"]})).splitlines()[-1])
    | \\<img src=x onerror=alert(1)\\>.png |
    """
    df = df.head(max_rows)
    cols = [str(c) for c in df.columns]

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return format(v, floatfmt) if v == v else ""
        return markdown_cell(v)

    cols = [markdown_cell(c) for c in cols]
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

    Parameters
    ----------
    png : bytes
        A PNG image.

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


def _jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values (numpy scalars, paths, frames... through :mod:`semcathode._files`)."""
    return json.loads(json.dumps(obj, default=json_default))


@dataclass
class NotebookOutputs:
    """What one notebook writes: figures (PNG), tables (CSV), JSON and report sections.

    Figures are also displayed inline (in JupyterLab and in the executed notebook). Paths in
    tables, JSON and text are written relative to the run folder or the data root, so the
    report folder can be moved (see :class:`~semcathode.report._portable.PathRelativizer`).

    Parameters
    ----------
    run_dir : str or Path
        The run's output folder (the notebooks' ``out_dir`` parameter).
    name : str
        Notebook name, e.g. ``"01_data"``; files go to ``run_dir/name/``.
    data_root : str or Path, optional
        The folder the micrographs were read from: micrograph paths are written relative to it.
    cache_root : str or Path, optional
        The run's cache folder: cache paths are written as ``<cache>/...``.
        (:func:`semcathode.pipeline.report_roots` gives both from a configuration.)

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> tmp = tempfile.TemporaryDirectory()
    >>> out = NotebookOutputs(tmp.name, "04_ablation")
    >>> out.table(pd.DataFrame({"arm": ["ft_only"], "macro_f1": [0.8]}), "summary", "Arms", section="Statistics").name
    'summary.csv'
    >>> out.text("Statistics", "FT-only reaches **0.80**.")
    >>> [s["heading"] for s in out.sections], out.rel(out.dir / "summary.csv")
    (['Statistics'], '04_ablation/summary.csv')
    >>> out.save({"best": "ft_only"}).name
    'outputs.json'
    >>> read_outputs(tmp.name, "04_ablation")["summary"], read_table(tmp.name, "04_ablation", "summary").arm.tolist()
    ({'best': 'ft_only'}, ['ft_only'])
    >>> tmp.cleanup()
    """

    run_dir: Path
    name: str
    data_root: Path | None = None
    cache_root: Path | None = None
    sections: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.paths = PathRelativizer(self.run_dir, self.data_root, self.cache_root)

    @property
    def dir(self) -> Path:
        """This notebook's output folder, ``run_dir/name``."""
        return self.run_dir / self.name

    def rel(self, path: str | Path) -> str:
        """A path under the run folder as the report links it (relative to the run folder).

        Parameters
        ----------
        path : str or Path
            A file this notebook wrote, e.g. under :attr:`dir`.

        Returns
        -------
        str
            E.g. ``"05_gradcam/gallery.html"``.
        """
        return str(Path(path).relative_to(self.run_dir))

    def figure(self, fig: Any, stem: str, caption: str = "", section: str | None = None, dpi: int = 90) -> Path:
        """Show a matplotlib figure inline, save it as PNG (atomically) and list it under ``section``.

        The figure is closed afterwards (so JupyterLab's inline backend does not show it twice).

        Parameters
        ----------
        fig : matplotlib.figure.Figure
            The figure.
        stem : str
            File name without suffix.
        caption : str
            Caption in the report.
        section : str, optional
            Report section that lists it (None: saved only).
        dpi : int
            Resolution of the PNG.

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
        self.files.append(self.rel(path))
        self._add(section, figures=[{"path": self.rel(path), "caption": caption}])
        show_png(png)
        try:
            import matplotlib.pyplot as plt

            plt.close(fig)
        except Exception:  # not a pyplot-managed figure
            pass
        return _SavedPath(path)

    def table(self, df: "pd.DataFrame", stem: str, caption: str = "", section: str | None = None,
              show: bool = True) -> Path:
        """Save a table as CSV (paths made portable); with ``show`` it is also printed in the report section.

        Parameters
        ----------
        df : pandas.DataFrame
            The table (its index is not written).
        stem : str
            File name without suffix.
        caption : str
            Caption in the report.
        section : str, optional
            Report section that lists it (None: saved only).
        show : bool
            Print the table (as markdown) in the section, not only link it.

        Returns
        -------
        Path
            The CSV file.
        """
        path = self.dir / f"{stem}.csv"
        df = self.paths.frame(df)
        atomic_write_csv(path, df)
        self.files.append(self.rel(path))
        if section is not None:
            self._add(section, tables=[{"path": self.rel(path), "caption": self.paths.text(caption), "show": show,
                                        "markdown": df_to_markdown(df) if show else ""}])
        return path

    def json(self, obj: Any, stem: str) -> Path:
        """Save an object as JSON (paths made portable).

        Parameters
        ----------
        obj : object
            Anything JSON-like (numpy scalars and paths are converted).
        stem : str
            File name without suffix.

        Returns
        -------
        Path
            The JSON file.
        """
        path = self.dir / f"{stem}.json"
        atomic_write_json(path, self.paths.value(_jsonable(obj)))
        self.files.append(self.rel(path))
        return path

    def text(self, section: str, markdown: str) -> None:
        """Add a paragraph of markdown to a report section.

        Parameters
        ----------
        section : str
            Report section (created on first use, in order).
        markdown : str
            The paragraph (absolute paths made portable).
        """
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
        """Write ``outputs.json`` (the marker of a completed notebook).

        Parameters
        ----------
        summary : dict, optional
            Headline values of the notebook (paths made portable).

        Returns
        -------
        Path
            ``run_dir/name/outputs.json``.
        """
        return atomic_write_json(self.dir / OUTPUTS_FILE, {
            "notebook": self.name, "sections": self.sections, "files": self.files,
            "summary": self.paths.value(_jsonable(summary or {})), "wall_s": round(time.time() - self.started, 1),
        })


def read_outputs(run_dir: str | Path, name: str) -> dict | None:
    """The ``outputs.json`` of one notebook.

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    name : str
        Notebook name.

    Returns
    -------
    dict or None
        Its sections, files, summary and wall time; None when the notebook has not completed.

    Raises
    ------
    json.JSONDecodeError
        The file exists but is not valid JSON.
    """
    p = Path(run_dir) / name / OUTPUTS_FILE
    return json.loads(p.read_text()) if p.exists() else None


def read_table(run_dir: str | Path, notebook: str, stem: str) -> "pd.DataFrame":
    """A CSV table written by an earlier notebook of the same run.

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    notebook : str
        The notebook that wrote it, e.g. ``"02_pretrain"``.
    stem : str
        The table's name (its file name without ``.csv``).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    FileNotFoundError
        The table is absent (the message says which notebook to run first).
    """
    import pandas as pd

    path = Path(run_dir) / notebook / f"{stem}.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run notebook {notebook} first (same out_dir)")
    return pd.read_csv(path, encoding="utf-8", encoding_errors="surrogateescape")  # paths as written
