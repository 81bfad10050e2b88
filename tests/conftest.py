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
needs_kaist_images = pytest.mark.skipif(
    not (KAIST / "images").is_dir(),
    reason=f"KAIST NCM images not found under {KAIST} (set SEMCATHODE_SHARED_DATA)",
)
needs_semtiff = pytest.mark.skipif(
    not SEM_TIFF.is_dir(),
    reason=f"vendor SEM TIFFs not found under {SEM_TIFF} (set SEMCATHODE_SHARED_DATA)",
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
    from semcathode.data._synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(root, n_per_class=8, size=(128, 160), seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """An exported, untrained Lite0 on the nine classes that resizes every frame to one 64-px tile."""
    import timm
    import torch

    from semcathode.data._preprocess import PreprocessParams
    from semcathode.data._schema import default_schema
    from semcathode.models._export import export_model

    d = tmp_path_factory.mktemp("tiny-model")
    torch.manual_seed(0)
    classes = default_schema().classes
    net = timm.create_model("tf_efficientnet_lite0", num_classes=len(classes), pretrained=False).eval()
    return export_model(net, d / "m.safetensors", classes, "efficientnet_lite0", "tf_efficientnet_lite0",
                        PreprocessParams("resize", 64), "dataset", (0.5,) * 3, (0.5,) * 3)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a test module: on a busy 2-core machine torch's thread pool
    oversubscribes and tiny convolutions get many times slower. Restored afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --------------------------------------------------------------------------- helpers shared by test modules


def texture(h: int, w: int, seed: int = 0, lo: float = 0.15, hi: float = 0.85):
    """A micrograph-like smooth random texture in [lo, hi] (float32)."""
    import numpy as np
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.random((h, w)), 3.0)
    img = (img - img.min()) / (img.max() - img.min())
    img = lo + (hi - lo) * img
    img += rng.normal(0, 0.02, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def write_jpeg(path: Path, arr01, quality: int = 95) -> None:
    """Save a [0, 1] grey array as an 8-bit JPEG."""
    import numpy as np
    from PIL import Image

    Image.fromarray((arr01 * 255).round().astype(np.uint8)).save(path, quality=quality)


def fastai_probs(learn, items, classes, bs: int = 32):
    """Reference probabilities through fastai's own test dataloader (``make_test_dl`` + ``get_preds``),
    independent of the tile-grid path of :mod:`semcathode.models._forward`."""
    from semcathode.data._loaders import make_test_dl

    if items.empty:
        return items.assign(**{f"p_{c}": [] for c in classes})
    dl = make_test_dl(learn.dls, items, bs=bs)
    with learn.no_bar(), learn.no_logging():
        probs, _ = learn.get_preds(dl=dl)
    out = items.reset_index(drop=True).copy()
    p = probs.float().numpy()
    for j, c in enumerate(classes):
        out[f"p_{c}"] = p[:, j]
    return out
