"""Deterministic synthetic SEM micrographs of NCM cathodes, one image at a time.

The images look loosely like top-down secondary-electron micrographs of a cathode
electrode: many roughly round secondary particles on a darker background, with brighter
rims (SE edge effect), a faint directional shading and a primary-grain texture.

* **Composition** sets the particle and grain size: NCM333 coarse, NCM523 medium-coarse,
  NCM622 medium, NCM811 fine.
* **State** sets the damage: ``pristine`` smooth intact particles; ``formation`` a few thin
  dark cracks and surface-film speckle; ``cycled`` many dark cracks across the particles,
  opened grain boundaries (intergranular cracking), rough fragmented outlines and debris.
* A **data bar** like the instrument's (bottom ``H/15`` rows, black with white text-like
  blocks and a white scale bar) is drawn unless ``bar=False``; its layout does not depend on
  the class, so it carries no label information.

The grey-level mean and standard deviation of the micrograph area are normalised to fixed
targets *before* any brightness offset, so global brightness carries no class information
unless it is planted on purpose (``brightness``). Folders of such images with instrument
sidecars are written by :func:`semcathode.data._synthetic.write_synthetic_dataset`.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ._preprocess import to_uint8

__all__ = [
    "SYNTHETIC_COMPOSITIONS",
    "SYNTHETIC_STATES",
    "default_bar_height",
    "make_micrograph",
    "render_micrograph",
]

#: Per-composition geometry, as fractions of the micrograph-area height:
#: ``radius`` mean secondary-particle radius, ``grain`` primary-grain spacing.
SYNTHETIC_COMPOSITIONS: dict[str, dict[str, float]] = {
    "NCM333": {"radius": 0.130, "grain": 0.032},
    "NCM523": {"radius": 0.105, "grain": 0.026},
    "NCM622": {"radius": 0.085, "grain": 0.021},
    "NCM811": {"radius": 0.055, "grain": 0.014},
}

#: Per-state damage parameters.
SYNTHETIC_STATES: dict[str, dict[str, float]] = {
    "pristine": {"crack_prob": 0.0, "max_cracks": 0, "roughness": 0.03, "speckle": 0.0,
                 "film": 0.0, "gb_open": 0.0, "debris": 0.0},
    "formation": {"crack_prob": 0.25, "max_cracks": 1, "roughness": 0.05, "speckle": 0.02,
                  "film": 0.25, "gb_open": 0.03, "debris": 0.03},
    "cycled": {"crack_prob": 0.9, "max_cracks": 3, "roughness": 0.11, "speckle": 0.01,
               "film": 0.08, "gb_open": 0.25, "debris": 0.25},
}

_TARGET_MEAN = 0.43  # micrograph-area grey mean before the brightness offset
_TARGET_STD = 0.17
_PIXEL_NOISE = 0.03


def default_bar_height(height: int) -> int:
    """Rows of the data bar for an image of ``height`` rows (1/15, like KAIST's 64/960).

    Parameters
    ----------
    height : int
        Image height in rows.

    Returns
    -------
    int
        At least 1.
    """
    return max(1, int(round(height / 15)))


def _canon_composition(composition: str) -> str:
    c = str(composition).strip().upper()
    if not c.startswith("NCM"):
        c = "NCM" + c
    if c not in SYNTHETIC_COMPOSITIONS:
        raise ValueError(
            f"unknown composition {composition!r}; known: {', '.join(SYNTHETIC_COMPOSITIONS)}"
        )
    return c


def _canon_state(state: str) -> str:
    s = str(state).strip().lower()
    if s not in SYNTHETIC_STATES:
        raise ValueError(f"unknown state {state!r}; known: {', '.join(SYNTHETIC_STATES)}")
    return s


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


# ----------------------------------------------------------------------------- rendering


def _place_particles(rng: np.random.Generator, h: int, w: int, r_mean: float,
                     coverage: float = 1.05) -> tuple[np.ndarray, np.ndarray]:
    """Random sequential placement of particle centres with limited overlap."""
    margin = r_mean
    area = (h + 2 * margin) * (w + 2 * margin)
    radii_all = r_mean * np.exp(rng.normal(0.0, 0.18, size=4096))
    n_target = int(coverage * area / (math.pi * np.mean(radii_all**2)))
    n_target = max(3, min(n_target, 4000))
    cy = np.empty(n_target)
    cx = np.empty(n_target)
    rr = np.empty(n_target)
    max_tries = 30 * n_target
    cand_y = rng.uniform(-margin, h + margin, max_tries)
    cand_x = rng.uniform(-margin, w + margin, max_tries)
    n = 0
    for t in range(max_tries):
        if n >= n_target:
            break
        y, x, r = cand_y[t], cand_x[t], radii_all[t % radii_all.size]
        if n and (np.hypot(cy[:n] - y, cx[:n] - x) < 0.8 * (rr[:n] + r)).any():
            continue
        cy[n], cx[n], rr[n] = y, x, r
        n += 1
    return np.stack([cy[:n], cx[:n]], axis=1), rr[:n]


def _render_particles(rng: np.random.Generator, h: int, w: int, centres: np.ndarray,
                      radii: np.ndarray, roughness: float, first_label: int,
                      zbuf: np.ndarray, label: np.ndarray, shade: np.ndarray) -> None:
    """Z-buffered rendering of sphere-cap particles with perturbed outlines (in place)."""
    light = np.array([-0.6, -0.8])  # detector direction (upper-left), as (y, x)
    for k, ((cy, cx), r) in enumerate(zip(centres, radii)):
        rmax = r * (1 + 3 * roughness) + 1
        y0, y1 = max(0, int(cy - rmax)), min(h, int(cy + rmax) + 2)
        x0, x1 = max(0, int(cx - rmax)), min(w, int(cx + rmax) + 2)
        harm = np.arange(2, 7)
        amp = rng.normal(0.0, roughness, size=harm.size) / np.sqrt(harm - 1)
        phase = rng.uniform(0, 2 * np.pi, size=harm.size)
        z0 = rng.uniform(0.0, 0.6) * r
        albedo = rng.uniform(0.85, 1.1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        dy = yy - cy
        dx = xx - cx
        theta = np.arctan2(dy, dx)
        wobble = amp[:, None, None] * np.cos(harm[:, None, None] * theta + phase[:, None, None])
        rt = r * (1.0 + wobble.sum(axis=0))
        rho = np.hypot(dy, dx) / np.maximum(rt, 1.0)
        inside = rho < 1.0
        if not inside.any():
            continue
        nz = np.sqrt(np.clip(1.0 - rho**2, 0.0, 1.0))
        height = z0 + r * nz
        zb = zbuf[y0:y1, x0:x1]
        win = inside & (height > zb)
        if not win.any():
            continue
        # SE edge effect (tilted surfaces emit more) + faint directional detector shading
        ny = dy / np.maximum(rt, 1.0)
        nx = dx / np.maximum(rt, 1.0)
        inten = albedo * (0.45 + 0.5 * (1.0 - nz) ** 1.5 + 0.12 * (ny * light[0] + nx * light[1]))
        zb[win] = height[win]
        label[y0:y1, x0:x1][win] = first_label + k
        shade[y0:y1, x0:x1][win] = inten[win]


def _crack_mask(rng: np.random.Generator, label: np.ndarray, centres: np.ndarray,
                radii: np.ndarray, crack_prob: float, max_cracks: int,
                width_px: int) -> np.ndarray:
    """Wiggly chords through particles (radial/transgranular cracks) as a boolean mask.

    A crack is only drawn on the visible pixels of its own particle (``label == k``).
    """
    h, w = label.shape
    mask = np.zeros((h, w), bool)
    if crack_prob <= 0 or max_cracks <= 0:
        return mask
    for k, ((cy, cx), r) in enumerate(zip(centres, radii)):
        if rng.random() >= crack_prob:
            continue
        for _ in range(int(rng.integers(1, max_cracks + 1))):
            ang = rng.uniform(0, np.pi)
            oy, ox = rng.normal(0.0, 0.25 * r, size=2)
            pts = []
            for sgn in (-1.0, 1.0):
                length = r * rng.uniform(0.6, 1.05)
                nseg = 6
                a = ang + (0.0 if sgn > 0 else np.pi)
                y, x = cy + oy, cx + ox
                seg = [(y, x)]
                for _s in range(nseg):
                    a += rng.normal(0.0, 0.25)
                    y += np.sin(a) * length / nseg
                    x += np.cos(a) * length / nseg
                    seg.append((y, x))
                pts.append(seg[::-1] if sgn < 0 else seg)
            poly = np.array(pts[0][:-1] + pts[1])
            seglen = np.hypot(*np.diff(poly, axis=0).T)
            arc = np.concatenate([[0.0], np.cumsum(seglen)])
            t = np.arange(0.0, arc[-1] + 0.5, 0.5)
            ys = np.rint(np.interp(t, arc, poly[:, 0])).astype(int)
            xs = np.rint(np.interp(t, arc, poly[:, 1])).astype(int)
            ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
            ys, xs = ys[ok], xs[ok]
            own = label[ys, xs] == k
            mask[ys[own], xs[own]] = True
    if width_px > 1:
        mask = ndimage.binary_dilation(mask, iterations=width_px // 2) & (label >= 0)
    return mask


def _grain_texture(rng: np.random.Generator, h: int, w: int, spacing: float,
                   gb_open: float) -> tuple[np.ndarray, np.ndarray]:
    """Voronoi primary grains: (multiplicative texture, opened-boundary mask)."""
    n = max(4, int(h * w / spacing**2))
    seeds = np.column_stack([rng.uniform(-spacing, h + spacing, n),
                             rng.uniform(-spacing, w + spacing, n)])
    tree = cKDTree(seeds)
    yy, xx = np.mgrid[0:h, 0:w]
    d, idx = tree.query(np.column_stack([yy.ravel(), xx.ravel()]), k=2)
    d = d.reshape(h, w, 2)
    cell = idx[:, 0].reshape(h, w)
    gap = d[..., 1] - d[..., 0]
    cell_gain = 1.0 + 0.08 * rng.standard_normal(n)
    tex = cell_gain[cell]
    bw = max(0.6, 0.08 * spacing)
    tex = tex * np.where(gap < bw, 0.85, 1.0)
    opened = np.zeros((h, w), bool)
    if gb_open > 0:
        flag = rng.random(n) < gb_open
        # a boundary is opened when either neighbouring cell is flagged
        nb = idx[:, 1].reshape(h, w)
        opened = (gap < max(1.0, 0.12 * spacing)) & (flag[cell] | flag[nb])
    return tex, opened


def _draw_bar(h_bar: int, w: int) -> np.ndarray:
    """Instrument-style data bar: black band, white text-like blocks and a scale bar."""
    bar = np.full((h_bar, w), 4.0 / 255.0, np.float32)
    rng = np.random.default_rng(20191203)  # fixed layout: the bar carries no class information
    th = max(1, int(round(0.24 * h_bar)))  # text height
    cw = max(1, int(round(0.6 * th)))  # character width
    gap = max(1, cw // 3)

    def word(y: int, x: int, nchar: int) -> None:
        for c in range(nchar):
            xs = x + c * (cw + gap)
            if xs + cw > w or y + th > h_bar:
                return
            glyph = rng.random((th, cw)) < 0.65
            glyph[:, 0] |= rng.random() < 0.5  # vertical stroke, like many letters
            bar[y : y + th, xs : xs + cw][glyph] = 1.0

    y1 = max(0, int(round(0.18 * h_bar)))
    y2 = max(0, int(round(0.60 * h_bar)))
    for frac, nchar in ((0.012, 4), (0.11, 5), (0.21, 2), (0.33, 7), (0.53, 4)):
        word(y1, int(frac * w), nchar)
    for frac, nchar in ((0.012, 9), (0.11, 6)):
        word(y2, int(frac * w), nchar)
    # scale bar with ticks, "0" and "100 um"
    xa, xb = int(0.63 * w), int(0.97 * w)
    yl = max(0, int(round(0.25 * h_bar)))
    lw = max(1, h_bar // 24)
    bar[yl : yl + lw, xa : xb + 1] = 1.0
    tick = max(1, int(round(0.12 * h_bar)))
    for t in np.linspace(xa, xb, 11).astype(int):
        big = t in (xa, xb)
        bar[yl : min(h_bar, yl + lw + (2 * tick if big else tick)), t : t + lw] = 1.0
    word(y2, xa, 1)
    word(y2, xb - 6 * (cw + gap), 6)
    return bar


def make_micrograph(composition: str, state: str, seed: int,
                    size: tuple[int, int] = (240, 320), bar: bool = True,
                    brightness: float = 0.0, bar_height: int | None = None) -> np.ndarray:
    """Render one synthetic SEM micrograph (:func:`render_micrograph` without its ground truth).

    Parameters
    ----------
    composition, state, seed, size, bar, brightness, bar_height
        As for :func:`render_micrograph`.

    Returns
    -------
    ndarray
        ``uint8`` array of shape ``(H, W)``.
    """
    return render_micrograph(composition, state, seed, size, bar, brightness, bar_height)[0]


def render_micrograph(composition: str, state: str, seed: int,
                      size: tuple[int, int] = (240, 320), bar: bool = True,
                      brightness: float = 0.0, bar_height: int | None = None,
                      noise: float = _PIXEL_NOISE, coverage: float = 1.05) -> tuple[np.ndarray, dict]:
    """Render one synthetic SEM micrograph and record its particles (the ground truth of a segmentation).

    Parameters
    ----------
    composition : str
        ``"NCM333"``, ``"NCM523"``, ``"NCM622"`` or ``"NCM811"`` (``"333"`` also accepted);
        sets the particle and grain size (333 coarse ... 811 fine).
    state : str
        ``"pristine"``, ``"formation"`` or ``"cycled"``; sets the amount of cracking.
    seed : int
        Random seed; together with the class it fixes the image exactly.
    size : (int, int)
        ``(H, W)`` of the output, data bar included.
    bar : bool
        Draw the instrument data bar in the bottom ``bar_height`` rows.
    brightness : float
        Additive grey offset (``[0, 1]`` units) applied to the micrograph area only.
    bar_height : int, optional
        Rows of the data bar; default :func:`default_bar_height` (``H/15``).
    noise : float
        Std of the white pixel noise, in ``[0, 1]`` grey units (the default 0.03 is what
        :func:`make_micrograph` draws; the micrograph area's own grey std is 0.17).
    coverage : float
        Particles placed per micrograph area, as the summed disc area over the area (the default
        1.05 is a dense electrode where nearer particles hide parts of farther ones; about 0.6 is
        a layer of touching particles that mostly stay whole).

    Returns
    -------
    image : ndarray
        ``uint8`` array of shape ``(H, W)``.
    truth : dict
        ``labels``: int32 ``(H - bar, W)``, 0 background and ``k + 1`` where secondary particle
        ``k`` is visible (debris on top excluded); ``centres`` ``(n, 2)`` and ``radii`` ``(n,)`` in
        px of the rendered particles (drawn in random order, so nearer ones hide parts of others);
        ``bar_rows``.

    Examples
    --------
    >>> img, truth = render_micrograph("NCM622", "pristine", 0)
    >>> img.shape, truth["labels"].shape, int(truth["labels"].max()) == len(truth["radii"])
    ((240, 320), (224, 320), True)
    """
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite std >= 0, got {noise!r}")
    if not (math.isfinite(coverage) and 0 < coverage <= 2):
        raise ValueError(f"coverage must be in (0, 2], got {coverage!r}")
    comp = _canon_composition(composition)
    st = _canon_state(state)
    H, W = int(size[0]), int(size[1])
    if H < 16 or W < 16:
        raise ValueError(f"size too small: {size}")
    hb = (default_bar_height(H) if bar_height is None else int(bar_height)) if bar else 0
    if not 0 <= hb < H // 2:
        raise ValueError(f"bar_height {hb} out of range for height {H}")
    h, w = H - hb, W
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, _stable_hash(comp), _stable_hash(st)])
    rng = np.random.default_rng(ss)
    cp = SYNTHETIC_COMPOSITIONS[comp]
    sp = SYNTHETIC_STATES[st]
    r_mean = cp["radius"] * h
    grain = max(1.5, cp["grain"] * h)

    # background: dark, low-frequency binder/pore texture
    bg = rng.standard_normal((h, w))
    bg = ndimage.gaussian_filter(bg, max(1.0, 0.5 * r_mean))
    bg = 0.13 + 0.05 * bg / (bg.std() + 1e-9)
    fine = ndimage.gaussian_filter(rng.standard_normal((h, w)), 0.8)
    bg = bg + 0.03 * fine / (fine.std() + 1e-9)

    zbuf = np.full((h, w), -np.inf)
    label = np.full((h, w), -1, np.int32)
    shade = np.zeros((h, w))
    centres, radii = _place_particles(rng, h, w, r_mean, coverage)
    _render_particles(rng, h, w, centres, radii, sp["roughness"], 0, zbuf, label, shade)
    n_main = len(radii)
    label_main = label.copy()
    if sp["debris"] > 0:
        # fragments lying on top of the particles (own z-buffer, so they always win)
        nd = int(round(sp["debris"] * n_main))
        dc = np.column_stack([rng.uniform(0, h, nd), rng.uniform(0, w, nd)])
        dr = r_mean * rng.uniform(0.18, 0.35, nd)
        _render_particles(rng, h, w, dc, dr, 0.2, n_main, np.full((h, w), -np.inf), label, shade)

    tex, opened = _grain_texture(rng, h, w, grain, sp["gb_open"])
    part = label >= 0
    img = np.where(part, shade * tex, bg)

    width_px = max(1, int(round(h / 200)))
    cracks = _crack_mask(rng, label_main, centres, radii, sp["crack_prob"],
                         int(sp["max_cracks"]), width_px)
    img = np.where(cracks & (label == label_main), img * 0.22, img)
    img = np.where(opened & part, img * 0.35, img)
    if sp["film"] > 0:
        # surface film (CEI) as dark mottled patches on the particles
        f = ndimage.gaussian_filter(rng.standard_normal((h, w)), max(1.0, 0.012 * h))
        img = np.where((f > np.quantile(f, 1.0 - sp["film"])) & part, img * 0.78, img)
    if sp["speckle"] > 0:
        spots = (rng.random((h, w)) < sp["speckle"]) & part
        if h > 300:
            spots = ndimage.binary_dilation(spots, iterations=int(h // 300))
        img = np.where(spots, img * 0.55, img)

    # beam spot blur, then normalise the grey statistics (class-independent brightness)
    img = ndimage.gaussian_filter(img, 0.5 * max(1.0, h / 450))
    img = (img - img.mean()) / (img.std() + 1e-9) * _TARGET_STD + _TARGET_MEAN
    img = img + float(brightness)
    img = img + float(noise) * rng.standard_normal((h, w))
    out = np.empty((H, W), np.float32)
    out[:h] = img
    if hb:
        out[h:] = _draw_bar(hb, W)
    visible = (label >= 0) & (label < n_main)
    truth = {"labels": np.where(visible, label + 1, 0).astype(np.int32), "centres": centres, "radii": radii,
             "bar_rows": hb}
    return to_uint8(out), truth
