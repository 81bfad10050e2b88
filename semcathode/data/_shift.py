"""Acquisition-shift transforms for SEM micrographs, with physical parameters.

An :class:`AcquisitionShift` models how the *same* specimen would look when imaged on a
different instrument or with different settings: a change of brightness/contrast knobs, a
detector gamma, shot and read noise (lower beam current / faster scan), defocus blur and a
magnification error. It is used

* to build a *simulated instrument shift* target domain from held-out real images
  (:func:`simulated_instrument_shift`, :func:`random_shift`), and
* for robustness curves: macro-F1 versus the severity of one kind of shift
  (:func:`shift_at_severity`, :func:`severity_grid`).

All transforms take and return a 2-D ``float32`` grey image in ``[0, 1]``.

Order of operations in :meth:`AcquisitionShift.apply`::

    magnification -> blur -> gamma -> contrast -> brightness -> Poisson-Gaussian noise -> clip

Geometry and optics act first (they happen before the detector), then the detector response
(gamma), the amplifier's contrast (gain about the image mean) and brightness (offset), and
finally the noise of the acquisition; the result is clipped to ``[0, 1]``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy import ndimage
from skimage.transform import resize

from ..io._read import to_unit

__all__ = [
    "SHIFT_KINDS",
    "AcquisitionShift",
    "shift_at_severity",
    "severity_grid",
    "simulated_instrument_shift",
    "random_shift",
]

SHIFT_KINDS: tuple[str, ...] = ("brightness", "contrast", "gamma", "noise", "blur", "magnification")

#: Parameter values reached at severity 1 (strong, but still plausible for an SEM).
_MAX_BRIGHTNESS = 0.25
_MIN_CONTRAST = 0.5
_MAX_GAMMA = 1.8
_MIN_PHOTONS = 5.0
_MAX_PHOTONS = 1000.0  # photons at severity -> 0+ (almost noiseless)
_MAX_READ_NOISE = 0.02
_MAX_BLUR = 3.0
_MAX_SCALE = 1.4


def _as_float_image(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a float32 2-D array in [0, 1] (integer images are rescaled)."""
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {arr.shape}")
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        return to_unit(arr)
    return arr.astype(np.float32, copy=True)


def _magnify(img: np.ndarray, scale: float) -> np.ndarray:
    """Zoom about the centre keeping the shape (crop+resize for >1, resize+reflect-pad for <1)."""
    h, w = img.shape
    if scale > 1.0:
        ch = max(1, int(round(h / scale)))
        cw = max(1, int(round(w / scale)))
        y0 = (h - ch) // 2
        x0 = (w - cw) // 2
        crop = img[y0 : y0 + ch, x0 : x0 + cw]
        return resize(crop, (h, w), order=1, mode="reflect", anti_aliasing=False,
                      preserve_range=True).astype(np.float32)
    nh = max(1, int(round(h * scale)))
    nw = max(1, int(round(w * scale)))
    small = resize(img, (nh, nw), order=1, mode="reflect", anti_aliasing=True,
                   preserve_range=True).astype(np.float32)
    pt = (h - nh) // 2
    pl = (w - nw) // 2
    pad = ((pt, h - nh - pt), (pl, w - nw - pl))
    # numpy's reflect padding also handles pads wider than the image (repeated reflection)
    return np.pad(small, pad, mode="reflect")


