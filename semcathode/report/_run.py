"""A finished (or running) run folder, read by the names of its results instead of its folders.

The notebooks of a run write into ``<run>/<notebook>/``; a later notebook reads what an earlier one
wrote. :func:`open_run` gives a :class:`Run` whose ``table``, ``figure``, ``model`` and ``models``
look a result up by its name in whichever notebook folder holds it, so a notebook says "the
linear-probe table", not ``"02_pretrain/linear_probe.csv"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover - types only
    import pandas as pd

    from ..models._export import ExportedModel

__all__ = ["Run", "open_run"]


@dataclass(frozen=True)
class Run:
    """A run folder: ``<root>/<notebook>/<result>`` files, looked up by the result's name.

    Attributes
    ----------
    root : Path
        The run folder (``out_dir`` of the notebooks, ``--out`` of ``semcathode run``).

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "02_pretrain").mkdir()
    >>> pd.DataFrame({"arm": ["probe"], "macro_f1": [0.95]}).to_csv(root / "02_pretrain" / "linear_probe.csv", index=False)
    >>> run = open_run(root)
    >>> run.table("linear_probe").macro_f1.tolist()
    [0.95]
    >>> run.path("linear_probe.csv").relative_to(root).as_posix()
    '02_pretrain/linear_probe.csv'
    """

    root: Path

    def path(self, file: str) -> Path:
        """The one file called ``file`` in a notebook folder of the run.

        Parameters
        ----------
        file : str
            A file name, e.g. ``"manifest.csv"`` or ``"model_ft_only.safetensors"``.

        Returns
        -------
        Path

        Raises
        ------
        FileNotFoundError
            No notebook folder of the run holds it (the message names the run and what it holds).
        ValueError
            Several do (the message names them).
        """
        if Path(file).name != file or file in ("", ".", ".."):
            raise ValueError(f"{file!r}: give a result's file name, not a path")
        found = sorted(p for p in self.root.glob(f"*/{file}") if p.is_file() and not p.parent.name.startswith("."))
        if not found:
            held = sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
            raise FileNotFoundError(f"{self.root}: no notebook folder holds {file} (folders: "
                                    f"{', '.join(held) or 'none'}); run the notebook that writes it first")
        if len(found) > 1:
            raise ValueError(f"{self.root}: several notebook folders hold {file}: "
                             f"{', '.join(p.parent.name for p in found)}")
        return found[0]

    @property
    def manifest(self) -> Path:
        """The run's manifest (``manifest.csv``, written by the data notebook)."""
        return self.path("manifest.csv")

    def table(self, name: str) -> "pd.DataFrame":
        """The table ``name`` (``<name>.csv``) an earlier notebook wrote.

        Parameters
        ----------
        name : str
            The table's name, e.g. ``"linear_probe"`` or ``"arm_results"``.

        Returns
        -------
        pandas.DataFrame
        """
        import pandas as pd

        return pd.read_csv(self.path(f"{name}.csv"), encoding="utf-8", encoding_errors="surrogateescape")

    def figure(self, name: str) -> Path:
        """The figure ``name`` (``<name>.png``), e.g. ``"confusion"``; display it with ``IPython.display.Image``."""
        return self.path(f"{name}.png")

    def model(self, arm: str) -> "ExportedModel":
        """The exported model of ``arm`` (``"stage1"`` for the pretrained source model).

        Parameters
        ----------
        arm : str
            ``"stage1"`` (``model.safetensors``) or an arm name (``model_<arm>.safetensors``).

        Returns
        -------
        ExportedModel
        """
        from ..models._export import load_model

        return load_model(self.path("model.safetensors" if arm == "stage1" else f"model_{arm}.safetensors"))

    def models(self, arms: Sequence[str]) -> "dict[str, ExportedModel]":
        """:meth:`model` of each arm, in the order of ``arms``."""
        return {arm: self.model(arm) for arm in arms}


def open_run(out_dir: str | Path) -> Run:
    """The run in ``out_dir`` (its results are read by name: :class:`Run`).

    Parameters
    ----------
    out_dir : str or Path

    Returns
    -------
    Run

    Raises
    ------
    FileNotFoundError
        ``out_dir`` is not a folder.
    """
    root = Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such run folder")
    return Run(root)
