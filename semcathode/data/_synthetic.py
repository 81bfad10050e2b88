"""Synthetic datasets: folders of synthetic micrographs in the instrument's layout, and
planted-signal images.

:func:`write_synthetic_dataset` writes a folder-per-class dataset of
:func:`semcathode.data._synthetic_micrograph.make_micrograph` images with SNE-style metadata
sidecars, for fast tests and smoke runs; a brightness shortcut can be planted on purpose
(``shortcut_brightness``). :func:`make_blob_dataset` is a separate planted-signal generator for
Grad-CAM tests.
"""

from __future__ import annotations

import datetime as _dt
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from ._synthetic_micrograph import _canon_composition, _canon_state, _stable_hash, make_micrograph

__all__ = ["write_synthetic_dataset", "make_blob_dataset"]

_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "tif": "TIFF", "tiff": "TIFF",
            "bmp": "BMP"}
_BASE_DATE = _dt.datetime(2019, 9, 2, 16, 0, 0)
_FRAME_SECONDS = 37  # time between consecutive stage positions of one session


def _session_start(label: str, state: str, class_index: int,
                   session_dates: dict[str, str] | None) -> _dt.datetime:
    """Start time of the acquisition session of one class."""
    if session_dates:
        for key in (label, state):
            if key in session_dates:
                txt = str(session_dates[key]).strip()
                d = _dt.datetime.fromisoformat(txt)
                if len(txt) <= 10:  # date only: afternoon session, staggered by class
                    d = d.replace(hour=14) + _dt.timedelta(minutes=20 * class_index)
                return d
    # default: one session (day) per state, one hour-slot per class within the day
    state_offset = {"pristine": 0, "formation": 30, "cycled": 92}.get(state, 0)
    return _BASE_DATE + _dt.timedelta(days=state_offset, minutes=25 * class_index)


def _sidecar_text(file_name: str, when: _dt.datetime, brightness: int, contrast: int,
                  size: tuple[int, int], label: str) -> str:
    """SNE-4500M-style metadata sidecar (same keys/layout as the real instrument)."""
    ampm = "오전" if when.hour < 12 else "오후"
    h12 = when.hour % 12 or 12
    frac = f"{when.microsecond:06d}0"
    folder = f"{when:%y%m%d}_{label.lower()}_synthetic"
    lines = [
        "[Image Info]",
        "Model : SNE-4500M Plus",
        f"Date : {when:%Y-%m-%d} {ampm} {h12}:{when:%M:%S}",
        f"Time : {when:%H:%M:%S}.{frac}",
        f"File Name : D:\\DATA\\SYNTH\\{folder}\\{file_name}",
        "Discription : Tabletop SEM",
        "Acceleated Voltage :  20 kV",
        "Magnification : x500 ",
        "Emission Current : 110uA",
        "Detector Mode : SED",
        "Vacuum Mode : High Vacuum",
        "Scan Speed : ",
        "[Running Info]",
        "Focus : 2253",
        "Magnification : x500 ",
        "Scan Rotaion : 0\u00b0",
        "[   - Image Process]",
        f"Brightness : {brightness}",
        f"Contrast : {contrast}",
        "[   - Detector]",
        "Detector : 105",
        "Collector : 139",
        "[   - Spot Size]",
        "Spot Size : 107",
        "[   - Working Distance]",
        "Default Working Distance : 0mm",
        "Working Distance : 5mm",
        "[Config Info]",
        "Alias :  20 kV",
        "[Active Scan]",
        "Sample Average : 1",
        "Frame Average : 1",
        "Blur Level : 0",
        f"Image Size : {size[1]},{size[0]}",
        f"Frame Size : {size[1]},{size[0]}",
        "Image Area : 0,0,1,0.75",
        "Pixel Size : 0.7",
    ]
    return "\r\n".join(lines) + "\r\n"


