import shutil

import pandas as pd
import pytest

import semcathode.data._download as ds
from semcathode.data._download import DatasetError, build_registry, fetch, registry, verify

from conftest import KAIST, needs_kaist


def _sha(path):
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_registry_is_complete():
    reg = registry("kaist-ncm")
    assert len(reg) == 770 + 769  # images + sidecars (one image has none upstream)
    assert reg["sha256"].str.len().eq(64).all()
    assert reg["upstream_commit"].str.len().eq(40).all()
    with pytest.raises(DatasetError, match="unknown dataset"):
        registry("nope")


@pytest.fixture()
def small_registry(tmp_path, monkeypatch, synthetic_root):
    """A registry over three synthetic files served from a local mirror."""
    mirror = tmp_path / "mirror"
    files = sorted((synthetic_root / "NCM333_cycled").glob("*.png"))[:3]
    rows = []
    for f in files:
        rel = f"images/NCM333_cycled/{f.name}"
        (mirror / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, mirror / rel)
        rows.append((rel, _sha(f), f.stat().st_size, "0" * 40, rel))
    reg = pd.DataFrame(rows, columns=["file", "sha256", "bytes", "upstream_commit", "upstream_path"])
    monkeypatch.setattr(ds, "registry", lambda name="kaist-ncm": reg)
    return mirror, reg


def test_fetch_from_mirror_verifies_and_resumes(tmp_path, small_registry):
    mirror, reg = small_registry
    dest = tmp_path / "dest"
    fetch("kaist-ncm", dest, mirror=mirror)
    assert verify(dest) == []
    assert "Oh" in (dest / "ATTRIBUTION.md").read_text()
    # resume: an existing good file is kept, a missing one is copied again
    (dest / reg.file[1]).unlink()
    keep = dest / reg.file[0]
    mtime = keep.stat().st_mtime_ns
    fetch("kaist-ncm", dest, mirror=mirror)
    assert keep.stat().st_mtime_ns == mtime and verify(dest) == []


def test_fetch_refuses_tampered_file(tmp_path, small_registry, monkeypatch):
    mirror, reg = small_registry
    bad = mirror / reg.file[2]
    data = bytearray(bad.read_bytes())
    data[100] ^= 0xFF
    bad.write_bytes(bytes(data))
    dest = tmp_path / "dest"
    with pytest.raises(DatasetError, match=f"{reg.file[2]}.*sha256 mismatch"):
        fetch("kaist-ncm", dest, mirror=mirror)
    assert not (dest / reg.file[2]).exists()  # nothing half-written or wrong left behind
    assert not list(dest.rglob("*.fetching"))
    monkeypatch.setenv("SEMCATHODE_DATA_MIRROR", str(mirror))
    with pytest.raises(DatasetError, match="sha256 mismatch"):
        fetch("kaist-ncm", tmp_path / "d2")


def test_missing_in_mirror(tmp_path, small_registry):
    mirror, reg = small_registry
    (mirror / reg.file[0]).unlink()
    with pytest.raises(DatasetError, match="not found in mirror"):
        fetch("kaist-ncm", tmp_path / "d", mirror=mirror)


@needs_kaist
@pytest.mark.realdata
def test_registry_matches_shared_copy():
    reg = build_registry(KAIST)
    assert reg.equals(registry("kaist-ncm"))
