"""Predict micrographs with an exported model: :func:`predict`, the one public entry point, and
what it runs for a lab's whole archive: files streamed, decoded in workers, tiles batched across
micrographs, rows appended in chunks, resumable.

:func:`predict_archive` walks the inputs as a stream (:func:`semcathode.io._walk.iter_inputs`), so an
archive of any size is never listed into memory. DataLoader workers read each file, cut its
data bar, bring it to the model's scale and cut its tiles; the main process forwards tiles of
several micrographs per batch (:func:`~semcathode.models._forward.predict_tiles`, the forward
pass of every predict path) and appends each chunk of rows to the output CSV with a single
``write`` (a ``kill -9`` leaves whole rows: at most the chunk in flight is lost). ``resume``
skips the files already in the output (same path, size and modification time; with ``verify``
the same SHA-256) and drops a partial last line if one is there.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .._files import sha256_file
from ..data._tiles import cut_tiles
from ._rows import PREDICTION_COLUMNS, familiarity_request, micrograph_rows
from ._export import ExportedModel
from ._forward import predict_tiles

__all__ = ["ARCHIVE_COLUMNS", "archive_columns", "decode_workers", "predict", "predict_archive", "predict_archive_ranks",
           "done_keys"]

#: Columns after the predictions and class probabilities, before ``error``: how a file is recognised on resume.
ARCHIVE_COLUMNS: tuple[str, ...] = ("bytes", "mtime_ns", "sha256")


def archive_columns(classes: Sequence[str]) -> list[str]:
    """The output columns of :func:`predict_archive` for a model's ``classes``."""
    return list(PREDICTION_COLUMNS) + [f"p_{c}" for c in classes] + list(ARCHIVE_COLUMNS) + ["error"]