def write_synthetic_dataset(
    root: str | PathLike,
    n_per_class: int | dict[str, int] = 8,
    compositions: tuple[str, ...] | list[str] = ("NCM333", "NCM622", "NCM811"),
    states: tuple[str, ...] | list[str] = ("pristine", "formation", "cycled"),
    size: tuple[int, int] = (240, 320),
    seed: int = 0,
    fmt: str = "png",
    sidecar: bool = True,
    shortcut_brightness: float = 0.0,
    session_dates: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Write a folder-per-class synthetic dataset in the instrument's layout.

    Files are ``root/<COMPOSITION>_<state>/synthetic_x500__<frame>.<fmt>``; frames are
    consecutive within a class, starting at ``1000 * (class_index + 1)`` (like consecutive
    stage positions of one session). With ``sidecar=True`` an SNE-style metadata file
    ``<file>.txt`` (CRLF, UTF-8) is written next to each image.

    Parameters
    ----------
    root : path
        Output folder (created).
    n_per_class : int or dict
        Images per class, or ``{"NCM333_pristine": n, ...}``; classes missing from the dict
        get 0 images; keys that are not classes raise ``ValueError``.
    compositions, states : sequence of str
        Classes are ``<composition>_<state>`` in composition-major order.
    size : (int, int)
        ``(H, W)`` of each image including the data bar.
    seed : int
        Dataset seed; same seed gives byte-identical files.
    fmt : str
        ``"png"``, ``"jpg"``/``"jpeg"``, ``"tif"``/``"tiff"`` or ``"bmp"``.
    sidecar : bool
        Write the ``<file>.txt`` metadata sidecars.
    shortcut_brightness : float
        When ``> 0``, plant a brightness shortcut: a per-state grey offset of
        ``-s`` (pristine, darker - like the real KAIST sessions), ``0`` (formation) and
        ``+s`` (cycled), so brightness alone predicts the state. With ``0`` every image gets
        a small random offset (uniform +-0.04) independent of its class.
    session_dates : dict, optional
        Session start per class label or per state, ISO ``"YYYY-MM-DD"`` or
        ``"YYYY-MM-DD HH:MM:SS"``; written to the sidecars' ``Date``/``Time`` lines.

    Returns
    -------
    DataFrame
        One row per image: ``path``, ``label``, ``composition``, ``state``, ``frame``,
        plus ``brightness`` (the grey offset applied) and ``sidecar`` (path or ``None``).
    """
    from PIL import Image

    key = fmt.lower().lstrip(".")
    if key not in _FORMATS:
        raise ValueError(f"unknown image format {fmt!r}; known: {', '.join(_FORMATS)}")
    if shortcut_brightness < 0:
        raise ValueError("shortcut_brightness must be >= 0")
    comps = [_canon_composition(c) for c in compositions]
    sts = [_canon_state(s) for s in states]
    classes = [(c, s) for c in comps for s in sts]
    labels = [f"{c}_{s}" for c, s in classes]
    if isinstance(n_per_class, dict):
        unknown = set(n_per_class) - set(labels)
        if unknown:
            raise ValueError(
                f"n_per_class has unknown classes {sorted(unknown)}; classes: {labels}"
            )
        counts = {lab: int(n_per_class.get(lab, 0)) for lab in labels}
    else:
        counts = {lab: int(n_per_class) for lab in labels}
    if any(n < 0 for n in counts.values()):
        raise ValueError("n_per_class must be >= 0")

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    offsets = {"pristine": -1.0, "formation": 0.0, "cycled": 1.0}
    rows = []
    for ci, ((comp, st), label) in enumerate(zip(classes, labels)):
        n = counts[label]
        if n == 0:
            continue
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        start = _session_start(label, st, ci, session_dates)
        for i in range(n):
            frame = 1000 * (ci + 1) + i
            ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, _stable_hash(label), i])
            img_seed, jitter_seed = (int(v) for v in ss.generate_state(2))
            if shortcut_brightness > 0:
                b = shortcut_brightness * offsets[st]
            else:
                b = float(np.random.default_rng(jitter_seed).uniform(-0.04, 0.04))
            arr = make_micrograph(comp, st, img_seed, size=size, brightness=b)
            name = f"synthetic_x500__{frame}.{key}"
            path = folder / name
            img = Image.fromarray(arr)
            if _FORMATS[key] == "JPEG":
                img.save(path, format="JPEG", quality=95)
            else:
                img.save(path, format=_FORMATS[key])
            side = None
            if sidecar:
                when = start + _dt.timedelta(seconds=_FRAME_SECONDS * i)
                txt = _sidecar_text(name, when, int(round(100 + 100 * b)), 25, size, label)
                side = path.with_name(name + ".txt")
                side.write_bytes(txt.encode("utf-8"))
            rows.append({"path": str(path), "label": label, "composition": comp, "state": st,
                         "frame": frame, "brightness": b,
                         "sidecar": None if side is None else str(side)})
    cols = ["path", "label", "composition", "state", "frame", "brightness", "sidecar"]
    return pd.DataFrame(rows, columns=cols)


def make_blob_dataset(n: int, size: int = 64, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Planted-signal images for Grad-CAM tests: the class is the presence of a bright blob.

    Parameters
    ----------
    n : int
        Number of images; labels are balanced (``n // 2`` positives) in random order.
    size : int
        Images are ``size x size``.
    seed : int
        Random seed.

    Returns
    -------
    images : ndarray
        float32 ``(n, size, size)`` in ``[0, 1]``: smooth textured, noisy background; class-1
        images add one bright Gaussian blob at a random position.
    labels : ndarray
        int64 ``(n,)``, 1 when the blob is present.
    blob_masks : ndarray
        bool ``(n, size, size)``, the blob region (within 2 sigma of its centre); all False
        for class 0.
    """
    if n < 0 or size < 8:
        raise ValueError("need n >= 0 and size >= 8")
    rng = np.random.default_rng(seed)
    labels = np.zeros(n, np.int64)
    labels[: n // 2] = 1
    labels = rng.permutation(labels)
    images = np.empty((n, size, size), np.float32)
    masks = np.zeros((n, size, size), bool)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    for i in range(n):
        bg = ndimage.gaussian_filter(rng.standard_normal((size, size)), size / 16, mode="wrap")
        bg = 0.32 + 0.06 * bg / (bg.std() + 1e-9)
        img = bg + 0.03 * rng.standard_normal((size, size))
        if labels[i] == 1:
            sigma = size * rng.uniform(0.06, 0.10)
            margin = 2.0 * sigma
            cy, cx = rng.uniform(margin, size - 1 - margin, 2)
            d2 = (yy - cy) ** 2 + (xx - cx) ** 2
            img = img + 0.5 * np.exp(-d2 / (2 * sigma**2))
            masks[i] = d2 <= (2.0 * sigma) ** 2
        images[i] = np.clip(img, 0.0, 1.0)
    return images, labels, masks
