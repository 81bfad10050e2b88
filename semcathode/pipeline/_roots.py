"""The folders of a configuration that a report's paths are written relative to.

The report subpackage takes these folders as arguments; this module, at the edge, reads them from
a :class:`~semcathode.config.RunConfig`.
"""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig

__all__ = ["report_roots"]


def report_roots(cfg: RunConfig) -> dict[str, Path | None]:
    """The data root and cache root of a run, as keyword arguments of the report's writers.

    Parameters
    ----------
    cfg : RunConfig
        The run's configuration.

    Returns
    -------
    dict
        ``{"data_root": ..., "cache_root": ...}`` for :class:`semcathode.report.NotebookOutputs`
        and :func:`semcathode.report._portable.make_portable`. A root that cannot be resolved (no
        data configured yet, an unusable cache setting) is None: a report never fails for it,
        its paths under that root are then left as they are.

    Examples
    --------
    >>> import tempfile
    >>> from semcathode.config import load_config
    >>> tmp = tempfile.TemporaryDirectory()
    >>> cfg = load_config("smoke", overrides={"data.dataset": "folder", "data.data_dir": tmp.name + "/nowhere",
    ...                                        "preprocess.cache_dir": tmp.name})
    >>> roots = report_roots(cfg)
    >>> roots["data_root"], roots["cache_root"] == Path(tmp.name)
    (None, True)
    >>> tmp.cleanup()
    """
    from ..config import cache_root
    from ..data._factory import data_dir_for

    roots: dict[str, Path | None] = {"data_root": None, "cache_root": None}
    try:
        roots["data_root"] = data_dir_for(cfg.data, cache_root(cfg))
    except Exception:  # a report must not fail because the data root cannot be resolved
        pass
    try:
        roots["cache_root"] = cache_root(cfg)
    except Exception:
        pass
    return roots
