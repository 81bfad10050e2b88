"""The study the notebooks after 01 share (:class:`Study`): the split manifest, its pre-processed
inputs, the classes and the :class:`~semcathode.config._settings.StudySettings` they are trained and
evaluated with; :func:`load_study` reads one, :func:`example_study` builds a tiny synthetic one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config._sections import RunConfig
from ..config._settings import StudySettings, study_settings
from ._factory import build_manifest, cache_for, data_dir_for, preprocess_params, prepare_splits, schema_from_config
from ._preprocess import PreprocessCache, PreprocessParams, build_items

__all__ = ["Study", "load_study", "example_study"]


@dataclass
class Study:
    """What the notebooks after 01 share: the split manifest, its network inputs, classes and the
    settings the study is trained and evaluated with.

    Built by :func:`load_study` (or :func:`example_study`). The functions of
    :mod:`semcathode.study` take a study first and read their settings from
    :attr:`settings`: one source for the items and the settings they are trained with.

    Examples
    --------
    >>> import tempfile
    >>> from semcathode.data import example_study
    >>> cfg, study = example_study(tempfile.mkdtemp())
    >>> study.rows("source", "train")["split"].unique().tolist(), study.params.size
    (['train'], 64)
    """

    settings: StudySettings
    manifest: pd.DataFrame
    items: pd.DataFrame  # pre-processed inputs of the schema's classes (source + target)
    new_items: pd.DataFrame  # pre-processed inputs of extra compositions (e.g. NCM523)
    classes: list[str]
    cache: PreprocessCache

    @property
    def params(self) -> PreprocessParams:
        return preprocess_params(self.settings.preprocess)

    def using(self, **sections) -> "Study":
        """The same study under changed settings (see :meth:`StudySettings.replace
        <semcathode.config._settings.StudySettings.replace>`); the items are rebuilt through the
        cache when the pre-processing changes.

        Parameters
        ----------
        **sections : dict or section dataclass
            E.g. ``model={"trunk": 5}``.

        Returns
        -------
        Study

        Examples
        --------
        >>> import tempfile
        >>> from semcathode.data import example_study
        >>> _, study = example_study(tempfile.mkdtemp())
        >>> study.using(model={"trunk": 5}).settings.model.trunk, study.settings.model.trunk
        (5, 0)
        """
        import dataclasses

        settings = self.settings.replace(**sections)
        study = dataclasses.replace(self, settings=settings)
        if preprocess_params(settings.preprocess) != self.params:
            study.items = build_items(self.manifest[self.manifest["label"].isin(self.classes)], study.params, self.cache)
            extra = self.manifest[~self.manifest["label"].isin(self.classes)]
            study.new_items = build_items(extra, study.params, self.cache) if len(extra) else study.items.head(0)
        return study

    @classmethod
    def of_items(cls, settings: StudySettings, items: pd.DataFrame, classes: list[str]) -> "Study":
        """A study of already pre-processed ``items`` (no new domain), e.g. a subset of another's.

        Parameters
        ----------
        settings : StudySettings
        items : DataFrame
            Rows of :func:`~semcathode.data.build_items`.
        classes : list of str

        Returns
        -------
        Study
        """
        return cls(settings, items, items, items.head(0), list(classes), cache_for(settings.cache_root))

    def rows(self, domain: str, split: str) -> pd.DataFrame:
        """Items of one domain and split.

        Parameters
        ----------
        domain : str
            ``source`` or ``target``.
        split : str
            ``train``, ``valid``, ``test``, ``tail`` ...

        Returns
        -------
        DataFrame
            The matching rows of :attr:`items`.
        """
        return self.items[(self.items["domain"] == domain) & (self.items["split"] == split)]


def load_study(settings: StudySettings, manifest_csv: str | Path) -> Study:
    """Read a study's manifest (notebook 01 writes it) and pre-process it (through the cache).

    Relative micrograph paths (a published, relocatable report) are resolved against the
    configured data root, so a report's notebooks can be rerun in JupyterLab on another machine.

    Parameters
    ----------
    settings : StudySettings
        What the study is trained and evaluated with (``sc.config.study_settings(cfg)`` of the run's
        :class:`~semcathode.config.RunConfig`).
    manifest_csv : str or Path
        The manifest CSV with its ``split`` column (in a report: ``semcathode.pipeline.MANIFEST``
        below the run folder).

    Returns
    -------
    Study
        The manifest, the pre-processed items and the classes.

    Raises
    ------
    FileNotFoundError
        The manifest does not exist (notebook 01 has not run for this report folder).

    Examples
    --------
    >>> import tempfile
    >>> import semcathode as sc
    >>> tmp = tempfile.mkdtemp()
    >>> cfg = sc.load_config("smoke", overrides={"preprocess.cache_dir": tmp})
    >>> manifest = sc.data.prepare_splits(sc.data.build_manifest(cfg.data, sc.config.cache_root(cfg)),
    ...                                   cfg.data, cfg.target)  # files -> manifest -> splits
    >>> study = sc.load_study(sc.config.study_settings(cfg), sc.data.write_manifest(manifest, f"{tmp}/manifest.csv"))
    >>> len(study.classes), int((study.items["split"] == "train").sum()) > 0
    (9, True)
    """
    from ._manifest import read_manifest

    path = Path(manifest_csv)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: write the study manifest first (notebook 01_data, same out_dir)")
    manifest = read_manifest(path)
    rel = [not Path(str(p)).is_absolute() for p in manifest["path"]]
    if any(rel):  # a published (portable) report names micrographs relative to the data root
        root = data_dir_for(settings.data, settings.cache_root)
        manifest.loc[rel, "path"] = [str(root / str(p)) for p in manifest.loc[rel, "path"]]
    manifest["shift"] = manifest["shift"].fillna("") if "shift" in manifest else ""
    if settings.preprocess.pixel_size_um > 0 and "pixel_size_um" in manifest:  # the user's fallback for files without one
        manifest["pixel_size_um"] = manifest["pixel_size_um"].fillna(settings.preprocess.pixel_size_um)
    classes = schema_from_config(settings.data).classes
    cache = cache_for(settings.cache_root)
    params = preprocess_params(settings.preprocess)
    main = manifest[manifest["label"].isin(classes)]
    extra = manifest[~manifest["label"].isin(classes)]
    items = build_items(main, params, cache)
    new_items = build_items(extra, params, cache) if len(extra) else items.head(0)
    return Study(settings, manifest, items, new_items, classes, cache)


def example_study(cache_dir: str | Path | None = None) -> tuple[RunConfig, Study]:
    """A tiny synthetic study for examples and quick experiments (like scikit-learn's ``load_iris``).

    The ``smoke`` profile: 12 synthetic micrographs per class (nine classes plus NCM523), split,
    pre-processed and cached; built in a few seconds the first time, reused afterwards.

    Parameters
    ----------
    cache_dir : str or Path, optional
        Where the synthetic micrographs, their manifest and the pre-processing cache go (default:
        :func:`semcathode.config.cache_root`).

    Returns
    -------
    tuple of (RunConfig, Study)
        The ``smoke`` configuration and its study.

    Examples
    --------
    >>> import tempfile
    >>> from semcathode.data import example_study
    >>> cfg, study = example_study(tempfile.mkdtemp())
    >>> cfg.profile, len(study.classes), sorted(study.items["split"].unique())[:3]
    ('smoke', 9, ['tail', 'test', 'train'])
    """
    from ..config._run import load_config
    from ._manifest import write_manifest

    cfg = load_config("smoke", overrides={"preprocess.cache_dir": str(cache_dir)} if cache_dir else None)
    settings = study_settings(cfg)
    csv = write_manifest(prepare_splits(build_manifest(cfg.data, settings.cache_root), cfg.data, cfg.target), settings.cache_root / "example" / "manifest.csv")
    return cfg, load_study(settings, csv)
