"""Training across processes: a fit handed to a launched DDP group and back through the model store.

:func:`launch_fit` is what :func:`~semcathode.study._train._cached_fit` calls when
``distributed.processes`` is above 1 and the store lacks the model. It writes the fit's inputs
(configuration, train and valid rows, classes, the initial weights) into a job folder under the
store, starts ``torchrun --standalone --nproc_per_node N -m semcathode.study._rank JOB``,
and waits. Every rank (:func:`semcathode.study._rank.main`) joins the process group (gloo on CPU, nccl on CUDA), builds
its shard of the trunk cache, and runs the same :func:`~semcathode.study._train._fit` as one
process would, inside fastai's DDP callback (:func:`semcathode.models._distributed.rank_ctx`).
Rank 0 alone writes the model into the store, atomically; the caller then loads it from there,
as it loads any stored model. Nothing is launched from inside a Jupyter kernel's own process
(fastai issues #4007, #3923): the group is a child of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import torch

from ..config._sections import StageConfig
from ..config._settings import StudySettings

__all__ = ["launch_fit", "backend_for"]

_JOB = "job.json"


def backend_for(choice: str = "auto") -> str:
    """The process-group backend: ``nccl`` on CUDA, ``gloo`` on CPU, unless ``choice`` names one."""
    if choice != "auto":
        return choice
    return "nccl" if torch.cuda.is_available() else "gloo"


def _write_rows(df: pd.DataFrame | None, path: Path) -> None:
    (df if df is not None else pd.DataFrame()).reset_index(drop=True).to_json(path, orient="table", index=False)


def launch_fit(store_root: str | Path, key: str, train_items: pd.DataFrame, valid_items: pd.DataFrame | None,
               classes: Sequence[str], settings: StudySettings, stage: StageConfig, seed: int, init: str,
               strategy: str | None, init_state: dict | None = None, label: str = "", max_epochs: int = 0,
               log: Callable[[str], None] | None = print) -> dict:
    """Train one model in a launched group of ``settings.distributed.processes`` ranks.

    Parameters
    ----------
    store_root : str or Path
        The model store's folder: rank 0 writes ``<key>.safetensors`` and ``<key>.json`` there.
    key : str
    train_items, valid_items : DataFrame
    classes : sequence of str
    settings : StudySettings
    stage : StageConfig
    seed : int
    init, strategy : str
        As for :func:`~semcathode.study._train._fit`.
    init_state : dict, optional
        Initial weights (a stage-2 arm's stage-1 model).
    label : str
    max_epochs : int
    log : callable, optional
        Receives rank 0's progress lines.

    Returns
    -------
    dict
        What the group did, also stored in the model's JSON under ``distributed``: ``processes``,
        ``backend``, ``per_rank`` (inputs per epoch, losses) and ``overlap_per_epoch`` (training
        inputs seen by more than one rank; 0 when the shards are disjoint).

    Raises
    ------
    RuntimeError
        The group failed; the message carries the end of its output.
    """
    from safetensors.torch import save_file

    from ..config._run import save_config

    n = int(settings.distributed.processes)
    root = Path(store_root)
    root.mkdir(parents=True, exist_ok=True)
    job = Path(tempfile.mkdtemp(prefix=f".job-{key[:24]}-", dir=root))
    try:
        save_config(settings.to_config(), job / "config.yaml")
        _write_rows(train_items, job / "train.json")
        _write_rows(valid_items, job / "valid.json")
        if init_state is not None:
            save_file({k: v.detach().cpu().contiguous() for k, v in init_state.items()}, str(job / "init.safetensors"))
        (job / _JOB).write_text(json.dumps({
            "store": str(root), "key": key, "classes": list(classes), "stage": stage.__dict__, "seed": int(seed),
            "init": init, "strategy": strategy, "label": label, "max_epochs": int(max_epochs),
            "init_state": init_state is not None, "cache_root": str(settings.cache_root), "backend": backend_for(settings.distributed.backend)}))
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n)))
        env["PYTHONUNBUFFERED"] = "1"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
               "-m", "semcathode.study._rank", str(job)]
        if log:
            log(f"{label or key}: training in {n} processes ({backend_for(settings.distributed.backend)}), "
                f"{env['OMP_NUM_THREADS']} threads each")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if log and not line.startswith(("W1", "I1", "E1", "*****", "Setting OMP")) and "OMP_NUM_THREADS" not in line:
                log(line)
        rc = proc.wait()
        if rc:
            errors = sorted(job.glob("rank*.error"))
            why = errors[0].read_text().strip().splitlines()[-6:] if errors else ["(no rank recorded an error)"]
            raise RuntimeError(f"distributed training of {label or key} failed (torchrun exit {rc}); "
                               f"{errors[0].stem if errors else 'the group'}:\n" + "\n".join(why))
        from ._store import ModelStore

        hit = ModelStore(root).get(key)
        if hit is None:
            raise RuntimeError(f"distributed training of {key} ended without writing the model into {root}")
        return hit[1].get("distributed", {})
    finally:
        shutil.rmtree(job, ignore_errors=True)
