"""Tests for semcathode.models._export: export -> load -> predict equals the in-memory model; file errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from semcathode.config._settings import study_settings
from semcathode.models._backbones import normalization
from semcathode.config._run import load_config
from semcathode.data._loaders import make_dataloaders
from semcathode.models._export import FORMAT, ModelFileError, export_model, load_model, predict_paths
from semcathode.study._export import export_trained
from semcathode.models._learner import make_learner, seed_everything
from semcathode.data._manifest import index_folder
from semcathode.data._preprocess import PreprocessCache, PreprocessParams, build_items
from semcathode.study._evaluation import predict_micrographs
from semcathode.study._train import TrainedModel
from semcathode.data._schema import default_schema
from semcathode.data._splits import assign_groups, split_groups
from conftest import fastai_probs as _fastai_probs

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = default_schema().classes
PCOLS = [f"p_{c}" for c in CLASSES]


@pytest.fixture(scope="module")
def manifest(synthetic_root):
    m = index_folder(synthetic_root)
    return split_groups(assign_groups(m, block_size=2), valid_frac=0.25, test_frac=0.25, seed=0)


@pytest.fixture(scope="module")
def pcache(tmp_path_factory):
    return PreprocessCache(tmp_path_factory.mktemp("pc"))


def _sharpen_head(model: torch.nn.Module, seed: int = 0) -> None:
    """Give the (near-zero) new head large random weights so probabilities depend strongly on the input."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.randn(model.classifier.weight.shape, generator=g) * 0.3)


def _learner_and_export(manifest, pcache, tmp_path, mode="resize", normalize="dataset"):
    # scale mode: the synthetic frames (0.7 µm/px) at 1.4 µm/px, 32-px tiles (a grid of several per micrograph)
    cfg = load_config("smoke", overrides={"preprocess.size": 32, "preprocess.mode": mode, "preprocess.scale_um": 1.4,
                                          "preprocess.normalize": normalize})
    params = PreprocessParams(mode, 32, scale_um=1.4)
    items = build_items(manifest, params, pcache)
    mean, std = normalization("efficientnet_lite0")
    dls = make_dataloaders(items, CLASSES, bs=8, augment=False, normalize=normalize, mean=mean, std=std)
    seed_everything(0)
    learn, info = make_learner(dls, len(CLASSES), weights="packaged")
    _sharpen_head(learn.model)
    tm = TrainedModel(learn, "ft_only", 3, pd.DataFrame(), info.to_dict(), 0.0, settings=study_settings(cfg))
    path = export_trained(tm, tmp_path / "model.safetensors", CLASSES, metrics={"macro_f1": 0.5})
    return cfg, items, tm, path


@pytest.fixture(scope="module")
def exported(manifest, pcache, tmp_path_factory):
    """One exported (untrained, sharpened-head) resize-32 model and its items."""
    return _learner_and_export(manifest, pcache, tmp_path_factory.mktemp("exp"))


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("mode,normalize", [("resize", "dataset"), ("resize", "per_image"), ("scale", "dataset")])
def test_export_load_predict_matches_in_memory(manifest, pcache, tmp_path, mode, normalize):
    cfg, items, tm, path = _learner_and_export(manifest, pcache, tmp_path, mode, normalize)
    sub = items[items["image_id"].isin(manifest.index[manifest["split"] == "test"][::3])]
    ref, _ = predict_micrographs(tm, sub, CLASSES)
    if mode == "scale":
        assert (ref["n_tiles"] > 1).all()  # a real tile grid, aggregated per micrograph
    paths = list(ref["path"])
    ref = ref[PCOLS]
    assert len(paths) >= 4

    model = load_model(path)
    got = predict_paths(model, paths)
    assert list(got["path"]) == paths and (got["error"] == "").all()
    np.testing.assert_allclose(got[PCOLS].to_numpy(), ref.to_numpy(), atol=1e-5, rtol=0)
    # the probabilities are far from uniform, so the comparison is a sensitive one
    assert got[PCOLS].to_numpy().max() > 0.3
    assert list(got["pred"]) == [CLASSES[j] for j in ref.to_numpy().argmax(1)]
    np.testing.assert_allclose(got["confidence"], ref.to_numpy().max(1), atol=1e-5)


