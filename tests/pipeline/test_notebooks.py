"""The one declaration of the notebooks: names, sections, products and where the files are."""

from pathlib import Path

import pytest

from semcathode.config._run import load_config
from semcathode.pipeline._notebooks import (
    ARM_MODELS,
    MANIFEST,
    NOTEBOOK_NAMES,
    NOTEBOOK_SECTIONS,
    NOTEBOOKS,
    Notebook,
    PipelineError,
    notebook_dir,
    notebook_hashes,
    notebook_spec,
)

REPO = Path(__file__).resolve().parents[2]


def test_one_declaration_of_the_notebooks():
    assert NOTEBOOK_NAMES == ("01_data", "02_pretrain", "03_finetune", "04_ablation", "05_gradcam")
    assert all(nb.title and nb.sections for nb in NOTEBOOKS)
    assert "02_pretrain/model.safetensors" in notebook_spec("02_pretrain").products
    assert "03_finetune/model_*.safetensors" in notebook_spec("03_finetune").products
    with pytest.raises(KeyError):
        notebook_spec("06_nothing")


def test_everything_else_is_derived_from_the_declaration():
    assert NOTEBOOK_SECTIONS == {nb.name: nb.sections for nb in NOTEBOOKS}
    assert MANIFEST == "01_data/manifest.csv" and MANIFEST in notebook_spec("01_data").products
    assert ARM_MODELS in notebook_spec("03_finetune").products
    every_section = [s for nb in NOTEBOOKS for s in nb.sections]
    assert len(every_section) == len(set(every_section)), "each section belongs to one notebook"


def test_products_live_in_the_notebooks_own_folder():
    nb = Notebook("06_extra", "Extra", ("cam",), ("a.csv", "model_*.pt"))
    assert nb.products == ("06_extra/a.csv", "06_extra/model_*.pt")
    assert nb.product("a.csv") == "06_extra/a.csv"
    with pytest.raises(KeyError, match="declares no product"):
        nb.product("b.csv")


def test_hash_chain_invalidates_downstream():
    a = notebook_hashes(load_config("smoke"))
    b = notebook_hashes(load_config("smoke", overrides={"stage1.epochs": 2}))
    assert a["01_data"] == b["01_data"]
    assert all(a[nb] != b[nb] for nb in NOTEBOOK_NAMES[1:])


def test_notebook_dir_finds_the_checkout(monkeypatch):
    monkeypatch.delenv("SEMCATHODE_NOTEBOOKS", raising=False)
    assert notebook_dir() == REPO / "notebooks"


def test_notebook_dir_honours_the_environment_and_says_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("SEMCATHODE_NOTEBOOKS", str(tmp_path))
    assert notebook_dir() == tmp_path
    import semcathode.pipeline._notebooks as nbs

    monkeypatch.delenv("SEMCATHODE_NOTEBOOKS")
    monkeypatch.setattr(nbs, "__file__", str(tmp_path / "a" / "b" / "notebooks.py"))
    monkeypatch.setattr(nbs, "_installed_notebook_dirs", lambda first: [tmp_path / "nowhere"])
    with pytest.raises(PipelineError, match="SEMCATHODE_NOTEBOOKS"):
        notebook_dir()
