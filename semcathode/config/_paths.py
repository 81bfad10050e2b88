"""Where semcathode keeps what it can recompute: the one definition of the cache root."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["cache_root"]


def cache_root(cfg: Any = None) -> Path:
    """The folder for pre-processed micrographs, trained models and downloaded data.

    Parameters
    ----------
    cfg : RunConfig, optional
        A run configuration; its ``preprocess.cache_dir`` wins when set.

    Returns
    -------
    Path
        ``cfg.preprocess.cache_dir`` if set, else ``$SEMCATHODE_CACHE``, else
        ``~/.cache/semcathode``.

    Examples
    --------
    >>> from semcathode.config import cache_root, load_config
    >>> str(cache_root(load_config("smoke", overrides={"preprocess.cache_dir": "/tmp/c"})))
    '/tmp/c'
    """
    configured = getattr(getattr(cfg, "preprocess", None), "cache_dir", "") if cfg is not None else ""
    if configured:
        return Path(configured)
    return Path(os.environ.get("SEMCATHODE_CACHE", Path.home() / ".cache" / "semcathode"))
