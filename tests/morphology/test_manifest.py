"""Measuring a study's manifest through the measures cache."""

from __future__ import annotations

import pandas as pd
import pytest

from semcathode.config import MorphologyConfig
from semcathode.data import example_study
from semcathode.morphology import measure_manifest
from semcathode.morphology._measure import MEASURE_COLUMNS
from semcathode.morphology._manifest import settings_digest


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    _, study = example_study(tmp_path_factory.mktemp("ex"))
    return study.manifest.head(6).reset_index(drop=True)


def test_measures_every_row_in_order_and_reuses_the_cache(manifest, tmp_path):
    lines = []
    a = measure_manifest(manifest, cache_dir=tmp_path, log=lines.append)
    assert list(a.path) == list(manifest.path) and (a.error == "").all()
    assert set(MEASURE_COLUMNS) <= set(a.columns) and {"label", "split", "domain"} <= set(a.columns)
    assert lines == ["morphology: 6 micrograph(s) measured, 0 read from the cache"]
    b = measure_manifest(manifest, cache_dir=tmp_path, log=lines.append)
    assert lines[-1] == "morphology: 0 micrograph(s) measured, 6 read from the cache"
    pd.testing.assert_frame_equal(a[list(MEASURE_COLUMNS)], b[list(MEASURE_COLUMNS)], check_dtype=False)
    c = measure_manifest(manifest, MorphologyConfig(fines_um=2.0), cache_dir=tmp_path, log=lines.append)
    assert lines[-1].startswith("morphology: 6 micrograph(s) measured")  # other settings: measured again
    assert len(list(tmp_path.glob("measures-*.csv"))) == 2
    assert settings_digest(MorphologyConfig()) != settings_digest(MorphologyConfig(fines_um=2.0))
    assert (c.d50_um == a.d50_um).all()


def test_a_row_without_pixel_size_is_an_error_unless_a_fallback_is_given(manifest, tmp_path):
    m = manifest.copy()
    m.loc[0, "pixel_size_um"] = float("nan")
    out = measure_manifest(m, workers=2)
    assert "no pixel size" in out.error[0] and (out.error[1:] == "").all()
    assert measure_manifest(m.head(1), pixel_size_um=0.7).error[0] == ""


def test_a_shifted_target_row_is_measured_as_the_network_sees_it(manifest):
    import json

    m = manifest.head(2).copy()
    m.loc[1, "path"] = m.loc[0, "path"]
    m.loc[1, "sha256"] = m.loc[0, "sha256"]
    m.loc[1, "shift"] = json.dumps({"blur_sigma_px": 3.0})
    out = measure_manifest(m)
    assert out.texture[1] < out.texture[0]  # blurred: less fine surface detail


def test_a_damaged_cache_is_measured_again(manifest, tmp_path):
    measure_manifest(manifest.head(2), cache_dir=tmp_path)
    f = next(tmp_path.glob("measures-*.csv"))
    f.write_text("garbage\x00,,,\n\"unterminated")
    assert (measure_manifest(manifest.head(2), cache_dir=tmp_path).error == "").all()
