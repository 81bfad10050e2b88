"""``open_run``: a run folder read by the names of its results (issue 21)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

import semcathode as sc
from semcathode.report import open_run
from semcathode.report._run import Run


def _copy_model(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))


def test_results_are_found_by_name_in_whichever_notebook_wrote_them(tmp_path, tiny_model_path):
    for nb in ("01_data", "02_pretrain", "03_finetune"):
        (tmp_path / nb).mkdir()
    pd.DataFrame({"path": ["a.png"]}).to_csv(tmp_path / "01_data" / "manifest.csv", index=False)
    pd.DataFrame({"arm": ["probe"], "macro_f1": [0.9]}).to_csv(tmp_path / "02_pretrain" / "linear_probe.csv", index=False)
    (tmp_path / "03_finetune" / "confusion.png").write_bytes(b"\x89PNG")
    _copy_model(tiny_model_path, tmp_path / "02_pretrain" / "model.safetensors")
    _copy_model(tiny_model_path, tmp_path / "03_finetune" / "model_ft_only.safetensors")
    run = sc.open_run(tmp_path)
    assert isinstance(run, Run) and run.root == tmp_path
    assert run.manifest == tmp_path / "01_data" / "manifest.csv"
    assert run.table("linear_probe").to_dict("list") == {"arm": ["probe"], "macro_f1": [0.9]}
    assert run.figure("confusion") == tmp_path / "03_finetune" / "confusion.png"
    stage1, ft = run.model("stage1"), run.model("ft_only")
    assert stage1.path.name == "model.safetensors" and ft.path.parent.name == "03_finetune"
    assert stage1.classes == ft.classes and list(run.models(["ft_only", "stage1"])) == ["ft_only", "stage1"]


def test_a_missing_an_ambiguous_or_a_path_like_result_is_a_clear_error(tmp_path):
    (tmp_path / "02_pretrain").mkdir()
    (tmp_path / "04_ablation").mkdir()
    run = open_run(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no notebook folder holds arm_results.csv \(folders: 02_pretrain, "
                                                r"04_ablation\)"):
        run.table("arm_results")
    with pytest.raises(FileNotFoundError, match="model_pre_ft_oversample.safetensors"):
        run.model("pre_ft_oversample")
    for nb in ("02_pretrain", "04_ablation"):
        (tmp_path / nb / "summary.csv").write_text("a\n1\n")
    with pytest.raises(ValueError, match="several notebook folders hold summary.csv: 02_pretrain, 04_ablation"):
        run.table("summary")
    with pytest.raises(ValueError, match="not a path"):
        run.path("../02_pretrain/summary.csv")
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        open_run(tmp_path / "nothing")
