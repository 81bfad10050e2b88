import pytest
import torch

from semcathode.models._export import export_model
from semcathode.explain._runs import cam_sample, cam_study, explorer_for, load_run_models
from semcathode.report._notes import cam_note
from semcathode.explain._measures import cam_quant_table
from semcathode.data._manifest import index_folder
from semcathode.data._preprocess import PreprocessParams
from semcathode.data._schema import default_schema


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    import timm

    d = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    classes = default_schema().classes
    model = timm.create_model("tf_efficientnet_lite0", num_classes=len(classes), pretrained=False).eval()
    export_model(model, d / "03_finetune" / "model_ft_only.safetensors", classes, "efficientnet_lite0",
                 "tf_efficientnet_lite0", PreprocessParams("resize", 64), "dataset", (0.5,) * 3, (0.5,) * 3)
    return d


def test_cam_study_writes_overlays_and_records(run_dir, synthetic_root):
    models = load_run_models(run_dir, ["ft_only"])
    df = index_folder(synthetic_root)
    df["domain"], df["split"], df["shift"] = "target", "test", ""
    sample = cam_sample(df, default_schema().classes, per_class=1)
    assert len(sample) == 9 and sample["label"].is_unique
    records, grids = cam_study(models, sample, run_dir / "05", steps=3)
    assert len(records) == 9 and set(grids) == {"ft_only"}
    assert all((run_dir / "05" / p).exists() for p in records["overlay_path"])
    assert {"energy_share", "auc_cam", "auc_random", "p_NCM333_pristine"} <= set(records.columns)
    quant = cam_quant_table(records)
    assert "ft_only:" in cam_note(quant)
    ex = explorer_for(records, models, default_schema().classes)
    assert ex.state.current is not None


def test_missing_model_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="model_pre_ft_oversample"):
        load_run_models(tmp_path, ["pre_ft_oversample"])


def test_models_found_in_their_folder_or_one_below(run_dir, tmp_path):
    import shutil

    direct = load_run_models(next(run_dir.glob("*/model_ft_only.safetensors")).parent, ["ft_only"])
    assert list(direct) == ["ft_only"]
    for sub in ("a", "b"):  # the same arm exported into two folders: ambiguous
        shutil.copytree(run_dir / "03_finetune", tmp_path / sub)
    with pytest.raises(ValueError, match="several folders"):
        load_run_models(tmp_path, ["ft_only"])


def test_cam_study_on_a_block_stage_gives_finer_maps(run_dir, synthetic_root):
    """cam.layer = blocks.4: the tile CAM comes from a 4x finer map than the head's (16x16 px cells
    on a 64-px tile instead of 32x32), recorded per row."""
    import numpy as np

    from semcathode.explain._compute import compute_cams

    models = load_run_models(run_dir, ["ft_only"])
    df = index_folder(synthetic_root)
    df["domain"], df["split"], df["shift"] = "target", "test", ""
    sample = cam_sample(df, default_schema().classes, per_class=1).head(2)
    records, _ = cam_study(models, sample, run_dir / "05b", steps=2, layer="blocks.4")
    assert (records["layer"] == "blocks.4").all() and records["energy_share"].notna().all()
    x = torch.randn(1, 3, 64, 64)
    net = models["ft_only"].model
    fine = compute_cams(net, x, target_layer="blocks.4", targets=[0])[0]
    coarse = compute_cams(net, x, target_layer="last", targets=[0])[0]
    assert fine.shape == coarse.shape == (64, 64) and not np.allclose(fine, coarse)
    from semcathode.explain._layers import find_target_layer

    sizes = {}
    for name in ("blocks.4", "last"):
        h = find_target_layer(net, name).register_forward_hook(lambda m, i, o, n=name: sizes.__setitem__(n, o.shape[-1]))
        with torch.no_grad():
            net(x)
        h.remove()
    assert sizes == {"blocks.4": 4, "last": 2}  # the map the CAM is read from: 16-px cells instead of 32


def test_cam_study_reads_the_cam_against_the_segmented_particles(run_dir, synthetic_root):
    from semcathode.config import MorphologyConfig
    from semcathode.explain._particles import REGIONS, cam_particle_table
    from semcathode.report._morphology import cam_particle_note

    models = load_run_models(run_dir, ["ft_only"])
    df = index_folder(synthetic_root)
    df["domain"], df["split"], df["shift"] = "target", "test", ""
    sample = cam_sample(df, default_schema().classes, per_class=1).head(3)
    records, _ = cam_study(models, sample, run_dir / "05p", steps=2, morphology=MorphologyConfig())
    for r in REGIONS:
        assert records[f"area_{r}"].between(0, 1).all()
    assert records[[f"area_{r}" for r in REGIONS]].sum(1).round(6).eq(1).all()  # the regions tile the micrograph
    assert records[[f"energy_{r}" for r in REGIONS]].sum(1).round(5).eq(1).all()
    table = cam_particle_table(records)
    assert list(table.label) == list(sample.label) + ["(all)"]
    assert "ft_only: boundary" in cam_particle_note(table)
    ex = explorer_for(records, models, default_schema().classes, morphology=MorphologyConfig())
    assert not ex.outlines_toggle.disabled
    plain = ex.original_image.value
    ex.outlines_toggle.value = True  # redraws with the outlines in yellow
    assert ex.last_error is None and ex.original_image.value != plain
