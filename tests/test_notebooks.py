"""The notebooks are jupytext pairs (``.py`` percent format + ``.ipynb`` without outputs) and
thin gallery examples: a parameters cell, public API only, no definitions.

(They are executed top to bottom headless under papermill in tests/pipeline/test_run.py.)
Edit either file of a pair, then ``jupytext --sync notebooks/*.py`` (JupyterLab with jupytext
does this on save).
"""

import ast
from pathlib import Path

import jupytext
import nbformat
import pytest

import semcathode as sc
from semcathode.pipeline._notebooks import NOTEBOOKS, notebook_dir

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = [nb.name for nb in NOTEBOOKS]


def _cells(nb) -> list[tuple[str, str, list]]:
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def test_notebook_dir_is_the_checkout_folder():
    assert notebook_dir().resolve() == NB_DIR.resolve()


def test_no_stray_notebooks():
    """Every notebook in the folder is declared in the pipeline, and has its pair."""
    assert sorted(p.stem for p in NB_DIR.glob("*.ipynb")) == sorted(NAMES)
    assert sorted(p.stem for p in NB_DIR.glob("*.py")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_pair_in_sync(name):
    py = jupytext.read(NB_DIR / f"{name}.py")
    ipynb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    assert _cells(py) == _cells(ipynb), (
        f"{name}.py and {name}.ipynb differ: run `jupytext --sync notebooks/{name}.py`")
    for nb in (py, ipynb):
        assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"
        assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert '# %% tags=["parameters"]' in (NB_DIR / f"{name}.py").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_notebook_shape(name):
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1
    params = ast.parse(code[0].source)
    names = {t.id for node in params.body for t in getattr(node, "targets", [])}
    assert names == {"profile", "config", "data_dir", "out_dir"}
    public = set(sc.__all__)
    public_of = {sub: set(getattr(sc, sub).__all__) for sub in sc.SUBPACKAGES}
    for cell in code:
        assert not cell.outputs and cell.execution_count is None, "store notebooks without outputs"
        tree = ast.parse(cell.source)
        assert not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))
                       for n in ast.walk(tree)), "no definitions in notebooks"
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert all(m == "semcathode" for m in mods), f"only `import semcathode as sc`: {ast.unparse(node)}"
                if isinstance(node, ast.Import):
                    assert [a.asname for a in node.names] == ["sc"]
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sc":
                assert node.attr in public or node.attr in public_of, f"sc.{node.attr} is not public"
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                    and isinstance(node.value.value, ast.Name) and node.value.value.id == "sc"):
                sub = node.value.attr
                assert node.attr in public_of.get(sub, ()), f"sc.{sub}.{node.attr} is not in semcathode.{sub}.__all__"
        assert len(cell.source.splitlines()) <= 8
    assert "out.save(" in code[-1].source


def test_import_semcathode_is_light():
    """``import semcathode`` resolves names lazily: no torch, fastai, matplotlib or grad-cam."""
    import subprocess
    import sys

    heavy = ("torch", "fastai", "matplotlib", "pytorch_grad_cam", "timm", "sklearn", "papermill")
    code = f"import sys, semcathode; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_every_public_name_resolves():
    import importlib

    assert len(set(sc.__all__)) == len(sc.__all__)
    assert len([n for n in sc.__all__ if not n.startswith("_")]) <= 20, "the root API stays small"
    for name in sc.__all__:
        assert getattr(sc, name) is not None, name
    assert set(sc.__all__) <= set(dir(sc))
    with pytest.raises(AttributeError):
        sc.no_such_name  # noqa: B018
    # each root name is the object its subpackage exports
    for name, sub in sc._NAMES.items():
        assert getattr(importlib.import_module(f"semcathode.{sub}"), name) is getattr(sc, name), name
    for sub in sc.SUBPACKAGES:
        pkg = importlib.import_module(f"semcathode.{sub}")
        assert getattr(sc, sub) is pkg
        for name, module in pkg._NAMES.items():
            assert getattr(importlib.import_module(f"semcathode.{sub}.{module}"), name) is getattr(pkg, name), name
