"""CAM outputs: overlay files for images and folders, the figure grid, the HTML gallery."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

timm = pytest.importorskip("timm")
pytest.importorskip("pytorch_grad_cam")

from semcathode.explain._gallery import (  # noqa: E402
    cam_files,
    cam_grid,
    write_gallery,
)
from semcathode.explain._layers import ModelLike  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_write_gallery_misclassified_first(tmp_path):
    recs = pd.DataFrame({
        "overlay_path": ["a.png", "b.png", "c d.png", "e.png"],
        "label": ["NCM333 pristine", "x", "<b>bad</b>", "y"],
        "pred": ["NCM333 pristine", "x", "z", "q"],
        "correct": [True, True, False, False],
        "arm": ["ft"] * 4,
        "domain": ["kaist"] * 4,
        "probs": ["p=0.9", "p=0.8", "p=0.4", "p=0.3"],
    })
    page = write_gallery(tmp_path, recs, title="T & T")
    assert page == tmp_path / "gallery.html"
    text = page.read_text()
    srcs = re.findall(r'<img src="([^"]+)"', text)
    assert srcs == ["c%20d.png", "e.png", "a.png", "b.png"]
    assert "<b>bad</b>" not in text and "&lt;b&gt;bad&lt;/b&gt;" in text
    assert "<title>T &amp; T</title>" in text
    assert "2 misclassified" in text
    assert sorted(f.name for f in tmp_path.iterdir()) == ["gallery.html"]
    # without a correct column, label != pred decides; absolute paths become relative
    recs2 = recs.drop(columns="correct").assign(overlay_path=[str(tmp_path / "x" / f) for f in recs.overlay_path])
    srcs2 = re.findall(r'<img src="([^"]+)"', write_gallery(tmp_path, recs2).read_text())
    assert srcs2[0] == "x/c%20d.png" and srcs2[-1] == "x/b.png"


def test_cam_grid():
    import matplotlib.pyplot as plt

    imgs = [np.random.default_rng(i).random((30, 40)) for i in range(5)]
    fig = cam_grid(imgs, [np.eye(4)] * 5, [f"t{i}" for i in range(5)], ncol=3)
    assert len(fig.axes) == 6
    assert fig.axes[0].get_title() == "t0"
    plt.close(fig)


def test_cam_files_one_png_per_image(tmp_path, stub_model):
    from PIL import Image

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    shapes = {}
    for name in ("sub/one.png", "two.tif", "three.jpg"):
        img = (rng.random((96, 128)) * 255).astype(np.uint8)
        Image.fromarray(img).save(src / name)
        shapes[Path(name).stem] = img.shape
    (src / "notes.txt").write_text("not an image")
    other = tmp_path / "elsewhere"
    other.mkdir()
    Image.fromarray((rng.random((80, 100)) * 255).astype(np.uint8)).save(other / "one.png")  # same stem

    stub = stub_model()
    assert isinstance(stub, ModelLike)
    out = src / "cams"  # inside an input folder: its PNGs must not be picked up on a re-run
    paths = cam_files(stub, [src, other / "one.png"], out, method="gradcam")
    assert [p.name for p in paths] == ["one_gradcam.png", "three_gradcam.png", "two_gradcam.png",
                                       "one-2_gradcam.png"]
    assert all(p.parent == out for p in paths)
    for p, call in zip(paths, list(stub.calls)):
        grey, _ = stub.load_array(call)
        with Image.open(p) as im:
            assert im.size == (grey.shape[1], grey.shape[0])  # the bar-free micrograph's own size
    again = cam_files(stub, [src], out, method="eigencam", target="NCM622 cycled")
    assert len(again) == 3 and all(p.name.endswith("_eigencam.png") for p in again)
    with pytest.raises(ValueError, match="unknown target class"):
        cam_files(stub, [src], out, target="NCM999")


def test_cam_files_scale_mode_stitches_tiles(tmp_path, stub_model):
    from PIL import Image

    Image.fromarray((np.random.default_rng(1).random((96, 128)) * 255).astype(np.uint8)).save(tmp_path / "t.png")
    stub = stub_model(mode="scale", size=32, stride=0.5)
    grey, x = stub.preprocess_path(tmp_path / "t.png")
    assert x.shape[0] > 1
    (p,) = cam_files(stub, [tmp_path / "t.png"], tmp_path / "out", method="gradcam++")
    assert p.name == "t_gradcampp.png"
    with Image.open(p) as im:
        assert im.size == (grey.shape[1], grey.shape[0])
