"""The notebooks are thin gallery examples: a parameters cell, public API only, no definitions.

(They are executed top to bottom headless under papermill in tests/test_pipeline.py.)"""

import ast
from pathlib import Path

import nbformat
import pytest

from semcathode.pipeline import NOTEBOOKS

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_shape(name):
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    params = ast.parse(code[0].source)
    names = {t.id for node in params.body for t in getattr(node, "targets", [])}
    assert names == {"profile", "config", "data_dir", "out_dir"}
    for cell in code:
        assert not cell.outputs, "store notebooks without outputs"
        tree = ast.parse(cell.source)
        assert not any(isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda)) for n in ast.walk(tree))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sc":
                assert not node.attr.startswith("_"), f"private API used: sc.{node.attr}"
        assert len(cell.source.splitlines()) <= 8
    assert "out.save(" in code[-1].source


def test_notebooks_match_their_source():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_notebooks", NB_DIR / "build_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, cells in mod.NOTEBOOKS.items():
        built = mod.build(name, cells)
        stored = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
        assert [c.source for c in built.cells] == [c.source for c in stored.cells], name