def test_prediction_is_sensitive_to_the_preprocessing(exported, manifest):
    """Guard for the round-trip test: a wrong pre-processing changes the probabilities beyond 1e-5."""
    _, _, _, path = exported
    model = load_model(path)
    x = model.preprocess_path(manifest["path"].iloc[0])[1]
    p = model.predict_tensor(x)
    p_flip = model.predict_tensor(x.flip(-1))
    p_bar = model.predict_tensor(model.normalise(np.zeros((32, 32), np.uint8)))
    assert np.abs(p - p_flip).max() > 1e-3 and np.abs(p - p_bar).max() > 1e-3


def test_optimize_sets_nothing_on_the_network_and_its_layout_chooses_the_input_format(exported, manifest):
    """The one model object needs no flag patched onto the module: the input format is read from
    the folded network's own weights, and the trained model's normalisation from its own cfg."""
    from semcathode.models._forward import _input_format

    _, _, tm, path = exported
    assert not hasattr(tm.learner, "norm_stats") and not hasattr(tm.learner, "weights_info")
    assert tm.input_norm == normalization(tm.model) == normalization("efficientnet_lite0")
    model = load_model(path)
    x = model.preprocess_path(manifest["path"].iloc[0])[1]
    eager = model.predict_tensor(x)
    assert _input_format(model.model) == torch.contiguous_format
    names = set(vars(model.model))
    model.optimize()
    assert set(vars(model.model)) == names  # nothing added to the module
    assert _input_format(model.model) == torch.channels_last
    np.testing.assert_allclose(model.predict_tensor(x), eager, atol=1e-5)


def test_optimized_is_a_folded_copy_and_leaves_the_model_as_it_was(exported, manifest):
    _, _, _, path = exported
    model = load_model(path)
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    x = model.preprocess_path(manifest["path"].iloc[0])[1]
    fast = model.optimized()
    assert fast.model is not model.model and fast.classes == model.classes and fast.meta == model.meta
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.model.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.model.modules())
    after = model.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    np.testing.assert_allclose(fast.predict_tensor(x), model.predict_tensor(x), atol=1e-5)
    np.testing.assert_allclose(fast.predict_arrays([model.load_array(manifest["path"].iloc[0])[1]]).log_probs,
                               model.predict_arrays([model.load_array(manifest["path"].iloc[0])[1]]).log_probs,
                               atol=1e-4)


def test_exported_json_describes_the_model(exported):
    cfg, _, tm, path = exported
    learn = tm.learner
    assert path.suffix == ".safetensors" and path.with_suffix(".json").is_file()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["format"] == FORMAT
    assert meta["classes"] == CLASSES and meta["num_classes"] == 9
    assert meta["timm_name"] == "tf_efficientnet_lite0" and meta["backbone"] == "efficientnet_lite0"
    assert meta["preprocess"]["mode"] == "resize" and meta["preprocess"]["size"] == 32
    assert meta["aggregate"] == "mean_log_prob" and meta["temperature"] == 1.0
    assert meta["normalize"] == "dataset" and meta["mean"] == [0.5] * 3 and meta["std"] == [0.5] * 3
    assert meta["arm"] == "ft_only" and meta["seed"] == 3 and meta["metrics"] == {"macro_f1": 0.5}
    assert meta["config_hash"] == study_settings(cfg).hash() != study_settings(load_config("demo")).hash()
    assert meta["bar"] == {"method": cfg.data.bar_method, "fraction": cfg.data.bar_fraction}
    model = load_model(path)
    assert model.classes == CLASSES and not model.model.training
    for k, v in learn.model.state_dict().items():
        assert torch.equal(model.model.state_dict()[k], v.cpu()), k
    # a path without the suffix is accepted too
    assert load_model(path.with_suffix("")).classes == CLASSES


# --------------------------------------------------------------------------- broken files


def _copy(path: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, dest / path.name)
    shutil.copy(path.with_suffix(".json"), dest / path.with_suffix(".json").name)
    return dest / path.name


