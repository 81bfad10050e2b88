"""One rank of a launched training group (``python -m semcathode.study._rank JOB``, started by
:func:`semcathode.study._launch.launch_fit` through ``torchrun``)."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from ..config._sections import StageConfig
from ._launch import _JOB

__all__ = ["main"]


def _read_rows(path: Path) -> pd.DataFrame:
    return pd.read_json(path, orient="table")


def _overlaps(records: list[dict]) -> list[int]:
    """Per epoch: how many training inputs were seen by more than one rank."""
    n_epochs = min(len(r["epochs"]) for r in records) if records else 0
    out = []
    for e in range(n_epochs):
        seen: set[int] = set()
        dup = 0
        for r in records:
            s = set(r["epochs"][e])
            dup += len(seen & s)
            seen |= s
        out.append(dup)
    return out


def main(job_dir: str) -> None:
    """One rank of :func:`~semcathode.study._launch.launch_fit`'s group (``python -m semcathode.study._rank JOB``); a
    failure is also written to ``JOB/rank<r>.error`` for the launcher's message.

    Parameters
    ----------
    job_dir : str
        The job folder :func:`launch_fit` wrote.
    """
    try:
        _rank_main(Path(job_dir))
    except BaseException:
        import traceback

        rank = os.environ.get("RANK", "0")
        (Path(job_dir) / f"rank{rank}.error").write_text(traceback.format_exc())
        raise


def _rank_main(job: Path) -> None:
    import torch.distributed as dist
    from safetensors.torch import load_file

    from ..config._run import load_config
    from ..config._settings import study_settings
    from ..models import RankRecord
    from ._store import ModelStore
    from ._train import _fit, warm_trunk_cache

    spec = json.loads((job / _JOB).read_text())
    backend = spec["backend"]
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend)
    rank, size = dist.get_rank(), dist.get_world_size()
    if rank:
        sys.stdout = io.TextIOWrapper(open(os.devnull, "wb"))  # rank 0 alone reports progress
    settings = study_settings(load_config(path=job / "config.yaml"), cache_root=spec["cache_root"])
    train, valid = _read_rows(job / "train.json"), _read_rows(job / "valid.json")
    stage = StageConfig(**spec["stage"])  # (each rank's loader takes batch_size / size: the global batch is kept)
    if settings.model.trunk:  # the trunk cache, built once: every rank its share of the micrographs, then all read it
        rows = pd.concat([train, valid]).drop_duplicates("cache_path")
        warm_trunk_cache(rows.iloc[rank::size], settings, log=print if rank == 0 else None)
        dist.barrier()
    init_state = load_file(str(job / "init.safetensors")) if spec["init_state"] else None
    record = RankRecord()
    t0 = time.time()
    learn, hist, winfo, steps, network = _fit(train, valid if len(valid) else None, spec["classes"], settings, stage,
                                              spec["seed"], spec["init"], spec["strategy"], init_state,
                                              label=spec["label"], max_epochs=spec["max_epochs"], record=record)
    wall = time.time() - t0
    (job / f"rank{rank}.json").write_text(json.dumps({"rank": rank, "backend": backend, "epochs": record.epochs,
                                                      **record.summary()}))
    dist.barrier()  # every rank's record is written before rank 0 reads them
    if rank == 0:
        records = [json.loads((job / f"rank{r}.json").read_text()) for r in range(size)]
        meta = {"key": spec["key"], "history": hist.to_dict(orient="records"), "weights": winfo, "wall_s": wall,
                "steps": steps, "distributed": {
                    "processes": size, "backend": backend,
                    "per_rank": [{k: v for k, v in r.items() if k != "epochs"} for r in records],
                    "overlap_per_epoch": _overlaps(records)}}
        ModelStore(spec["store"]).put(spec["key"], network if network is not None else learn.model, meta)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
