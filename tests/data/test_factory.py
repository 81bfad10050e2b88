import pytest

from semcathode.config._settings import study_settings
from semcathode.config import cache_root
from semcathode.config._run import load_config
from semcathode.data._splits import SIMULATED_SHIFT_NOTE, check_no_group_leak
from semcathode.data._factory import build_manifest, prepare_splits, write_attribution
from semcathode.data import load_study
from semcathode.report._notes import target_domain_note
from semcathode.data._manifest import write_manifest
from semcathode.pipeline import MANIFEST


@pytest.fixture(scope="module")
def cfg(synthetic_root):
    return load_config("smoke", overrides={"data.dataset": "folder", "data.data_dir": str(synthetic_root), "preprocess.size": 32,
                                           "data.extra_compositions": []})


def test_prepare_splits_simulated_shift(cfg):
    df = prepare_splits(build_manifest(cfg.data, cache_root(cfg)), cfg.data, cfg.target)
    check_no_group_leak(df)
    assert set(df["domain"]) == {"source", "target"}
    assert (df.loc[df.domain == "target", "shift"] != "").all()
    assert SIMULATED_SHIFT_NOTE.split(":")[0] in target_domain_note(cfg.target)


def test_domain_column_target(cfg, synthetic_root, tmp_path):
    import pandas as pd

    files = sorted(synthetic_root.rglob("*.png"))
    labels = pd.DataFrame({"path": [str(f) for f in files], "label": [f.parent.name for f in files],
                           "domain": ["additive" if i % 3 == 0 else "plain" for i in range(len(files))]})
    labels.to_csv(tmp_path / "l.csv", index=False)
    from dataclasses import replace

    c = replace(cfg, data=replace(cfg.data, labels_csv=str(tmp_path / "l.csv")),
                target=replace(cfg.target, kind="domain_column", domain="additive"))
    df = prepare_splits(build_manifest(c.data, cache_root(c)), c.data, c.target)
    assert set(df["domain"]) == {"source", "target"} and (df["shift"] == "").all()
    assert "real data" in target_domain_note(c.target)


def test_load_study_needs_01(cfg, tmp_path):
    with pytest.raises(FileNotFoundError, match="01_data"):
        load_study(study_settings(cfg), tmp_path / MANIFEST)
    df = prepare_splits(build_manifest(cfg.data, cache_root(cfg)), cfg.data, cfg.target)
    write_manifest(df, tmp_path / MANIFEST)
    st = load_study(study_settings(cfg), tmp_path / MANIFEST)
    assert len(st.items) == len(df) and st.classes[0] == "NCM333_pristine"
    assert len(st.rows("target", "test")) > 0
    assert "synthetic" in write_attribution(cfg.data, tmp_path).read_text()


def test_load_study_resolves_a_portable_manifest_against_the_data_root(cfg, synthetic_root, tmp_path):
    import os
    from pathlib import Path

    df = prepare_splits(build_manifest(cfg.data, cache_root(cfg)), cfg.data, cfg.target)
    portable = df.assign(path=[os.path.relpath(p, synthetic_root) for p in df["path"]])
    assert not any(Path(p).is_absolute() for p in portable["path"])
    write_manifest(portable, tmp_path / MANIFEST)
    st = load_study(study_settings(cfg), tmp_path / MANIFEST)
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in st.manifest["path"])
    assert sorted(st.manifest["path"]) == sorted(df["path"])