def test_corrupt_safetensors_raises_naming_the_file(exported, tmp_path):
    p = _copy(exported[3], tmp_path)
    p.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(ModelFileError, match="corrupt") as exc:
        load_model(p)
    assert str(p) in str(exc.value)
    data = exported[3].read_bytes()
    p.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ModelFileError) as exc:
        load_model(p)
    assert str(p) in str(exc.value)


def test_json_class_count_must_match_weights(exported, tmp_path):
    p = _copy(exported[3], tmp_path)
    jp = p.with_suffix(".json")
    meta = json.loads(jp.read_text())
    meta["classes"] = CLASSES[:8]
    jp.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="classes") as exc:
        load_model(p)
    assert str(jp) in str(exc.value) and "lists 8" in str(exc.value)


def test_missing_or_invalid_json_and_missing_weights(exported, tmp_path):
    p = _copy(exported[3], tmp_path)
    jp = p.with_suffix(".json")
    meta = json.loads(jp.read_text())
    jp.write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(p)
    jp.write_text(json.dumps({**meta, "format": "other-v9"}))
    with pytest.raises(ModelFileError, match="unknown format"):
        load_model(p)
    jp.write_text(json.dumps({k: v for k, v in meta.items() if k != "classes"}))
    with pytest.raises(ModelFileError, match="classes"):
        load_model(p)
    jp.unlink()
    with pytest.raises(ModelFileError, match="JSON") as exc:
        load_model(p)
    assert str(jp) in str(exc.value)
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "absent.safetensors")


# --------------------------------------------------------------------------- predict_paths


def test_predict_paths_expands_folders_and_reports_unreadable_files(exported, manifest, tmp_path):
    model = load_model(exported[3])
    src = [Path(p) for p in manifest["path"].iloc[:3]]
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    dests = [folder / "a.png", folder / "sub" / "c.png", folder / "z.png"]
    for s, d in zip(src, dests):
        shutil.copy(s, d)
        shutil.copy(s.with_name(s.name + ".txt"), d.with_name(d.name + ".txt"))  # keep the sidecars
    (folder / "b_broken.png").write_bytes(b"this is not an image")
    (folder / "notes.csv").write_text("x\n")

    out = predict_paths(model, [folder])
    names = [Path(p).name for p in out["path"]]
    assert names == ["a.png", "b_broken.png", "c.png", "z.png"]  # sorted (sub/c.png < z.png), images only
    bad = out[out["path"].str.endswith("b_broken.png")].iloc[0]
    assert bad["error"] and "b_broken.png" in bad["error"]
    assert pd.isna(bad["pred"]) and bad[PCOLS].isna().all()
    good = out[out["error"] == ""]
    assert len(good) == 3 and good["pred"].isin(CLASSES).all()
    np.testing.assert_allclose(good[PCOLS].sum(1), 1.0, atol=1e-5)
    # each good row is what predicting that file alone gives
    single = predict_paths(model, [folder / "z.png", folder / "sub" / "c.png"])
    np.testing.assert_allclose(single[PCOLS].to_numpy(), good.set_index("path").loc[list(single["path"]), PCOLS].to_numpy(),
                               atol=1e-6)
    # a missing file is a row with an error, too
    miss = predict_paths(model, [tmp_path / "gone.png"])
    assert len(miss) == 1 and "gone.png" in miss["error"].iloc[0]
    assert list(miss.columns) == ["path", "pred", "confidence", "n_tiles", "tile_agreement", "ood_score", "familiar",
                                  *PCOLS, "error"]


# --------------------------------------------------------------------------- through the protocol


def _protocol_export(manifest, pcache, tmp_path, overrides):
    from semcathode.study._arms import train_arm

    cfg = load_config("smoke", overrides={"preprocess.size": 32, "preprocess.mode": "resize", "stage2.epochs": 0,
                                          "stage2.freeze_epochs": 0, **overrides})
    items = build_items(manifest, PreprocessParams("resize", 32), pcache)
    train = items[items["split"] == "train"].assign(domain="target", shift="")
    tm = train_arm("ft_only", train, study_settings(cfg), 0, CLASSES, cache_dir=tmp_path / "c")
    _sharpen_head(tm.model)
    test = items[items["split"] == "test"].iloc[::4]
    ref = _fastai_probs(tm.learner, test, CLASSES)
    got = predict_paths(load_model(export_trained(tm, tmp_path / "m.safetensors", CLASSES)), list(test["path"]))
    return ref, got