@dataclass(frozen=True)
class AcquisitionShift:
    """A physically parameterised change of SEM acquisition conditions.

    Parameters
    ----------
    brightness : float
        Additive offset in ``[0, 1]`` grey units.
    contrast : float
        Multiplicative gain about the image mean (``< 1`` flattens the image).
    gamma : float
        Detector gamma, ``out = in ** gamma`` (``> 1`` darkens mid-tones).
    noise_photons : float or None
        Poisson shot noise: detected electrons/photons per unit grey at full scale (lower is
        noisier). ``None`` switches shot noise off.
    noise_sigma : float
        Standard deviation of additive Gaussian read noise, in grey units.
    blur_sigma_px : float
        Gaussian defocus blur sigma, in pixels of the input image.
    scale : float
        Magnification change. ``> 1`` zooms in (centre crop, then resize back to the same
        shape); ``< 1`` zooms out (resize down, then reflect-pad back to the shape).

    Notes
    -----
    :meth:`apply` runs magnification -> blur -> gamma -> contrast -> brightness ->
    Poisson-Gaussian noise -> clip to ``[0, 1]``.
    """

    brightness: float = 0.0
    contrast: float = 1.0
    gamma: float = 1.0
    noise_photons: float | None = None
    noise_sigma: float = 0.0
    blur_sigma_px: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.brightness):
            raise ValueError("brightness must be finite")
        if not (self.contrast >= 0 and math.isfinite(self.contrast)):
            raise ValueError(f"contrast must be >= 0, got {self.contrast}")
        if not (self.gamma > 0 and math.isfinite(self.gamma)):
            raise ValueError(f"gamma must be > 0, got {self.gamma}")
        if self.noise_photons is not None and not (self.noise_photons > 0):
            raise ValueError(f"noise_photons must be > 0 or None, got {self.noise_photons}")
        if not self.noise_sigma >= 0:
            raise ValueError(f"noise_sigma must be >= 0, got {self.noise_sigma}")
        if not self.blur_sigma_px >= 0:
            raise ValueError(f"blur_sigma_px must be >= 0, got {self.blur_sigma_px}")
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise ValueError(f"scale must be > 0, got {self.scale}")

    @property
    def is_identity(self) -> bool:
        """True when :meth:`apply` returns the (clipped) input unchanged."""
        return (
            self.brightness == 0.0
            and self.contrast == 1.0
            and self.gamma == 1.0
            and self.noise_photons is None
            and self.noise_sigma == 0.0
            and self.blur_sigma_px == 0.0
            and self.scale == 1.0
        )

    def apply(self, image: np.ndarray, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Apply the shift to one grey image.

        Parameters
        ----------
        image : ndarray
            2-D grey image, float in ``[0, 1]`` (integer dtypes are rescaled by their max).
        rng : Generator, int or None
            Randomness for the noise; an int seed makes the result deterministic.

        Returns
        -------
        ndarray
            float32 image of the same shape, clipped to ``[0, 1]``.
        """
        img = np.clip(_as_float_image(image), 0.0, 1.0)
        if self.is_identity:
            return img
        if self.scale != 1.0:
            img = _magnify(img, float(self.scale))
        if self.blur_sigma_px > 0:
            img = ndimage.gaussian_filter(img, sigma=float(self.blur_sigma_px), mode="reflect")
        if self.gamma != 1.0:
            img = np.power(np.clip(img, 0.0, 1.0), np.float32(self.gamma))
        if self.contrast != 1.0:
            m = np.float32(img.mean())
            img = m + np.float32(self.contrast) * (img - m)
        if self.brightness != 0.0:
            img = img + np.float32(self.brightness)
        if self.noise_photons is not None or self.noise_sigma > 0:
            gen = np.random.default_rng(rng)
            if self.noise_photons is not None:
                lam = np.clip(img, 0.0, 1.0).astype(np.float64) * float(self.noise_photons)
                img = (gen.poisson(lam) / float(self.noise_photons)).astype(np.float32)
            if self.noise_sigma > 0:
                img = img + gen.normal(0.0, float(self.noise_sigma), img.shape).astype(np.float32)
        return np.clip(img, 0.0, 1.0).astype(np.float32, copy=False)

    __call__ = apply

    def to_dict(self) -> dict:
        """Plain ``dict`` of the parameters (JSON/YAML friendly).

        Returns
        -------
        dict
            Parameter name -> value.
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AcquisitionShift":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``.

        Parameters
        ----------
        d : dict
            From :meth:`to_dict`.

        Returns
        -------
        AcquisitionShift
            The shift.
        """
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown AcquisitionShift parameters: {sorted(unknown)}")
        return cls(**d)


def shift_at_severity(kind: str, severity: float) -> AcquisitionShift:
    """A single-kind shift at a given severity.

    Parameters
    ----------
    kind : str
        One of :data:`SHIFT_KINDS`.
    severity : float
        ``0`` is the identity, ``1`` a strong but physically plausible shift: brightness
        +0.25, contrast 0.5, gamma 1.8, noise 5 photons/grey (+0.02 read noise), blur
        sigma 3 px, magnification 1.4. Must lie in ``[0, 1]``; for ``"brightness"`` a
        negative severity in ``[-1, 0)`` darkens instead.

    Returns
    -------
    AcquisitionShift
    """
    if kind not in SHIFT_KINDS:
        raise ValueError(f"unknown shift kind {kind!r}; valid kinds: {', '.join(SHIFT_KINDS)}")
    s = float(severity)
    lo = -1.0 if kind == "brightness" else 0.0
    if not (lo <= s <= 1.0):
        raise ValueError(f"severity for {kind!r} must be in [{lo:g}, 1], got {severity}")
    if s == 0.0:
        return AcquisitionShift()
    if kind == "brightness":
        return AcquisitionShift(brightness=_MAX_BRIGHTNESS * s)
    if kind == "contrast":
        return AcquisitionShift(contrast=1.0 - (1.0 - _MIN_CONTRAST) * s)
    if kind == "gamma":
        return AcquisitionShift(gamma=1.0 + (_MAX_GAMMA - 1.0) * s)
    if kind == "noise":
        # log-linear from ~1000 photons (barely visible) to 5 photons (very noisy)
        photons = _MAX_PHOTONS * (_MIN_PHOTONS / _MAX_PHOTONS) ** s
        return AcquisitionShift(noise_photons=float(photons), noise_sigma=_MAX_READ_NOISE * s)
    if kind == "blur":
        return AcquisitionShift(blur_sigma_px=_MAX_BLUR * s)
    # magnification
    return AcquisitionShift(scale=1.0 + (_MAX_SCALE - 1.0) * s)


def severity_grid(n: int = 5) -> list[float]:
    """``n`` evenly spaced severities from 0 to 1 inclusive (``n >= 2``).

    Parameters
    ----------
    n : int
        Number of severities.

    Returns
    -------
    list of float
        ``[0, ..., 1]``.
    """
    if n < 2:
        raise ValueError(f"severity_grid needs n >= 2, got {n}")
    return [float(x) for x in np.linspace(0.0, 1.0, int(n))]


def simulated_instrument_shift() -> AcquisitionShift:
    """The default *simulated instrument shift* target domain.

    A moderate combined shift: brightness -0.08, contrast 0.8, gamma 1.25, shot noise at
    30 photons/grey plus 0.01 read noise, 1 px defocus blur and a 1.1x magnification error.

    Notes
    -----
    This **simulates** imaging the same specimens on a different instrument / with different
    settings. It is not a real second domain (e.g. it is *not* electrolyte-additive data) and
    results on it must be reported as a simulated shift.

    Returns
    -------
    AcquisitionShift
        The combined shift.
    """
    return AcquisitionShift(
        brightness=-0.08,
        contrast=0.8,
        gamma=1.25,
        noise_photons=30.0,
        noise_sigma=0.01,
        blur_sigma_px=1.0,
        scale=1.1,
    )


def random_shift(
    rng: np.random.Generator | int | None = None, strength: float = 1.0
) -> AcquisitionShift:
    """Sample a random combined shift (per-image variety within a simulated domain).

    Parameters
    ----------
    rng : Generator, int or None
        Source of randomness.
    strength : float
        ``0`` gives the identity; ``1`` samples brightness in +-0.12, contrast in
        [0.7, 1.3], gamma in [0.75, 1.35], shot noise 10-1000 photons, read noise up to 0.02,
        blur up to 1.5 px and magnification in [0.87, 1.25]. Must be ``>= 0``.

    Returns
    -------
    AcquisitionShift
    """
    strength = float(strength)
    if not strength >= 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    if strength == 0:
        return AcquisitionShift()
    g = np.random.default_rng(rng)
    u = g.uniform(size=7)
    brightness = strength * 0.12 * (2 * u[0] - 1)
    contrast = math.exp(strength * math.log(1.3) * (2 * u[1] - 1))
    gamma = math.exp(strength * (math.log(0.75) + (math.log(1.35) - math.log(0.75)) * u[2]))
    photons = 10 ** (3.0 - strength * 2.0 * u[3])
    noise_sigma = strength * 0.02 * u[4]
    blur = strength * 1.5 * u[5]
    scale = math.exp(strength * (math.log(1 / 1.15) + (math.log(1.25) - math.log(1 / 1.15)) * u[6]))
    return AcquisitionShift(
        brightness=float(brightness),
        contrast=float(contrast),
        gamma=float(gamma),
        noise_photons=float(photons),
        noise_sigma=float(noise_sigma),
        blur_sigma_px=float(blur),
        scale=float(scale),
    )
