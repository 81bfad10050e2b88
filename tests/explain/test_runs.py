import pytest
import torch

from semcathode.models.export import export_model
from semcathode.explain.runs import cam_sample, cam_study, explorer_for, load_run_models
from semcathode.report.notes import cam_note
from semcathode.explain.measures import cam_quant_table
from semcathode.data.manifest import index_folder
from semcathode.data.preprocess import PreprocessParams
from semcathode.data.schema import default_schema


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
