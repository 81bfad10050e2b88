"""Shared fixtures: a private cache, synthetic micrograph folders, the real-data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    env = os.environ.get("SEMCATHODE_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


KAIST = shared_data() / "kaist-ncm"
SEM_TIFF = shared_data() / "sem-tiff"
needs_kaist = pytest.mark.skipif(
    not (KAIST / "manifest.csv").exists(),
    reason=f"real KAIST NCM images not found at {KAIST} (set SEMCATHODE_SHARED_DATA)",
)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Point the package cache at a session temp folder (weights cache kept shared to save time)."""
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("SEMCATHODE_CACHE")
    os.environ["SEMCATHODE_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("SEMCATHODE_CACHE", None)
    else:
        os.environ["SEMCATHODE_CACHE"] = old


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small synthetic nine-class folder tree (8 images per class, 120x160 incl. the bar)."""
    from semcathode.data.synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(root, n_per_class=8, size=(128, 160), seed=0)
    return root


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a test module: on a busy 2-core machine torch's thread pool
    oversubscribes and tiny convolutions get many times slower. Restored afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