def decode_workers(device: str | torch.device = "cpu", cores: int | None = None) -> int:
    """How many DataLoader workers decode for :func:`predict_archive` when none is given.

    On a GPU the forward pass leaves the CPU free: up to 8 workers. On a CPU the workers share the
    cores with the forward pass's threads. On 2 cores decoding in the main process is faster
    (``benchmarks/bench_archive.py``: 0.88x of the plain forward with no worker against 0.76x with 2);
    above that, a quarter of the cores (at most 4) decode, a rule not yet measured.

    Parameters
    ----------
    device : str or torch.device
        Where the model runs.
    cores : int, optional
        CPU cores (default: ``os.cpu_count()``).

    Returns
    -------
    int

    Examples
    --------
    >>> decode_workers("cpu", cores=2), decode_workers("cpu", cores=16), decode_workers("cuda", cores=16)
    (0, 4, 8)
    """
    n = int(cores or os.cpu_count() or 1)
    if torch.device(device).type == "cuda":
        return max(1, min(8, n))
    return 0 if n <= 2 else min(4, n // 4)


def _file_key(path: str, verify: bool) -> str:
    """How a done file is recognised: its SHA-256, or its size and modification time."""
    if verify:
        return sha256_file(path)
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"


def done_keys(out: str | Path, verify: bool = False) -> dict[str, str]:
    """Files already predicted in an output of :func:`predict_archive`: ``path -> size:mtime`` (or sha256).

    A partial last line (a run killed while appending) is cut off the file first. Rows with an
    ``error`` are not done: a resumed run tries them again.

    Parameters
    ----------
    out : str or Path
    verify : bool
        Key by the SHA-256 recorded in the row instead of size and modification time.

    Returns
    -------
    dict
    """
    p = Path(out)
    if not p.is_file() or p.stat().st_size == 0:
        return {}
    with open(p, "rb+") as fh:
        data = fh.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a row cut in the middle: drop it
            fh.truncate(end)
            data = data[:end]
    done: dict[str, str] = {}
    for row in csv.DictReader(io.StringIO(data.decode("utf-8", "surrogateescape"))):
        if row.get("error"):
            continue
        key = row.get("sha256", "") if verify else f"{row.get('bytes', '')}:{row.get('mtime_ns', '')}"
        if key and key != ":":
            done[row["path"]] = key
    return done


class _Decoded(IterableDataset):
    """The files of a stream, read, scaled and tiled in the DataLoader's workers (each worker takes
    every n-th file of the stream: the walk runs in every worker, the decoding is shared)."""

    def __init__(self, stream: Callable[[], Iterator[tuple[int, str, str | None]]], model: ExportedModel,
                 pixel_size_um: float | None, verify: bool, done: dict[str, str], rank: int = 0,
                 world: int = 1) -> None:
        self.stream, self.model, self.px, self.verify, self.done = stream, model, pixel_size_um, verify, done
        self.rank, self.world = rank, world

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        shard, shards = self.rank * nw + wid, self.world * nw
        size, stride = self.model.params.size, self.model.params.tile_stride
        for i, path, why in self.stream():
            if i % shards != shard:
                continue
            item: dict[str, Any] = {"i": i, "path": path, "error": why or "", "tiles": None, "key": "",
                                    "skipped": False}
            if why is None:
                try:
                    item["key"] = _file_key(path, self.verify)
                    if self.done.get(path) == item["key"]:  # predicted by an earlier run: unchanged
                        item["skipped"] = True
                        yield item
                        continue
                    _, arr = self.model.load_array(path, self.px)
                    item["tiles"], _ = cut_tiles(arr, size, stride)
                except Exception as exc:  # noqa: BLE001 - one bad file never ends the batch; its reason is kept
                    msg = str(exc)
                    item["error"] = msg if path in msg else f"{path}: {msg}"
            yield item


def _row_text(rows: list[dict[str, Any]], cols: list[str]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue().encode("utf-8", "surrogateescape")


def predict_archive(model: ExportedModel, inputs: Sequence[str | Path], out: str | Path,
                    pixel_size_um: float | None = None, resume: bool = False, verify: bool = False,
                    workers: int | None = None, batch_tiles: int = 64, chunk: int = 32, rank: int = 0, world: int = 1,
                    exclude: str | Path | None = None, also_done: dict[str, str] | None = None,
                    log: Callable[[str], None] | None = None) -> dict[str, int]:
    """Predict every micrograph under ``inputs`` into the CSV ``out``, chunk by chunk.

    Parameters
    ----------
    model : ExportedModel
    inputs : sequence of str or Path
        Files and folders (walked as a stream).
    out : str or Path
        The CSV (:func:`archive_columns`); created with its header, or appended to with ``resume``.
    pixel_size_um : float, optional
        µm/px for files that carry none.
    resume : bool
        Keep the rows already in ``out`` and skip their files (:func:`done_keys`); without it an
        existing ``out`` is replaced.
    verify : bool
        Recognise done files by SHA-256 (read again) instead of size and modification time.
    workers : int, optional
        DataLoader worker processes that decode (0: this process; default :func:`decode_workers`).
    batch_tiles : int
        Tiles per forward pass; the tiles of consecutive micrographs share batches.
    chunk : int
        Micrographs per appended chunk of rows.
    rank, world : int
        This process's shard of the stream (file ``i`` belongs to rank ``i % world``).
    exclude : str or Path, optional
        A folder to skip (e.g. where the output lives).
    also_done : dict, optional
        Further files to skip (:func:`done_keys` of another file: a merged output).
    log : callable, optional
        A progress line per chunk.

    Returns
    -------
    dict
        ``predicted``, ``failed``, ``skipped`` (already done).

    Examples
    --------
    >>> import tempfile
    >>> import semcathode as sc
    >>> tmp = tempfile.mkdtemp()
    >>> _, study = sc.data.example_study(tmp)
    >>> s1 = sc.train_stage1(study, 0, log=None)  # doctest: +ELLIPSIS
    [stage 1 seed 0, ...
    >>> model = sc.load_model(sc.study.export_trained(s1, f"{tmp}/model.safetensors", study.classes))
    >>> predict_archive(model, [study.manifest["path"][0]], f"{tmp}/preds.csv", workers=0)
    {'predicted': 1, 'failed': 0, 'skipped': 0}
    >>> predict_archive(model, [study.manifest["path"][0]], f"{tmp}/preds.csv", resume=True, workers=0)
    {'predicted': 0, 'failed': 0, 'skipped': 1}
    """
    out = Path(out)
    cols = archive_columns(model.classes)
    done = {**(also_done or {}), **(done_keys(out, verify) if resume else {})}
    if not resume or not out.exists() or out.stat().st_size == 0:
        out.parent.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(cols)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_bytes(buf.getvalue().encode("utf-8"))
        os.replace(tmp, out)
    else:
        with open(out, encoding="utf-8", errors="surrogateescape") as fh:
            header = fh.readline().rstrip("\n").split(",")
        if header != cols:
            raise ValueError(f"{out}: its columns are not those of this model's predictions; "
                             "write a new file or resume with the model that wrote it")
    from ..io._walk import iter_inputs

    def stream() -> Iterator[tuple[int, str, str | None]]:
        for i, (path, why) in enumerate(iter_inputs(inputs, exclude=exclude)):
            yield i, str(path), why

    data = _Decoded(stream, model, pixel_size_um, verify, done, rank, world)
    dev = next(model.model.parameters()).device
    workers = decode_workers(dev) if workers is None else max(0, int(workers))
    loader = DataLoader(data, batch_size=None, num_workers=workers, prefetch_factor=4 if workers else None,
                        persistent_workers=False, pin_memory=dev.type == "cuda")
    fam = familiarity_request(model)
    norm = model.input_norm
    agg = model.meta.get("aggregate", "mean_log_prob")
    counts = {"predicted": 0, "failed": 0, "skipped": 0}
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        good = [it for it in pending if it["tiles"] is not None and len(it["tiles"])]
        rows: dict[int, dict[str, Any]] = {}
        if good:
            tiles = np.concatenate([it["tiles"] for it in good])
            owner = np.concatenate([np.full(len(it["tiles"]), k) for k, it in enumerate(good)])
            mo = predict_tiles(model.model, tiles, owner, len(good), *norm, aggregate=agg, bs=batch_tiles,
                              compiled=model.compiled, **fam)
            for it, r in zip(good, micrograph_rows(model, mo)):
                rows[it["i"]] = r
        lines = []
        for it in pending:
            r = rows.get(it["i"], {"error": it["error"] or f"{it['path']}: no tiles"})
            key = it["key"]
            r = {**r, "path": it["path"], "bytes": "", "mtime_ns": "", "sha256": ""}
            if key and not r.get("error"):
                if verify:
                    r["sha256"] = key
                else:
                    r["bytes"], r["mtime_ns"] = key.split(":")
            counts["failed" if r.get("error") else "predicted"] += 1
            lines.append(r)
        with open(out, "ab") as fh:  # one write per chunk: a kill leaves whole rows
            fh.write(_row_text(lines, cols))
            fh.flush()
            os.fsync(fh.fileno())
        pending.clear()
        if log is not None:
            log(f"archive predict: {counts['predicted']} predicted, {counts['failed']} failed")

    with torch.inference_mode():
        for item in loader:
            if item["skipped"]:
                counts["skipped"] += 1
                continue
            pending.append(item)
            if len(pending) >= chunk:
                flush()
        if pending:
            flush()
    return counts


def _rank_main(rank: int, world: int, model_path: str, inputs: list[str], out: str, kwargs: dict) -> None:
    """One rank of :func:`predict_archive_ranks` (a top-level function, for ``spawn``)."""
    from ._export import load_model

    cores = max(1, (os.cpu_count() or 1) // world)
    torch.set_num_threads(cores)
    # one GPU per rank where there are GPUs (round robin), else the CPU
    device = f"cuda:{rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"
    kwargs = dict(kwargs)
    compile = kwargs.pop("compile", False)
    if kwargs.get("workers") is None:  # this rank's share of the cores
        kwargs["workers"] = decode_workers(device, cores)
    predict_archive(load_model(model_path, device=device).optimize(compile=compile), inputs, out, rank=rank,
                    world=world, resume=True, **kwargs)


def _rank_file(out: Path, rank: int) -> Path:
    return out.with_name(f".{out.name}.rank{rank}.csv")


def predict_archive_ranks(model_path: str | Path, inputs: Sequence[str | Path], out: str | Path, processes: int = 2,
                          pixel_size_um: float | None = None, resume: bool = False, verify: bool = False,
                          workers: int | None = None, compile: bool = False) -> dict[str, int]:
    """:func:`predict_archive` on ``processes`` ranks (one shard of the stream each, every rank its own
    process with its own copy of the model; on a machine with GPUs, one rank per GPU), merged at the end.

    Each rank appends to its own hidden file beside ``out`` (resumable: a killed run keeps them and a
    ``resume`` run continues each). When every rank has finished, ``out`` is rewritten atomically with
    the rows it held (``resume``) and those of every rank, one row per file (a successful row wins over
    an earlier error), and the rank files are removed.

    Parameters
    ----------
    model_path : str or Path
        The exported model (each rank loads it).
    inputs, out, pixel_size_um, resume, verify
        As for :func:`predict_archive`.
    processes : int
        Ranks.
    workers : int, optional
        Decoding workers per rank (default :func:`decode_workers` for the rank's device and share of the cores).
    compile : bool
        Each rank compiles its model (:meth:`~semcathode.models.ExportedModel.optimize`).

    Returns
    -------
    dict
        ``predicted``, ``failed``, ``skipped``, summed over ranks (``failed`` as merged).

    Raises
    ------
    RuntimeError
        A rank failed (its files stay, so that a ``resume`` run continues it).
    """
    import multiprocessing as mp

    import pandas as pd

    from .._files import atomic_write_csv
    from ._export import load_model

    out = Path(out)
    cols = archive_columns(load_model(model_path).classes)
    if not resume:  # a fresh run: rank files left by an earlier killed run (of any size) go
        for stale in out.parent.glob(f".{out.name}.rank*.csv"):
            stale.unlink()
    merged = done_keys(out, verify) if resume and out.exists() else {}
    kwargs = {"pixel_size_um": pixel_size_um, "verify": verify, "workers": workers, "also_done": merged,
              "compile": compile}
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_rank_main, args=(k, processes, str(model_path), [str(i) for i in inputs],
                                                  str(_rank_file(out, k)), kwargs)) for k in range(processes)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join()
    bad = [k for k, pr in enumerate(procs) if pr.exitcode != 0]
    if bad:
        raise RuntimeError(f"rank(s) {', '.join(map(str, bad))} of {processes} failed; "
                           f"their rows so far are kept beside {out}: resume to finish")
    parts = ([pd.read_csv(out, keep_default_na=False, dtype=str)] if resume and out.exists() else [])
    parts += [pd.read_csv(_rank_file(out, k), keep_default_na=False, dtype=str) for k in range(processes)]
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    rows["_ok"] = rows["error"] == ""
    rows = rows.sort_values("_ok", kind="stable").drop_duplicates("path", keep="last").sort_index()
    ok = rows.pop("_ok")
    atomic_write_csv(out, rows.reindex(columns=cols), index=False)
    for k in range(processes):
        _rank_file(out, k).unlink(missing_ok=True)
    before = rows["path"].isin(list(merged))
    return {"predicted": int((ok & ~before).sum()), "failed": int((~ok).sum()), "skipped": int((ok & before).sum())}


def predict(model: ExportedModel, inputs: str | Path | Sequence[str | Path], out: str | Path | None = None,
            pixel_size_um: float | None = None, **stream: Any):
    """Predict micrographs (files and folders) with an exported model: one row per micrograph.

    Every file is read, its data bar cut, brought to the model's physical scale and covered with
    its tile grid; the tiles' log-probabilities are averaged (temperature-scaled when the model
    was calibrated) and the familiarity score is computed when the model carries a feature bank.
    A file that cannot be read, or has no pixel size when the model needs one, gets an ``error``
    and no prediction; the other files are not affected.

    Parameters
    ----------
    model : ExportedModel
        From :func:`~semcathode.models.load_model`.
    inputs : str, Path or sequence of them
        Files and folders.
    out : str or Path, optional
        Stream the predictions into this CSV instead of returning them: the archive path
        (:func:`predict_archive`), for folders of any size, decoded in DataLoader workers,
        appended chunk by chunk and resumable.
    pixel_size_um : float, optional
        µm/px for files that carry none.
    **stream
        With ``out`` only: ``resume``, ``verify``, ``workers``, ``batch_tiles``, ``chunk``,
        ``exclude``, ``log`` (see :func:`predict_archive`).

    Returns
    -------
    DataFrame or dict
        Without ``out``: ``path, pred, confidence, n_tiles, tile_agreement, ood_score, familiar``,
        one ``p_<class>`` per class and ``error``. With ``out``: the counts ``predicted``,
        ``failed`` and ``skipped`` (the rows are in the CSV, with the same columns and the file's
        size, modification time and hash).

    Raises
    ------
    TypeError
        A streaming option without ``out``.

    Examples
    --------
    >>> import tempfile
    >>> import semcathode as sc
    >>> tmp = tempfile.mkdtemp()
    >>> _, study = sc.data.example_study(tmp)
    >>> s1 = sc.train_stage1(study, 0, log=None)  # doctest: +ELLIPSIS
    [stage 1 seed 0, ...
    >>> model = sc.load_model(sc.study.export_trained(s1, f"{tmp}/model.safetensors", study.classes))
    >>> table = sc.predict(model, study.manifest["path"][:2].tolist() + [f"{tmp}/missing.png"])
    >>> len(table), int(table["pred"].isin(study.classes).sum()), table["error"].iloc[-1] != ""
    (3, 2, True)
    >>> sc.predict(model, study.manifest["path"][:2].tolist(), out=f"{tmp}/preds.csv", workers=0)
    {'predicted': 2, 'failed': 0, 'skipped': 0}
    """
    from ._export import predict_paths

    paths = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if out is None:
        if stream:
            raise TypeError(f"{', '.join(sorted(stream))}: options of a streamed prediction; give out= (a CSV path)")
        return predict_paths(model, paths, pixel_size_um)
    return predict_archive(model, paths, out, pixel_size_um=pixel_size_um, **stream)
