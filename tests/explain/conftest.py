"""Fixtures shared by the Grad-CAM tests: a tiny EfficientNet and a stub loaded model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def effnet():
    """An untrained ``tf_efficientnet_lite0`` with 2 classes, in eval mode."""
    timm = pytest.importorskip("timm")
    import torch

    torch.manual_seed(0)
    return timm.create_model("tf_efficientnet_lite0", num_classes=2, pretrained=False).eval()


@pytest.fixture
def stub_model():
    """The class of a loaded model as ``semcathode.models.load_model`` gives (tiny EfficientNet,
    resize mode by default) that records the files it reads: ``stub_model(mode, size, stride)``."""
    timm = pytest.importorskip("timm")
    import torch

    from semcathode.models._export import ExportedModel

    class StubModel(ExportedModel):
        def __init__(self, mode: str = "resize", size: int = 64, stride: float = 1.0) -> None:
            torch.manual_seed(0)
            net = timm.create_model("tf_efficientnet_lite0", num_classes=3, pretrained=False).eval()
            meta = {"preprocess": {"mode": mode, "size": size, "scale_um": 0.0, "tile_stride": stride},
                    "normalize": "dataset", "mean": [0.45] * 3, "std": [0.25] * 3}
            super().__init__(net, ["NCM333 pristine", "NCM622 cycled", "NCM811 formation"], meta)
            self.calls: list[Path] = []

        def load_array(self, path, pixel_size_um=None):
            self.calls.append(Path(path))
            return super().load_array(path, pixel_size_um)

    return StubModel


@pytest.fixture
def records(request) -> pd.DataFrame:
    """A table of predictions over the test module's ``CLASSES`` (3 classes, 4 images, 2 arms)."""
    classes = list(request.module.CLASSES)
    A, B, C = classes
    rows = [
        # image_id, label, pred, domain, arm
        ("i1", A, A, "kaist", "ft"),
        ("i2", A, B, "kaist", "ft"),
        ("i3", B, B, "lab", "ft"),
        ("i4", C, A, "lab", "ft"),
        ("i1", A, A, "kaist", "pre"),
        ("i2", A, A, "kaist", "pre"),
        ("i3", B, C, "lab", "pre"),
        ("i4", C, C, "lab", "pre"),
    ]
    df = pd.DataFrame(rows, columns=["image_id", "label", "pred", "domain", "arm"])
    df["path"] = [f"/data/{i}.tif" for i in df["image_id"]]
    df["correct"] = df["label"] == df["pred"]
    probs = np.full((len(df), 3), 0.1)
    for k, p in enumerate(df["pred"]):
        probs[k, classes.index(p)] = 0.8
    for j, c in enumerate(classes):
        df[f"p_{c}"] = probs[:, j]
    return df
