"""Tests for semcathode.data._shift (acquisition-shift transforms)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from semcathode.data._shift import (
    SHIFT_KINDS,
    AcquisitionShift,
    random_shift,
    severity_grid,
    shift_at_severity,
    simulated_instrument_shift,
)


def _textured(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.random((h, w)), 2.0)
    img = (img - img.min()) / (img.max() - img.min())
    return (0.15 + 0.7 * img).astype(np.float32)


def _disc(h: int = 96, w: int = 128, r: float = 15.0) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    d = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    img = np.full((h, w), 0.2, np.float32)
    img[d <= r] = 0.8
    return img


def _grad_energy(img: np.ndarray) -> float:
    gy, gx = np.gradient(img.astype(np.float64))
    return float(np.mean(gx**2 + gy**2))


def _hf_energy(img: np.ndarray) -> float:
    img = img.astype(np.float64)
    return float(np.mean((img - ndimage.gaussian_filter(img, 1.5)) ** 2))


@pytest.fixture
def img() -> np.ndarray:
    return _textured()


def test_identity_unchanged(img):
    s = AcquisitionShift()
    assert s.is_identity
    out = s.apply(img, rng=0)
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("kind", SHIFT_KINDS)
def test_severity_zero_is_identity(kind, img):
    s = shift_at_severity(kind, 0.0)
    assert s.is_identity
    np.testing.assert_array_equal(s.apply(img, rng=1), img)


@pytest.mark.parametrize("kind", SHIFT_KINDS)
@pytest.mark.parametrize("severity", [0.3, 1.0])
def test_shape_dtype_range(kind, severity, img):
    s = shift_at_severity(kind, severity)
    assert not s.is_identity
    out = s.apply(img, rng=0)
    assert out.shape == img.shape
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, img)


def test_uint8_input_accepted():
    u8 = (np.linspace(0, 255, 64 * 64).reshape(64, 64)).astype(np.uint8)
    out = shift_at_severity("gamma", 0.5).apply(u8)
    assert out.dtype == np.float32 and out.shape == (64, 64)
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_non_2d_rejected():
    with pytest.raises(ValueError):
        AcquisitionShift(brightness=0.1).apply(np.zeros((4, 4, 3), np.float32))


def test_brightness_direction(img):
    up = shift_at_severity("brightness", 0.5).apply(img)
    down = shift_at_severity("brightness", -0.5).apply(img)
    assert up.mean() > img.mean() + 0.1
    assert down.mean() < img.mean() - 0.1
    assert shift_at_severity("brightness", 1.0).brightness == pytest.approx(0.25)


def test_contrast_reduces_std(img):
    out = shift_at_severity("contrast", 1.0).apply(img)
    assert out.std() == pytest.approx(0.5 * img.std(), rel=0.02)
    assert out.mean() == pytest.approx(img.mean(), abs=1e-3)


def test_gamma_darkens_midtones():
    ramp = np.tile(np.linspace(0, 1, 101, dtype=np.float32), (8, 1))
    out = shift_at_severity("gamma", 1.0).apply(ramp)
    mid = slice(20, 81)
    assert np.all(out[:, mid] < ramp[:, mid])
    # end points fixed
    assert out[0, 0] == pytest.approx(0.0) and out[0, -1] == pytest.approx(1.0)


def test_noise_adds_hf_energy_and_is_reproducible(img):
    s = shift_at_severity("noise", 0.8)
    a = s.apply(img, rng=123)
    b = s.apply(img, rng=123)
    c = s.apply(img, rng=124)
    assert _hf_energy(a) > 5 * _hf_energy(img)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # a Generator works too and gives the same stream as its seed
    np.testing.assert_array_equal(s.apply(img, rng=np.random.default_rng(123)), a)
    # mean approximately preserved (shot noise is unbiased)
    assert abs(float(a.mean()) - float(img.mean())) < 0.02


def test_noise_monotone_in_severity(img):
    e = [_hf_energy(shift_at_severity("noise", s).apply(img, rng=0)) for s in (0.25, 0.5, 1.0)]
    assert e[0] < e[1] < e[2]


def test_blur_reduces_gradient_energy(img):
    out = shift_at_severity("blur", 0.5).apply(img)
    assert _grad_energy(out) < 0.7 * _grad_energy(img)
    stronger = shift_at_severity("blur", 1.0).apply(img)
    assert _grad_energy(stronger) < _grad_energy(out)


def test_magnification_enlarges_features():
    disc = _disc()
    area0 = int((disc > 0.5).sum())
    zin = shift_at_severity("magnification", 1.0).apply(disc)
    area_in = int((zin > 0.5).sum())
    assert area_in == pytest.approx(area0 * 1.4**2, rel=0.1)
    zout = AcquisitionShift(scale=0.7).apply(disc)
    assert zout.shape == disc.shape
    # zoom-out: the central disc shrinks (reflect padding may add partial copies at borders)
    lab, n = ndimage.label(zout > 0.5)
    centre = lab[disc.shape[0] // 2, disc.shape[1] // 2]
    assert centre > 0
    assert int((lab == centre).sum()) == pytest.approx(area0 * 0.49, rel=0.15)


def test_extreme_zoom_out_keeps_shape(img):
    out = AcquisitionShift(scale=0.2).apply(img)
    assert out.shape == img.shape


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="sharpness") as exc:
        shift_at_severity("sharpness", 0.5)
    for k in SHIFT_KINDS:
        assert k in str(exc.value)


def test_bad_severity_raises():
    with pytest.raises(ValueError):
        shift_at_severity("blur", 1.5)
    with pytest.raises(ValueError):
        shift_at_severity("gamma", -0.2)


def test_invalid_parameters_raise():
    with pytest.raises(ValueError):
        AcquisitionShift(gamma=0)
    with pytest.raises(ValueError):
        AcquisitionShift(noise_photons=0)
    with pytest.raises(ValueError):
        AcquisitionShift(scale=-1)


def test_dict_round_trip():
    for s in (AcquisitionShift(), simulated_instrument_shift(), random_shift(3)):
        d = s.to_dict()
        json.dumps(d)
        assert AcquisitionShift.from_dict(d) == s
    with pytest.raises(ValueError):
        AcquisitionShift.from_dict({"brightnes": 0.1})


def test_severity_grid():
    assert severity_grid(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert severity_grid(2) == [0.0, 1.0]
    with pytest.raises(ValueError):
        severity_grid(1)


def test_simulated_instrument_shift(img):
    s = simulated_instrument_shift()
    assert not s.is_identity
    a = s.apply(img, rng=0)
    np.testing.assert_array_equal(a, s.apply(img, rng=0))
    assert a.mean() < img.mean()  # darker target domain
    assert "simulat" in (simulated_instrument_shift.__doc__ or "").lower()


def test_random_shift():
    assert random_shift(0, strength=0.0).is_identity
    a, b = random_shift(7), random_shift(7)
    assert a == b
    assert random_shift(8) != a
    strong = [random_shift(i, 1.0) for i in range(20)]
    assert len({s.brightness for s in strong}) == 20
    for s in strong:
        assert 0.5 <= s.contrast <= 1.5 and 0.5 <= s.gamma <= 2.0 and 0.8 <= s.scale <= 1.3


@pytest.mark.parametrize("shape", [(224, 224), (960, 1280)])
def test_fast_on_large_images(shape):
    import time

    big = np.random.default_rng(0).random(shape, dtype=np.float32)
    t = time.perf_counter()
    out = simulated_instrument_shift().apply(big, rng=0)
    assert out.shape == shape
    assert time.perf_counter() - t < 2.0
