"""The CAM's energy on particle boundaries, interiors, fines and background."""

from __future__ import annotations

import numpy as np
import pytest

from semcathode.config import MorphologyConfig
from semcathode.explain._particles import REGIONS, cam_particle_table, particle_energy, particle_regions
from semcathode.morphology import segment_particles

CFG = MorphologyConfig(work_um=0, threshold="otsu", band_um=2.0, fines_um=3.0, min_diameter_um=1.0)


def _scene():
    yy, xx = np.mgrid[:200, :200]
    img = np.full((200, 200), 0.2, np.float32)
    img[(yy - 60) ** 2 + (xx - 60) ** 2 < 30 ** 2] = 0.8  # a particle 30 µm across at 0.5 µm/px
    img[(yy - 150) ** 2 + (xx - 150) ** 2 < 2 ** 2] = 0.8  # a fine, 2 µm across
    return img, segment_particles(img, 0.5, CFG)


def test_regions_split_the_micrograph():
    _, seg = _scene()
    r = particle_regions(seg)
    name = lambda y, x: REGIONS[r[y, x]]  # noqa: E731
    # the outline lies between x = 30 (outside) and 31 (inside); the band reaches 1 µm (2 px) to either side
    assert [name(60, x) for x in range(27, 35)] == ["background"] * 2 + ["boundary"] * 4 + ["interior"] * 2
    assert name(60, 60) == "interior"
    assert name(150, 150) == "fines" and name(5, 5) == "background"
    band = (r == REGIONS.index("boundary")).sum() * 0.25  # µm²: about the outline length x the band width
    assert band == pytest.approx(2 * np.pi * 15 * 2.0, rel=0.15)


@pytest.mark.parametrize("region", REGIONS)
def test_energy_follows_the_map(region):
    _, seg = _scene()
    regions = particle_regions(seg)
    cam = (regions == REGIONS.index(region)).astype(np.float32)  # a map on that region alone
    e = particle_energy(cam, seg)
    assert e[f"energy_{region}"] == pytest.approx(1.0)
    assert sum(e[f"area_{r}"] for r in REGIONS) == pytest.approx(1.0)
    assert e[f"ratio_{region}"] == pytest.approx(1 / e[f"area_{region}"])


def test_a_uniform_map_has_no_preference_and_low_res_maps_are_resized():
    _, seg = _scene()
    e = particle_energy(np.ones((7, 7)), seg)
    for r in REGIONS:
        assert e[f"ratio_{r}"] == pytest.approx(1.0, abs=1e-6)
    table = cam_particle_table([{"arm": "a", "label": "x", **e}, {"arm": "a", "label": "y", **e}])
    assert list(table.label) == ["x", "y", "(all)"] and table.n.tolist() == [1, 1, 2]
    assert cam_particle_table([]).empty
