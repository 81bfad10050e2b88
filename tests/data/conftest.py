"""A writable copy of the synthetic micrograph tree, shared by the data tests."""

import shutil

import pytest


@pytest.fixture()
def tree(tmp_path, synthetic_root):
    """A fresh copy of the synthetic dataset (nine class folders) under ``tmp_path / "data"``."""
    root = tmp_path / "data"
    shutil.copytree(synthetic_root, root)
    return root
