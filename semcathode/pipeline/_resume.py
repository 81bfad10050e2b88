"""Where a run resumes: what a notebook left undone, and the first notebook that must run.

The runner (:func:`semcathode.pipeline.run_pipeline`) skips a notebook only when its configuration
hash matches the last run, its last status was ``ok`` and every product of it is present;
everything from the first notebook that fails one of those checks runs again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from ..report._outputs import OUTPUTS_FILE, read_outputs
from ._notebooks import notebook_spec

__all__ = ["missing_products", "plan_resume"]


def missing_products(run_dir: str | Path, name: str) -> list[str]:
    """What notebook ``name`` should have left in ``run_dir`` but did not.

    Its executed copy, ``<name>/outputs.json``, every file that ``outputs.json`` lists, and each
    product pattern of its declaration (e.g. the exported models of 02 and 03).

    Parameters
    ----------
    run_dir : str or Path
        The run (or staging) folder.
    name : str
        Notebook name; one not in the declaration is checked for its executed copy and outputs only.

    Returns
    -------
    list of str
        Missing paths or patterns, relative to ``run_dir``; empty when the notebook is done.
    """
    run_dir = Path(run_dir)
    outputs = f"{name}/{OUTPUTS_FILE}"
    missing = [p for p in (f"{name}.ipynb", outputs) if not (run_dir / p).is_file()]
    if outputs not in missing:
        try:
            listed = (read_outputs(run_dir, name) or {}).get("files", [])
        except (json.JSONDecodeError, OSError):
            return missing + [f"{outputs} (unreadable)"]
        missing += [f for f in listed if not (run_dir / f).is_file()]
    try:
        patterns = notebook_spec(name).products
    except KeyError:
        patterns = ()
    missing += [pat for pat in patterns if not any(p.is_file() for p in run_dir.glob(pat))]
    return list(dict.fromkeys(missing))


def plan_resume(records: dict[str, dict], hashes: dict[str, str], missing: Callable[[str], list[str]],
                notebooks: Sequence[str], force: bool = False) -> tuple[int, str]:
    """The first notebook that must run, and why: its configuration hash changed, it never ran, its
    last status was not ``ok``, or a product of it is missing. Every notebook after it runs too.

    Parameters
    ----------
    records : dict
        ``run_state.json``'s ``notebooks``: name -> ``{"hash", "status", ...}``.
    hashes : dict
        This run's :func:`~semcathode.pipeline._notebooks.notebook_hashes`.
    missing : callable
        Name -> the products it lacks (:func:`missing_products` of the staging folder).
    notebooks : sequence of str
        The notebooks of this run, in order.
    force : bool
        Rerun every one.

    Returns
    -------
    start : int
        Index into ``notebooks`` (``len(notebooks)``: everything is up to date).
    reason : str

    Examples
    --------
    >>> recs = {"01_data": {"hash": "a", "status": "ok"}, "02_pretrain": {"hash": "b", "status": "ok"}}
    >>> plan_resume(recs, {"01_data": "a", "02_pretrain": "c"}, lambda nb: [], ["01_data", "02_pretrain"])
    (1, 'configuration changed')
    >>> plan_resume(recs, {"01_data": "a", "02_pretrain": "b"}, lambda nb: [], ["01_data", "02_pretrain"])
    (2, '')
    """
    if force:
        return 0, "--force"
    for i, nb in enumerate(notebooks):
        rec = records.get(nb, {})
        lacks = missing(nb)
        if rec.get("hash") != hashes[nb] or rec.get("status") != "ok" or lacks:
            return i, ("configuration changed" if rec.get("hash") not in (None, hashes[nb])
                       else "not run yet" if not rec
                       else f"last status {rec.get('status')}" if rec.get("status") != "ok"
                       else "missing " + ", ".join(lacks[:3]) + (" …" if len(lacks) > 3 else ""))
    return len(notebooks), ""
