"""The settings a study is trained and evaluated with: the run's sections below the edges, as one
immutable snapshot carried by the study (see :class:`semcathode.data.Study`)."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._sections import (DataConfig, DistributedConfig, EvalConfig, ModelConfig, PreprocessConfig, ProtocolConfig,
                       RunConfig, StageConfig, TargetConfig, ValidityConfig)

__all__ = ["StudySettings", "study_settings"]


@dataclass(frozen=True)
class StudySettings:
    """What a study trains, caches and evaluates with.

    The notebooks, the CLI and the pipeline hold the whole :class:`~semcathode.config.RunConfig`;
    they hand the library this snapshot of the sections below them (inside a
    :class:`~semcathode.data.Study`), so a study and the settings it is trained with cannot
    disagree. The ``cam``, ``morphology`` and report settings stay with the edges. Build it with
    :func:`study_settings`; change it with :meth:`replace` (a new snapshot).

    Examples
    --------
    >>> from semcathode.config import load_config
    >>> s = study_settings(load_config("smoke", overrides={"preprocess.cache_dir": "/tmp/c"}))
    >>> s.model.trunk, str(s.cache_root), s.replace(model={"trunk": 5}).model.trunk, s.model.trunk
    (0, '/tmp/c', 5, 0)
    """

    data: DataConfig
    preprocess: PreprocessConfig
    model: ModelConfig
    stage1: StageConfig
    stage2: StageConfig
    target: TargetConfig
    protocol: ProtocolConfig
    evaluate: EvalConfig
    validity: ValidityConfig
    distributed: DistributedConfig
    cache_root: Path

    def replace(self, **sections: Any) -> "StudySettings":
        """A copy with some sections changed.

        Parameters
        ----------
        **sections : dict or section dataclass
            ``section={"field": value, ...}`` changes those fields of a copy of the section;
            ``section=obj`` puts ``obj`` in its place (``cache_root=`` takes a path).

        Returns
        -------
        StudySettings
        """
        changes = {}
        for name, value in sections.items():
            old = getattr(self, name)
            changes[name] = dataclasses.replace(old, **value) if isinstance(value, dict) else value
        return dataclasses.replace(self, **changes)

    def hash(self) -> str:
        """Short hash of the sections (not the cache root: a location), as :func:`~semcathode.config.config_hash`.

        Returns
        -------
        str
            12 hex digits.
        """
        d = {f.name: dataclasses.asdict(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "cache_root"}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def to_config(self) -> RunConfig:
        """The settings as a ``custom`` :class:`~semcathode.config.RunConfig` (the edges' sections at
        their defaults), e.g. to write them where a launched process reads them back.

        Returns
        -------
        RunConfig
        """
        names = {f.name for f in dataclasses.fields(RunConfig)}
        return RunConfig(profile="custom", **{k: copy.deepcopy(getattr(self, k))
                                              for k in (f.name for f in dataclasses.fields(self)) if k in names})


def study_settings(cfg: RunConfig, cache_root: str | Path | None = None) -> StudySettings:
    """The study settings of a run configuration: a deep copy of its sections (later changes to
    ``cfg`` do not reach a study built from them) and its cache root.

    Parameters
    ----------
    cfg : RunConfig
    cache_root : str or Path, optional
        Default :func:`semcathode.config.cache_root` of ``cfg``.

    Returns
    -------
    StudySettings
    """
    from ._paths import cache_root as root_of

    names = [f.name for f in dataclasses.fields(StudySettings) if f.name != "cache_root"]
    return StudySettings(**{k: copy.deepcopy(getattr(cfg, k)) for k in names},
                         cache_root=Path(cache_root) if cache_root is not None else root_of(cfg))
