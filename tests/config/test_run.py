"""Tests for semcathode.config._run: loading profiles, files and overrides; validation; saving."""

import pytest
import yaml

from semcathode.config._run import load_config, save_config, validate
from semcathode.config._sections import PROFILES, ConfigError, RunConfig, config_hash


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_load(profile):
    cfg = load_config(profile)
    assert isinstance(cfg, RunConfig) and cfg.profile == profile


def test_precedence_profile_file_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("stage1:\n  epochs: 7\n  lr: 0.5\n")
    cfg = load_config("smoke", f, {"stage1.lr": 0.25})
    assert cfg.stage1.epochs == 7  # file beats profile
    assert cfg.stage1.lr == 0.25  # override beats file
    cfg2 = load_config("smoke", f, ["stage1.epochs=3", "protocol.seeds=[4, 5]"])
    assert cfg2.stage1.epochs == 3 and cfg2.protocol.seeds == [4, 5]


def test_unknown_key_is_named(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("stage1:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match=r"stage1\.epochz"):
        load_config("smoke", f)
    with pytest.raises(ConfigError, match="nonsense"):
        load_config("smoke", overrides={"nonsense": 1})


def test_bad_value_is_named(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("stage2:\n  epochs: many\n")
    with pytest.raises(ConfigError, match=r"stage2\.epochs.*many"):
        load_config("smoke", f)
    with pytest.raises(ConfigError, match=r"preprocess\.mode.*'squash'"):
        load_config("smoke", overrides={"preprocess.mode": "squash"})
    with pytest.raises(ConfigError, match="unknown profile"):
        load_config("huge")
    f.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config("smoke", f)


def test_save_roundtrip_and_hash(tmp_path):
    cfg = load_config("demo", overrides={"stage1.epochs": 9})
    p = save_config(cfg, tmp_path / "config.yaml")
    saved = yaml.safe_load(p.read_text())
    assert saved["config_hash"] == config_hash(cfg)
    again = load_config("demo", p)
    assert again == cfg and config_hash(again) == config_hash(cfg)
    other = load_config("demo", overrides={"stage1.epochs": 8})
    assert config_hash(other) != config_hash(cfg)
    assert config_hash(other, "data") == config_hash(cfg, "data")
    assert config_hash(other, "stage1") != config_hash(cfg, "stage1")


@pytest.mark.parametrize("key", ["target.shift_strength", "protocol.linear_probe", "evaluate.ci",
                                 "cam.methods", "cam.batch_size", "validity.shortcut"])
def test_removed_keys_are_unknown(tmp_path, key):
    """Keys nothing read were removed; a file that still sets one gets the unknown-key error."""
    section, name = key.split(".")
    f = tmp_path / "old.yaml"
    f.write_text(f"{section}:\n  {name}: 1\n")
    with pytest.raises(ConfigError, match=rf"unknown config key '{section}\.{name}'"):
        load_config("smoke", f)


def test_linear_head_needs_every_kept_stage_in_the_trunk():
    """model.head = linear trains only the classifier: the trunk must be every stage the head keeps."""
    ok = load_config("smoke", overrides={"model.head": "linear", "model.head_layer": "blocks.4", "model.trunk": 5})
    assert (ok.model.head, ok.model.trunk) == ("linear", 5)
    with pytest.raises(ConfigError, match="model.trunk' = 6 must be 5"):
        load_config("smoke", overrides={"model.head": "linear", "model.head_layer": "blocks.4", "model.trunk": 6})
    with pytest.raises(ConfigError, match="model.head_layer"):
        load_config("smoke", overrides={"model.head": "linear", "model.head_layer": "blocks.6", "model.trunk": 6})


def test_validate_lists_every_bad_value():
    cfg = load_config("smoke")
    validate(cfg)
    cfg.stage1.epochs = -1
    cfg.data.valid_frac, cfg.data.test_frac = 0.6, 0.5
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert len(err.value.problems) == 2 and "stage1.epochs" in str(err.value)
