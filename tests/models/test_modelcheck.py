"""Tests for semcathode.models._modelcheck: one ModelFileError naming the file and the field, for every
way a model JSON can disagree with itself or with its weights; no network is ever touched."""

from __future__ import annotations

import copy
import hashlib
import socket
from pathlib import Path

import pytest
import torch

from semcathode.models._modelcheck import FORMAT, ModelFileError, classes_digest, validate_model_meta
from semcathode.data._schema import default_schema

CLASSES = default_schema().classes
JSON = Path("/models/model.json")


def _meta() -> dict:
    return {
        "format": FORMAT,
        "classes": list(CLASSES),
        "classes_digest": classes_digest(CLASSES),
        "backbone": "efficientnet_lite0",
        "timm_name": "tf_efficientnet_lite0",
        "num_classes": len(CLASSES),
        "preprocess": {"mode": "scale", "size": 224, "scale_um": 0.5, "tile_stride": 1.0},
        "normalize": "dataset",
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "bar": {"method": "auto", "fraction": 0.0667},
        "temperature": 1.3,
    }


def _state(n: int = len(CLASSES)) -> dict:
    return {"conv_stem.weight": torch.zeros(32, 3, 3, 3), "classifier.weight": torch.zeros(n, 1280),
            "classifier.bias": torch.zeros(n)}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*a, **k):
        raise AssertionError("validate_model_meta tried to use the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_valid_meta_passes():
    validate_model_meta(_meta(), _state(), JSON)
    m = _meta()
    del m["classes_digest"], m["bar"], m["temperature"], m["num_classes"], m["backbone"]
    validate_model_meta(m, _state(), JSON)  # optional fields may be absent


def test_digest_is_sha256_of_newline_joined_classes():
    assert classes_digest(CLASSES) == hashlib.sha256("\n".join(CLASSES).encode()).hexdigest()


def _set(path: str, value):
    def edit(m: dict) -> None:
        node = m
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return edit


def _drop(key: str):
    return lambda m: m.pop(key)


BAD = [
    ("std_zero", _set("std", [0, 0, 0]), "std", "> 0"),
    ("std_negative", _set("std", [0.2, -0.2, 0.2]), "std", "> 0"),
    ("std_short", _set("std", [0.5, 0.5]), "std", "3 numbers"),
    ("std_text", _set("std", ["a", "b", "c"]), "std", "finite"),
    ("mean_long", _set("mean", [0.5, 0.5, 0.5, 0.5]), "mean", "3 numbers"),
    ("mean_nan", _set("mean", [float("nan"), 0.5, 0.5]), "mean", "finite"),
    ("mean_inf", _set("mean", [float("inf"), 0.5, 0.5]), "mean", "finite"),
    ("timm_unknown", _set("timm_name", "resnet_9000"), "timm_name", "unknown architecture"),
    ("head_unknown", _set("head", "blocks.9"), "head", "linear head reads"),
    ("head_not_str", _set("head", 5), "head", "linear head reads"),
    ("timm_hub", _set("timm_name", "hf-hub:timm/efficientnet_b0.ra_in1k"), "timm_name", "hub"),
    ("timm_path", _set("timm_name", "../../etc/passwd"), "timm_name", "hub or a file"),
    ("timm_not_str", _set("timm_name", 7), "timm_name", "architecture name"),
    ("backbone_mismatch", _set("backbone", "efficientnet_b0"), "backbone", "timm_name says"),
    ("backbone_unknown", _set("backbone", "vgg"), "backbone", "unknown backbone"),
    ("classes_empty", lambda m: (m.update(classes=[]), m.pop("classes_digest")), "classes", "non-empty"),
    ("classes_not_list", _set("classes", "NCM333_pristine"), "classes", "non-empty list"),
    ("classes_dup", lambda m: (m["classes"].__setitem__(1, m["classes"][0]), m.pop("classes_digest")),
     "classes", "unique"),
    ("classes_blank", lambda m: (m["classes"].__setitem__(1, " "), m.pop("classes_digest")), "classes", "non-empty string"),
    ("classes_reversed", lambda m: m["classes"].reverse(), "classes", "classes_digest"),
    ("classes_fewer_than_weights", lambda m: (m["classes"].pop(), m.pop("classes_digest"), m.pop("num_classes")),
     "classes", "9 outputs"),
    ("num_classes", _set("num_classes", 3), "num_classes", "lists 9"),
    ("preprocess_not_dict", _set("preprocess", [224]), "preprocess", "mapping"),
    ("size_zero", _set("preprocess.size", 0), "preprocess.size", "[16, 4096]"),
    ("size_huge", _set("preprocess.size", 100000), "preprocess.size", "[16, 4096]"),
    ("size_text", _set("preprocess.size", "224"), "preprocess.size", "integer"),
    ("size_float", _set("preprocess.size", 224.5), "preprocess.size", "integer"),
    ("mode_unknown", _set("preprocess.mode", "squash"), "preprocess.mode", "scale, resize"),
    ("scale_negative", _set("preprocess.scale_um", -0.5), "preprocess.scale_um", ">= 0"),
    ("scale_inf", _set("preprocess.scale_um", float("inf")), "preprocess.scale_um", "finite"),
    ("stride_zero", _set("preprocess.tile_stride", 0), "preprocess.tile_stride", "(0, 1]"),
    ("stride_big", _set("preprocess.tile_stride", 1.5), "preprocess.tile_stride", "(0, 1]"),
    ("crops_zero", _set("preprocess.crops_per_image", 0), "preprocess.crops_per_image", ">= 1"),
    ("preprocess_unknown_key", _set("preprocess.zoom", 2), "preprocess", "zoom"),
    ("normalize_unknown", _set("normalize", "zscore"), "normalize", "dataset, per_image"),
    ("bar_fraction", _set("bar.fraction", 1.5), "bar.fraction", "[0, 1)"),
    ("bar_method", _set("bar.method", "guess"), "bar.method", "auto"),
    ("temperature_zero", _set("temperature", 0), "temperature", "> 0"),
    ("trunk_text", _set("trunk", "6"), "trunk", "integer in [0, 7]"),
    ("trunk_deep", _set("trunk", 9), "trunk", "integer in [0, 7]"),
    ("trunk_dtype_unknown", _set("trunk_dtype", "float8"), "trunk_dtype", "float32, bfloat16"),
    ("format", _set("format", "other-v9"), "", "unknown format"),
    ("missing_std", _drop("std"), "", "missing key 'std'"),
]


@pytest.mark.parametrize("name,edit,field,problem", BAD, ids=[b[0] for b in BAD])
def test_bad_meta_names_file_and_field(name, edit, field, problem):
    meta = copy.deepcopy(_meta())
    edit(meta)
    with pytest.raises(ModelFileError) as info:
        validate_model_meta(meta, _state(), JSON)
    msg = str(info.value)
    assert msg.startswith(f"{JSON}:"), msg
    if field:
        assert f"field '{field}'" in msg, msg
    assert problem in msg, msg
    assert "\n" not in msg


def test_weights_checked_against_classes():
    st = _state()
    st["classifier.bias"] = torch.zeros(8)
    with pytest.raises(ModelFileError, match=r"field 'classes'.*classifier bias"):
        validate_model_meta(_meta(), st, JSON)
    st = _state(5)
    with pytest.raises(ModelFileError, match=r"field 'classes' lists 9 classes but the classifier weights"):
        validate_model_meta(_meta(), st, JSON)
    st = _state()
    del st["classifier.weight"], st["classifier.bias"]
    with pytest.raises(ModelFileError, match=r"field 'weights' no classifier found"):
        validate_model_meta(_meta(), st, JSON)
    st = _state()
    st["conv_stem.weight"][0, 0, 0, 0] = float("nan")
    with pytest.raises(ModelFileError, match=r"field 'weights'.*conv_stem.weight.*NaN"):
        validate_model_meta(_meta(), st, JSON)
    with pytest.raises(ModelFileError, match=r"field 'weights'.*no tensors"):
        validate_model_meta(_meta(), {}, JSON)


def test_not_an_object():
    with pytest.raises(ModelFileError, match="JSON object"):
        validate_model_meta([1, 2], _state(), JSON)