def test_protocol_model_export_matches_in_memory(manifest, pcache, tmp_path):
    ref, got = _protocol_export(manifest, pcache, tmp_path, {})
    np.testing.assert_allclose(got[PCOLS].to_numpy(), ref[PCOLS].to_numpy(), atol=1e-5, rtol=0)


def test_protocol_model_export_matches_after_b0_fallback(manifest, pcache, tmp_path, monkeypatch):
    from semcathode.models import _backbones as backbones

    def offline(*a, **k):
        raise backbones.HubUnavailableError("offline (test)")

    monkeypatch.setattr(backbones, "_hub_weights_file", offline)
    ref, got = _protocol_export(manifest, pcache, tmp_path, {"model.backbone": "efficientnet_b0",
                                                             "model.weights": "auto"})
    np.testing.assert_allclose(got[PCOLS].to_numpy(), ref[PCOLS].to_numpy(), atol=1e-5, rtol=0)


def test_export_model_writes_atomically_named_pair(exported, tmp_path):
    learn = exported[2].learner
    p = export_model(learn.model, tmp_path / "x.pt", CLASSES, "efficientnet_lite0", "tf_efficientnet_lite0",
                     PreprocessParams("resize", 32), "dataset", (0.5,) * 3, (0.5,) * 3)
    assert p == tmp_path / "x.safetensors"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["x.json", "x.safetensors"]  # no temp files left
    assert load_model(p).meta["bar"] == {"method": "auto", "fraction": 0.0667}


def test_fold_batchnorm_keeps_predictions():
    import timm

    from semcathode.models._export import fold_batchnorm

    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", num_classes=9, pretrained=False)
    model.train()
    with torch.no_grad():  # non-trivial running statistics
        for _ in range(3):
            model(torch.randn(4, 3, 64, 64))
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = torch.softmax(model(x), 1)
        n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        fold_batchnorm(model)
        after = torch.softmax(model(x), 1)
    assert n_bn > 0 and sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 0
    assert torch.allclose(before, after, atol=1e-5)
    with pytest.raises(ValueError, match="eval"):
        fold_batchnorm(model.train())


# --------------------------------------------------------------------------- scale models: trust and pixel size


