"""Tests for semcathode.config._sections: declared ranges and choices, the configuration hash."""

import dataclasses

import pytest

from semcathode.config._sections import ConfigError, Range, RunConfig, config_hash


def test_range_membership_and_text():
    r = Range(0, 1, hi_open=True)
    assert 0 in r and 0.5 in r and 1 not in r and -0.1 not in r
    assert True not in r and float("nan") not in r and "0.5" not in r
    assert str(r) == "in [0, 1)" and str(Range(0, lo_open=True)) == "> 0" and str(Range()) == "a finite number"


def test_every_field_default_is_allowed():
    cfg = RunConfig()
    for section in dataclasses.fields(cfg):
        value = getattr(cfg, section.name)
        if not dataclasses.is_dataclass(value):
            continue
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if "range" in f.metadata:
                assert v in f.metadata["range"], (section.name, f.name)
            if "choices" in f.metadata:
                assert v in f.metadata["choices"], (section.name, f.name)


def test_hash_of_sections():
    a, b = RunConfig(), RunConfig()
    b.stage1.epochs += 1
    assert len(config_hash(a)) == 12 and a.hash() == config_hash(a)
    assert config_hash(a) != config_hash(b)
    assert config_hash(a, "data", "model") == config_hash(b, "data", "model")
    assert a.hash("stage1") != b.hash("stage1")
    with pytest.raises(ConfigError, match="unknown config section"):
        config_hash(a, "nonsense")
