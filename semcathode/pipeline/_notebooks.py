"""The one declaration of the notebooks 01 -> 05: names, titles, configuration sections,
products and expected wall time, and where the notebook files are.

Everything else about the notebooks is derived from :data:`NOTEBOOKS`: the run order
(:data:`NOTEBOOK_NAMES`), the configuration each depends on (:data:`NOTEBOOK_SECTIONS`,
:func:`notebook_hashes`), the files a completed run must hold (:attr:`Notebook.products`) and
the paths later steps read back (:data:`MANIFEST`, :data:`ARM_MODELS`).

Examples
--------
>>> from semcathode.pipeline._notebooks import MANIFEST, NOTEBOOK_NAMES, notebook_spec
>>> NOTEBOOK_NAMES[0], notebook_spec("02_pretrain").products
('01_data', ('02_pretrain/model.safetensors',))
>>> MANIFEST
'01_data/manifest.csv'
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Sequence

from ..config._sections import ConfigError, RunConfig, config_hash

__all__ = [
    "ARM_MODELS",
    "MANIFEST",
    "NOTEBOOKS",
    "NOTEBOOK_NAMES",
    "NOTEBOOK_SECTIONS",
    "Notebook",
    "PipelineError",
    "UnknownNotebookError",
    "check_notebook_names",
    "notebook_dir",
    "notebook_hashes",
    "notebook_spec",
]


@dataclass(frozen=True)
class Notebook:
    """One notebook of the pipeline and what it must leave behind.

    Attributes
    ----------
    name : str
        File stem in the notebooks folder and the name of its output folder.
    title : str
        Heading of its part of the report.
    sections : tuple of str
        Configuration sections, or single keys of one (``"cam.arms"``), it depends on (besides those of
        the notebooks before it).
    files : tuple of str
        Glob patterns, relative to its output folder, that must each match a file for the
        notebook to count as done (besides its executed copy, ``outputs.json`` and the files
        it lists).
    expected_s : int
        Wall time assumed for the progress estimate before a first run measured it.

    Examples
    --------
    >>> nb = Notebook("01_data", "Dataset", ("data",), ("manifest.csv",))
    >>> nb.products, nb.product("manifest.csv")
    (('01_data/manifest.csv',), '01_data/manifest.csv')
    """

    name: str
    title: str
    sections: tuple[str, ...]
    files: tuple[str, ...] = ()
    expected_s: int = 120

    @property
    def products(self) -> tuple[str, ...]:
        """The declared files as glob patterns relative to the run folder (``<name>/<file>``)."""
        return tuple(f"{self.name}/{f}" for f in self.files)

    def product(self, file: str) -> str:
        """One declared file, relative to the run folder.

        Parameters
        ----------
        file : str
            One of :attr:`files`, e.g. ``"manifest.csv"``.

        Returns
        -------
        str
            ``"<name>/<file>"``.

        Raises
        ------
        KeyError
            ``file`` is not declared for this notebook.
        """
        if file not in self.files:
            raise KeyError(f"notebook {self.name} declares no product {file!r}; it declares: {', '.join(self.files)}")
        return f"{self.name}/{file}"


#: The notebooks in run order: the one declaration used by the runner, the report and the tests.
NOTEBOOKS: tuple[Notebook, ...] = (
    Notebook("01_data", "Dataset", ("data", "preprocess", "target", "morphology", "evaluate.n_boot"),
             ("manifest.csv",), 60),
    Notebook("02_pretrain", "Stage 1: pretraining on the source domain",
             ("model", "stage1", "protocol", "evaluate"), ("model.safetensors",), 240),
    Notebook("03_finetune", "Stage 2: fine-tuning on the target domain",
             ("stage2", "cam.arms"), ("model_*.safetensors",), 240),  # 03 exports the arms 05 explains
    Notebook("04_ablation", "Ablation, statistics and validity checks", ("validity",), (), 300),
    Notebook("05_gradcam", "Grad-CAM: what the model looks at", ("cam",), (), 120),
)

#: Notebook names in run order.
NOTEBOOK_NAMES: tuple[str, ...] = tuple(nb.name for nb in NOTEBOOKS)

#: Configuration sections each notebook depends on (derived from :data:`NOTEBOOKS`).
NOTEBOOK_SECTIONS: dict[str, tuple[str, ...]] = {nb.name: nb.sections for nb in NOTEBOOKS}


class PipelineError(RuntimeError):
    """The pipeline cannot run (e.g. the notebooks are not found) or a notebook failed; the message
    names the notebook, the cell and the error."""


class UnknownNotebookError(ConfigError):
    """A notebook name asked for is not one of :data:`NOTEBOOK_NAMES` (bad input: ``run`` exits 2).
    The message names the bad names and lists the known ones."""


def check_notebook_names(names: Sequence[str]) -> list[str]:
    """``names`` if each is a declared notebook named once; checked before any path is built from one.

    Parameters
    ----------
    names : sequence of str
        Notebook names, e.g. from ``semcathode run --notebooks``.

    Returns
    -------
    list of str
        The names, in the given order.

    Raises
    ------
    UnknownNotebookError
        A name is not one of :data:`NOTEBOOK_NAMES` (e.g. ``..``) or is given twice.

    Examples
    --------
    >>> check_notebook_names(["01_data", "02_pretrain"])
    ['01_data', '02_pretrain']
    >>> check_notebook_names(["01_data", "../x"])
    Traceback (most recent call last):
    ...
    semcathode.pipeline._notebooks.UnknownNotebookError: unknown notebook '../x'; known: 01_data, 02_pretrain, 03_finetune, 04_ablation, 05_gradcam
    """
    if isinstance(names, (str, bytes)):  # one name, not its characters
        names = [names]  # type: ignore[list-item]
    names = list(names)
    bad = [n for n in names if not isinstance(n, str) or n not in NOTEBOOK_NAMES]
    if bad:
        raise UnknownNotebookError(f"unknown notebook{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))}; "
                                   f"known: {', '.join(NOTEBOOK_NAMES)}")
    twice = sorted({n for n in names if names.count(n) > 1}, key=names.index)
    if twice:
        raise UnknownNotebookError(f"notebook {', '.join(map(repr, twice))} named more than once; "
                                   f"known: {', '.join(NOTEBOOK_NAMES)}")
    return names


def notebook_spec(name: str) -> Notebook:
    """The declaration of notebook ``name``.

    Parameters
    ----------
    name : str
        One of :data:`NOTEBOOK_NAMES`.

    Returns
    -------
    Notebook
        Its declaration.

    Raises
    ------
    KeyError
        ``name`` is not one of :data:`NOTEBOOK_NAMES`.

    Examples
    --------
    >>> notebook_spec("03_finetune").products
    ('03_finetune/model_*.safetensors',)
    """
    for nb in NOTEBOOKS:
        if nb.name == name:
            return nb
    raise KeyError(f"unknown notebook {name!r}; known: {', '.join(NOTEBOOK_NAMES)}")


#: The working manifest notebook 01 writes and later notebooks read back (``sc.load_study``); in a
#: published report its ``path`` column is relative to the data root.
MANIFEST: str = notebook_spec("01_data").product("manifest.csv")

#: The models notebook 03 exports, one per arm (``*`` stands for the arm), that notebook 05 explains.
ARM_MODELS: str = notebook_spec("03_finetune").product("model_*.safetensors")


def notebook_dir() -> Path:
    """Folder holding the notebooks.

    ``$SEMCATHODE_NOTEBOOKS`` if set; else ``notebooks/`` of the checkout this package runs
    from (source tree or editable install); else the copy an installed wheel put in
    ``<prefix>/share/semcathode/notebooks`` (found through the distribution's file list).

    Returns
    -------
    Path
        The folder holding ``01_data.ipynb`` and the other notebooks.

    Raises
    ------
    PipelineError
        None of those places holds the notebooks.
    """
    env = os.environ.get("SEMCATHODE_NOTEBOOKS")
    if env:
        return Path(env)
    first = f"{NOTEBOOK_NAMES[0]}.ipynb"
    checkout = Path(__file__).resolve().parents[2]
    candidates = []
    if (checkout / "pyproject.toml").exists():
        candidates.append(checkout / "notebooks")
    candidates += _installed_notebook_dirs(first)
    for d in candidates:
        if (d / first).is_file():
            return d
    raise PipelineError(f"cannot find the notebooks (looked in {', '.join(map(str, candidates)) or 'nothing'}); "
                        "set SEMCATHODE_NOTEBOOKS")


def _installed_notebook_dirs(first: str) -> list[Path]:
    """Where an installed distribution put its notebook data files."""
    out = []
    try:
        dist = metadata.distribution("semcathode")
        for f in dist.files or []:
            if f.name == first and f.parent.name == "notebooks":
                out.append(Path(dist.locate_file(f)).resolve().parent)
    except metadata.PackageNotFoundError:
        pass
    out.append(Path(sys.prefix) / "share" / "semcathode" / "notebooks")
    return out


def notebook_hashes(cfg: RunConfig, notebooks: Sequence[str] = NOTEBOOK_NAMES) -> dict[str, str]:
    """Chained configuration hash per notebook: a change upstream invalidates downstream.

    Parameters
    ----------
    cfg : RunConfig
        The run's configuration.
    notebooks : sequence of str
        Notebook names in run order (default all).

    Returns
    -------
    dict of str to str
        Notebook name -> 12-hex-digit hash of its sections and of every notebook before it.

    Examples
    --------
    >>> from semcathode.config._run import load_config
    >>> a = notebook_hashes(load_config("smoke"))
    >>> b = notebook_hashes(load_config("smoke", overrides={"stage2.epochs": 2}))
    >>> [nb for nb in a if a[nb] != b[nb]]
    ['03_finetune', '04_ablation', '05_gradcam']
    """
    out, prev = {}, ""
    for nb in notebooks:
        h = config_hash(cfg, *NOTEBOOK_SECTIONS.get(nb, ()))
        prev = hashlib.sha256(f"{prev}|{nb}|{h}".encode()).hexdigest()[:12]
        out[nb] = prev
    return out