def test_scale_model_predicts_with_familiarity_and_calibration(manifest, pcache, tmp_path):
    from semcathode.study._trust import calibrate

    cfg, items, tm, _ = _learner_and_export(manifest, pcache, tmp_path, mode="scale")
    train, valid = items[items["split"] == "train"], items[items["split"] == "valid"]
    trust = calibrate(tm, valid, train, CLASSES)
    assert trust["bank"].shape == (len(train), tm.model.num_features)
    assert 0.05 <= trust["temperature"] <= 20 and trust["ood_k"] == cfg.evaluate.ood_k
    path = export_trained(tm, tmp_path / "t.safetensors", CLASSES, trust=trust)
    model = load_model(path)
    assert model.meta["preprocess"]["scale_um"] == 1.4 and model.meta["field_of_view_um"] == pytest.approx(44.8)
    assert model.temperature == pytest.approx(trust["temperature"])
    np.testing.assert_allclose(model.bank, trust["bank"], atol=1e-6)
    test_paths = list(items.loc[items["split"] == "test", "path"])
    out = predict_paths(model, test_paths)
    assert (out["error"] == "").all() and (out["n_tiles"] > 1).all()
    assert out["tile_agreement"].between(0, 1).all() and out["ood_score"].between(0, 2).all()
    assert out["familiar"].isin([True, False]).all()
    assert (out["familiar"] == (out["ood_score"] <= trust["ood_threshold"])).all()
    # temperature scaling is applied: the probabilities are softmax(mean tile log-probabilities / T)
    ref, _ = predict_micrographs(tm, items[items["split"] == "test"], CLASSES)
    lp = np.log(ref[PCOLS].to_numpy())
    z = lp / trust["temperature"]
    expected = np.exp(z - z.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(out[PCOLS].to_numpy(), expected, atol=1e-4)


def test_scale_model_needs_a_pixel_size_and_names_the_file(manifest, pcache, tmp_path):
    from PIL import Image

    _, _, _, path = _learner_and_export(manifest, pcache, tmp_path, mode="scale")
    model = load_model(path)
    good = Path(manifest["path"].iloc[0])
    bare = tmp_path / "bare_no_sidecar.png"
    with Image.open(good) as im:
        im.save(bare)  # same pixels, no sidecar: no pixel size
    out = predict_paths(model, [good, bare])
    assert out.loc[0, "error"] == "" and out.loc[0, "pred"] in CLASSES
    assert "bare_no_sidecar.png" in out.loc[1, "error"] and "pixel size" in out.loc[1, "error"]
    assert pd.isna(out.loc[1, "pred"])
    # given explicitly, the file is predicted (and the good file's own pixel size still wins for it)
    given = predict_paths(model, [good, bare], pixel_size_um=0.7)
    assert (given["error"] == "").all()
    np.testing.assert_allclose(given.loc[0, PCOLS].to_numpy(float), out.loc[0, PCOLS].to_numpy(float), atol=1e-6)


def test_multi_layer_familiarity_is_fitted_exported_and_scored_by_predict(manifest, pcache, tmp_path):
    """evaluate.familiarity_layers: calibrate keeps a bank per layer (chosen against known-unfamiliar
    micrographs), export stores them beside the weights, and predict writes the same multi-layer score
    the study computes; a JSON that does not match the banks is refused, naming the field."""
    from semcathode.models._familiarity import multi_layer_score
    from semcathode.study._trust import calibrate, ood_scores

    cfg, items, tm, _ = _learner_and_export(manifest, pcache, tmp_path, mode="scale")
    tm.settings = tm.settings.replace(evaluate={"familiarity_layers": ["blocks.4", "blocks.5", "final"]})
    train, valid, test = (items[items["split"] == s] for s in ("train", "valid", "test"))
    odd = items[items["label"] == CLASSES[0]]  # stands in for micrographs known to be unfamiliar
    trust = calibrate(tm, valid, train, CLASSES, select_items=odd)
    assert set(trust["layers"]) <= {"blocks.4", "blocks.5", "final"} and trust["layers"]
    assert len(trust["layer_selection"]) == 7  # every non-empty subset of three layers was tried
    assert {k: v.shape for k, v in trust["banks"].items()} == {
        k: (len(train), {"blocks.4": 112, "blocks.5": 192, "final": 1280}[k]) for k in trust["layers"]}
    assert "bank" not in trust and all(v > 0 for v in trust["scales"].values())
    path = export_trained(tm, tmp_path / "m.safetensors", CLASSES, trust=dict(trust))
    model = load_model(path)
    assert model.bank is None and sorted(model.banks) == sorted(trust["layers"])
    assert model.meta["ood"]["layers"] == trust["layers"]
    out = predict_paths(model, list(test["path"]))
    want = ood_scores(tm, trust, test)
    np.testing.assert_allclose(out["ood_score"].to_numpy(), want, rtol=1e-4, atol=1e-5)
    assert (out["familiar"] == (out["ood_score"] <= trust["ood_threshold"])).all()
    direct = multi_layer_score(trust["banks"], tm_layer_features(tm, test, trust["layers"]), trust["layers"],
                               trust["scales"], trust["ood_k"])
    np.testing.assert_allclose(direct, want, rtol=1e-6)
    # the JSON must name exactly the stored banks, with a positive scale for each
    meta = json.loads(path.with_suffix(".json").read_text())
    for ood, field in [({**meta["ood"], "layers": ["blocks.3"]}, "ood.layers"),
                       ({**meta["ood"], "scales": {k: -1.0 for k in trust["layers"]}}, "ood.scales"),
                       ({**meta["ood"], "layers": "final"}, "ood.layers")]:
        bad = _copy(path, tmp_path / "bad")
        bad.with_suffix(".json").write_text(json.dumps({**meta, "ood": ood}))
        with pytest.raises(ModelFileError, match=field.replace(".", r"\.")):
            load_model(bad)


def tm_layer_features(tm, items, layers):
    from semcathode.study._evaluation import micrograph_outputs

    return micrograph_outputs(tm, items, layers=layers).layer_features
