"""Outputs of the CAMs: overlay files for images and folders (the ``semcathode cam``
command), a figure grid of overlays, and a static HTML gallery (misclassified first)."""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

import numpy as np
import pandas as pd

from .._files import atomic_write_text
from ..io._walk import find_images
from ._records import correct_flags
from ._compute import _class_index, cam_method_key
from ._layers import ModelLike, find_target_layer
from ._micrograph import micrograph_cam
from ._overlays import overlay, save_overlay

__all__ = ["cam_files", "cam_grid", "write_gallery"]

_log = logging.getLogger(__name__)


def cam_files(
    model_like: ModelLike,
    paths: Sequence[str | Path],
    out_dir: str | Path,
    method: str = "gradcam",
    target: str | None = None,
    opacity: float = 0.45,
) -> list[Path]:
    """CAM overlays for image files (the ``semcathode cam`` command).

    Parameters
    ----------
    model_like : ModelLike
        A loaded model: ``.model``, ``.classes``, ``.load_array(path) -> (grey bar-free image,
        frame at the model's scale)`` and what :func:`~semcathode.explain.micrograph_cam` uses.
    paths : sequence of str or Path
        Images and/or folders (searched recursively for :data:`semcathode.io._read.SUPPORTED_EXTENSIONS`, hidden files
        and anything under ``out_dir`` skipped).
    out_dir : str or Path
        Output folder, created if needed.
    method : str
        A key of :data:`CAM_METHODS`.
    target : str or None
        Class to explain (name, or index); None: each image's predicted class.
    opacity : float
        Heat-map weight of the overlay.

    Returns
    -------
    list of Path
        ``<out_dir>/<stem>_<method>.png`` per image, overlaid on the bar-free micrograph at
        its own resolution (``-2``, ``-3``... appended when stems repeat).  Unreadable
        images (``SEMReadError``, or no pixel size for a scale model) are skipped with a logged
        warning.  Every tile of the model's grid is explained for the micrograph's class and
        the CAMs are stitched (:func:`micrograph_cam`).

    Examples
    --------
    >>> import tempfile
    >>> import semcathode as sc
    >>> tmp = tempfile.mkdtemp()
    >>> _, study = sc.data.example_study(tmp)
    >>> s1 = sc.train_stage1(study, 0, log=None)  # doctest: +ELLIPSIS
    [stage 1 seed 0, ...
    >>> model = sc.load_model(sc.study.export_trained(s1, f"{tmp}/model.safetensors", study.classes))
    >>> [p.suffix for p in sc.cam_files(model, study.manifest["path"][:2].tolist(), f"{tmp}/cams")]
    ['.png', '.png']
    """
    from ..io._read import SEMReadError

    method = cam_method_key(method)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_index = _class_index(model_like.classes, target)
    layer = find_target_layer(model_like.model)
    written: list[Path] = []
    used: set[str] = set()
    for p in find_images(paths, exclude=out):
        try:
            grey, arr = model_like.load_array(p)
        except (SEMReadError, ValueError) as exc:
            _log.warning("skipping %s: %s", p, exc)
            continue
        cam = micrograph_cam(model_like, grey, arr, method=method, target=t_index, target_layer=layer).cam
        name, k = f"{p.stem}_{method}", 1
        while name in used:
            k += 1
            name = f"{p.stem}-{k}_{method}"
        used.add(name)
        written.append(save_overlay(out / f"{name}.png", grey, cam, opacity=opacity))
    return written


def cam_grid(
    images: Sequence[np.ndarray],
    cams: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncol: int = 4,
    opacity: float = 0.45,
):
    """A grid of overlays (one panel per image) for the report.

    Parameters
    ----------
    images, cams : sequences of numpy.ndarray
        Grey micrographs and their CAMs (any resolutions; overlays at the image's).
    titles : sequence of str or None
        Panel titles.
    ncol : int
        Panels per row.
    opacity : float
        Heat-map weight.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    n = len(images)
    if len(cams) != n or (titles is not None and len(titles) != n):
        raise ValueError("images, cams and titles must have the same length")
    ncol = max(1, min(int(ncol), max(n, 1)))
    nrow = max(1, int(np.ceil(n / ncol)))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 3.2 * nrow), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(overlay(images[k], cams[k], opacity=opacity))
            if titles is not None:
                ax.set_title(str(titles[k]), fontsize=8)
    fig.tight_layout()
    return fig


def write_gallery(out_dir: str | Path, records: pd.DataFrame, title: str = "Grad-CAM gallery") -> Path:
    """A static HTML gallery of overlay PNGs, misclassified first.

    Parameters
    ----------
    out_dir : str or Path
        Folder of the page; overlay paths are made relative to it.
    records : DataFrame
        One row per overlay: ``overlay_path`` (relative to ``out_dir``, or absolute),
        ``label``, ``pred``, and optionally ``correct`` (default ``label == pred``),
        ``arm``, ``domain``, ``probs`` (free text, e.g. top-3 probabilities).
    title : str
        Page title.

    Returns
    -------
    Path
        ``out_dir/gallery.html``, written atomically; all text is HTML-escaped.
    """
    out = Path(out_dir)
    if "overlay_path" not in records.columns:
        raise ValueError("records need an overlay_path column")
    df = records.copy()
    for col in ("label", "pred", "arm", "domain", "probs"):
        if col not in df.columns:
            df[col] = ""
    df["_correct"] = correct_flags(df)
    df = df.sort_values("_correct", kind="stable")

    def text(v: Any) -> str:
        return "" if v is None or (isinstance(v, float) and v != v) else html.escape(str(v))

    cards = []
    for _, r in df.iterrows():
        p = Path(str(r["overlay_path"]))
        if p.is_absolute():
            p = Path(os.path.relpath(p, out.resolve()))
        src = html.escape(quote(p.as_posix(), safe="/-_.~"), quote=True)
        ok = bool(r["_correct"])
        cards.append(
            f'<figure class="{"ok" if ok else "bad"}"><a href="{src}"><img src="{src}" loading="lazy" '
            f'alt="{text(r["label"])}"></a><figcaption><b>{"correct" if ok else "MISCLASSIFIED"}</b><br>'
            f"true: {text(r['label'])}<br>pred: {text(r['pred'])}<br>"
            f"arm: {text(r['arm'])} &middot; domain: {text(r['domain'])}<br>"
            f"<small>{text(r['probs'])}</small></figcaption></figure>"
        )
    n_bad = int((~df["_correct"]).sum())
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:1em}"
        "figure{display:inline-block;vertical-align:top;width:260px;margin:6px;padding:4px;border:3px solid #ccc}"
        "figure.bad{border-color:#c0392b}figure.ok{border-color:#27ae60}"
        "img{width:100%}figcaption{font-size:12px}"
        "</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f"<p>{len(df)} overlays, {n_bad} misclassified (shown first).</p>\n"
        + "\n".join(cards)
        + "\n</body></html>\n"
    )
    return atomic_write_text(out / "gallery.html", page)
