"""Assemble the study's data from a :class:`~semcathode.config.RunConfig`.

files -> manifest (indexed, validated) -> groups -> source / target / new-domain splits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config.sections import RunConfig
from .download import resolve_data_dir
from .manifest import index_folder
from ..config.paths import cache_root
from ..io.walk import is_image_name
from .preprocess import PreprocessCache, PreprocessParams, build_items
from .schema import Schema
from .splits import assign_groups, make_transfer_splits, split_groups

__all__ = [
    "example_study",
    "schema_from_config", "check_data_dir", "data_dir_for", "synthetic_dir", "build_manifest", "prepare_splits", "preprocess_params", "cache_for", "write_attribution", "Study", "load_study",
]


def schema_from_config(cfg: RunConfig) -> Schema:
    """The class schema configured in ``cfg.data``.

    Parameters
    ----------
    cfg : RunConfig
        The run configuration.

    Returns
    -------
    Schema
        Compositions, states and extra compositions of ``cfg.data``.
    """
    return Schema(
        compositions=tuple(cfg.data.compositions),
        states=tuple(cfg.data.states),
        extra_compositions=tuple(cfg.data.extra_compositions),
    )


def _has_images(root: Path) -> bool:
    """Whether the tree under ``root`` (links followed, each folder once) holds an image file."""
    import os

    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        try:
            st = os.stat(folder)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:  # a link loop
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        if any(is_image_name(f) for f in files):
            return True
    return False


def check_data_dir(cfg: RunConfig) -> Path | None:
    """The user-given ``data.data_dir`` of ``cfg`` if it is a folder holding micrographs.

    Reads only: nothing is written into a user's folder (synthetic data goes to the cache).

    Parameters
    ----------
    cfg : RunConfig
        The run configuration.

    Returns
    -------
    Path or None
        ``data.data_dir``; None when it is empty (the dataset's own location is used).

    Raises
    ------
    ConfigError
        ``data.dataset`` is ``folder`` without a ``data.data_dir``, or ``data.data_dir`` is not
        a folder or holds no image of a supported format.

    Examples
    --------
    >>> import tempfile
    >>> from semcathode.config import load_config
    >>> tmp = tempfile.mkdtemp()
    >>> check_data_dir(load_config("smoke")) is None
    True
    >>> check_data_dir(load_config("smoke", overrides={"data.data_dir": tmp}))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    semcathode.config.sections.ConfigError: data.data_dir: no micrographs found in ... (supported: ...)
    """
    from ..config.sections import ConfigError
    from ..io.read import SUPPORTED_EXTENSIONS

    if not cfg.data.data_dir:
        if cfg.data.dataset == "folder":
            raise ConfigError("data.dataset is 'folder' but data.data_dir is empty; give the folder of micrographs")
        return None
    root = Path(cfg.data.data_dir)
    if not root.is_dir():
        raise ConfigError(f"data.data_dir: {root}: " + ("not a folder" if root.exists() else "folder does not exist"))
    if not _has_images(root):
        raise ConfigError(f"data.data_dir: no micrographs found in {root} "
                          f"(supported: {', '.join(SUPPORTED_EXTENSIONS)})")
    return root


def synthetic_dir(cfg: RunConfig) -> Path:
    """The cache folder of the deterministic synthetic set of ``cfg`` (``<cache>/synthetic/<key>``).

    Parameters
    ----------
    cfg : RunConfig
        The run configuration (its ``data.synthetic_*`` values and cache root).

    Returns
    -------
    Path
        The folder, whether or not the set has been written yet.
    """
    key = hashlib.sha256(
        json.dumps([cfg.data.synthetic_per_class, cfg.data.synthetic_size, cfg.data.extra_compositions, 1]).encode()
    ).hexdigest()[:10]
    return cache_root(cfg) / "synthetic" / key


def data_dir_for(cfg: RunConfig) -> Path:
    """Folder of micrographs for ``cfg``: the configured folder, the local KAIST copy (or a
    fetch of it), or a deterministic synthetic set written to the cache.

    A configured ``data.data_dir`` is only ever read: with ``data.dataset: synthetic`` it is
    used as it is when it holds images, and it is an error when it holds none (synthetic
    micrographs are written only into the cache, :func:`synthetic_dir`).

    Parameters
    ----------
    cfg : RunConfig
        The run configuration.

    Returns
    -------
    Path
        The folder to index.

    Raises
    ------
    ConfigError
        ``data.data_dir`` is given but is not a folder of micrographs (:func:`check_data_dir`).
    """
    given = check_data_dir(cfg)
    if given is not None:
        return given
    if cfg.data.dataset == "synthetic":
        root = synthetic_dir(cfg)
        if not (root / ".complete").exists():
            from .synthetic import write_synthetic_dataset

            s = cfg.data.synthetic_size
            write_synthetic_dataset(
                root, n_per_class=cfg.data.synthetic_per_class, compositions=tuple(cfg.data.compositions),
                states=tuple(cfg.data.states), size=(s * 3 // 4 + s // 15, s), seed=0,
            )
            (root / ".complete").write_text("ok\n")
        return root
    return resolve_data_dir(cfg.data.dataset, None)


def build_manifest(cfg: RunConfig) -> pd.DataFrame:
    """Index the configured data into a validated manifest (see :func:`index_folder`).

    Parameters
    ----------
    cfg : RunConfig
        The run configuration (``data`` section).

    Returns
    -------
    DataFrame
        The manifest, one row per usable micrograph.
    """
    root = data_dir_for(cfg)
    kaist_layout = (root / "images").is_dir() and (root / "manifest.csv").exists()
    return index_folder(
        root / "images" if kaist_layout else root,
        schema=schema_from_config(cfg),
        labels_csv=cfg.data.labels_csv or None,
        skip_bad=cfg.data.skip_bad,
        min_size=cfg.data.min_size,
        bar_method=cfg.data.bar_method,
        bar_fraction=cfg.data.bar_fraction,
    )


def prepare_splits(manifest: pd.DataFrame, cfg: RunConfig) -> pd.DataFrame:
    """Groups, the transfer study's domains and the splits, all in one manifest.

    Duplicate and near-duplicate images of one class are first put into one group
    (``data.merge_duplicates``), so a pair never straddles train/test or source/target.
    First the last frames of every session of the schema's classes (``data.tail_frac``,
    :func:`~semcathode.data.splits.session_position`) become the source domain's ``tail`` split: a
    test of extrapolation along the stage, kept out of every training set. With
    ``data.pretail_frac`` the frames just before the tail become the source's ``valid`` split
    (the pre-tail: shaped like the tail, so every setting chosen on it is chosen for the test that
    matters), and the frame-block split then has no valid part.
    The other rows of the schema's classes are partitioned into ``source`` and ``target``: with
    ``target.kind = simulated_shift`` by held-out frame blocks plus the acquisition shift
    (see :data:`semcathode.data.splits.SIMULATED_SHIFT_NOTE`); with ``domain_column`` by the
    manifest's own ``domain`` column. Rows of extra compositions (e.g. NCM523, a real new
    domain) keep their domain and get their own group split.

    Parameters
    ----------
    manifest : DataFrame
        From :func:`build_manifest`.
    cfg : RunConfig
        The run configuration (``data`` and ``target`` sections).

    Returns
    -------
    DataFrame
        The manifest's rows (same index) with ``group``, ``domain``, ``split`` and ``shift``.

    Examples
    --------
    >>> import tempfile
    >>> from semcathode.config import load_config
    >>> tmp = tempfile.mkdtemp()
    >>> cfg = load_config("smoke", overrides={"data.dataset": "synthetic", "preprocess.cache_dir": tmp,
    ...                                       "data.synthetic_per_class": 6, "data.synthetic_size": 96,
    ...                                       "data.block_size": 1, "data.tail_frac": 0,
    ...                                       "data.merge_duplicates": False})
    >>> df = prepare_splits(build_manifest(cfg), cfg)
    >>> len(df), sorted(df["domain"].unique()), sorted(df["split"].unique())
    (54, ['source', 'target'], ['test', 'train', 'valid'])
    >>> cfg.data.tail_frac, cfg.data.pretail_frac, cfg.data.valid_frac = 0.2, 0.2, 0.0
    >>> df = prepare_splits(build_manifest(cfg), cfg)
    >>> where = df["group"].str.split("|").str[-1]
    >>> sorted(df.loc[where == "pretail", "split"].unique()), sorted(df.loc[where == "tail", "split"].unique())
    (['valid'], ['tail'])
    >>> bool((df.loc[df["split"] == "valid", "group"].str.endswith("|pretail")).all())  # no frame-block valid beside it
    True
    """
    schema = schema_from_config(cfg)
    from .splits import session_position

    is_main = manifest["label"].isin(schema.classes)
    position = session_position(manifest[is_main], cfg.data.tail_frac, cfg.data.pretail_frac)
    position = position.reindex(manifest.index, fill_value="train")
    if cfg.target.kind == "domain_column" and "domain" in manifest:  # the target's own frames stay the target's
        position[(manifest["domain"] == cfg.target.domain) & (position == "pretail")] = "train"
    tail = manifest[position == "tail"].copy()
    pretail = manifest[position == "pretail"].copy()
    df = assign_groups(manifest[position == "train"], cfg.data.block_size)
    # with a pre-tail, it is the source's valid split: no frame-block valid split beside it
    valid_frac = 0.0 if len(pretail) else cfg.data.valid_frac
    if cfg.data.merge_duplicates:
        from .duplicates import find_duplicates
        from .splits import merge_duplicate_groups

        df = merge_duplicate_groups(df, find_duplicates(df))
    main = df[df["label"].isin(schema.classes)]
    extra = df[~df["label"].isin(schema.classes)]
    if cfg.target.kind == "simulated_shift":
        from .shift import simulated_instrument_shift

        shift = simulated_instrument_shift()
        main = make_transfer_splits(
            main, target_frac=cfg.target.target_frac, valid_frac=valid_frac,
            test_frac=cfg.data.test_frac, per_class_train=cfg.target.per_class_train,
            seed=cfg.data.split_seed, shift=shift.to_dict(), target_valid_frac=cfg.target.valid_frac,
        )
    else:
        parts = []
        for dom, sub in main.groupby("domain", sort=False):
            sub = split_groups(sub, valid_frac if dom != cfg.target.domain else cfg.data.valid_frac,
                               cfg.data.test_frac, seed=cfg.data.split_seed)
            parts.append(sub)
        main = pd.concat(parts)
        main["domain"] = ["target" if d == cfg.target.domain else "source" for d in main["domain"]]
        main["shift"] = ""
    parts = [main]
    if len(extra):
        extra = split_groups(extra, cfg.data.valid_frac, cfg.data.test_frac, seed=cfg.data.split_seed)
        extra["shift"] = ""
        parts.append(extra)
    for rows, split, name in ((pretail, "valid", "pretail"), (tail, "tail", "tail")):
        if len(rows):
            parts.append(rows.assign(group=rows["label"].astype(str) + "|" + rows["session"].astype(str) + "|" + name,
                                     domain="source", split=split, shift=""))
    out = pd.concat(parts)
    return out.loc[manifest.index.intersection(out.index)]


def preprocess_params(cfg: RunConfig) -> PreprocessParams:
    """:class:`PreprocessParams` from ``cfg.preprocess``.

    Parameters
    ----------
    cfg : RunConfig
        The run configuration.

    Returns
    -------
    PreprocessParams
        Mode, size, scale and tile stride.
    """
    p = cfg.preprocess
    return PreprocessParams(mode=p.mode, size=p.size, scale_um=p.scale_um, tile_stride=p.tile_stride)


def cache_for(cfg: RunConfig) -> PreprocessCache:
    """The pre-processing cache configured in ``cfg``.

    Parameters
    ----------
    cfg : RunConfig
        The run configuration.

    Returns
    -------
    PreprocessCache
        Rooted at ``<cache root>/preprocessed``.
    """
    return PreprocessCache(cache_root(cfg) / "preprocessed")


def write_attribution(cfg: RunConfig, out_dir: str | Path) -> Path:
    """Write ``ATTRIBUTION.md`` for the configured data into ``out_dir``.

    Parameters
    ----------
    cfg : RunConfig
        The run configuration.
    out_dir : str or Path
        The output folder.

    Returns
    -------
    Path
        The file written.
    """
    from .._files import atomic_write_text
    from .download import DATASETS, attribution

    if cfg.data.dataset in DATASETS:
        text = attribution(cfg.data.dataset)
    elif cfg.data.dataset == "synthetic":
        text = "# synthetic\n\nSynthetic micrographs generated by semcathode.data.synthetic (no real data).\n"
    else:
        text = f"# {cfg.data.data_dir}\n\nUser-supplied micrographs.\n"
    return atomic_write_text(Path(out_dir) / "ATTRIBUTION.md", text)


@dataclass
class Study:
    """What the notebooks after 01 share: the split manifest, its network inputs and classes.

    Built by :func:`load_study` (or :func:`example_study`).

    Examples
    --------
    >>> import tempfile
    >>> from semcathode.data import example_study
    >>> cfg, study = example_study(tempfile.mkdtemp())
    >>> study.rows("source", "train")["split"].unique().tolist(), study.params.size
    (['train'], 64)
    """

    cfg: RunConfig
    manifest: pd.DataFrame
    items: pd.DataFrame  # pre-processed inputs of the schema's classes (source + target)
    new_items: pd.DataFrame  # pre-processed inputs of extra compositions (e.g. NCM523)
    classes: list[str]
    cache: PreprocessCache

    @property
    def params(self) -> PreprocessParams:
        return preprocess_params(self.cfg)

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


def load_study(cfg: RunConfig, manifest_csv: str | Path) -> Study:
    """Read a study's manifest (notebook 01 writes it) and pre-process it (through the cache).

    Relative micrograph paths (a published, relocatable report) are resolved against the
    configured data root, so a report's notebooks can be rerun in JupyterLab on another machine.

    Parameters
    ----------
    cfg : RunConfig
        The run configuration.
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
    >>> manifest = sc.data.prepare_splits(sc.data.build_manifest(cfg), cfg)  # files -> manifest -> splits
    >>> study = sc.load_study(cfg, sc.data.write_manifest(manifest, f"{tmp}/manifest.csv"))
    >>> len(study.classes), int((study.items["split"] == "train").sum()) > 0
    (9, True)
    """
    from .manifest import read_manifest

    path = Path(manifest_csv)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: write the study manifest first (notebook 01_data, same out_dir)")
    manifest = read_manifest(path)
    rel = [not Path(str(p)).is_absolute() for p in manifest["path"]]
    if any(rel):  # a published (portable) report names micrographs relative to the data root
        root = data_dir_for(cfg)
        manifest.loc[rel, "path"] = [str(root / str(p)) for p in manifest.loc[rel, "path"]]
    manifest["shift"] = manifest["shift"].fillna("") if "shift" in manifest else ""
    if cfg.preprocess.pixel_size_um > 0 and "pixel_size_um" in manifest:  # the user's fallback for files without one
        manifest["pixel_size_um"] = manifest["pixel_size_um"].fillna(cfg.preprocess.pixel_size_um)
    classes = schema_from_config(cfg).classes
    cache = cache_for(cfg)
    params = preprocess_params(cfg)
    main = manifest[manifest["label"].isin(classes)]
    extra = manifest[~manifest["label"].isin(classes)]
    items = build_items(main, params, cache)
    new_items = build_items(extra, params, cache) if len(extra) else items.head(0)
    return Study(cfg, manifest, items, new_items, classes, cache)


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
    from ..config.run import load_config
    from .manifest import write_manifest

    cfg = load_config("smoke", overrides={"preprocess.cache_dir": str(cache_dir)} if cache_dir else None)
    csv = write_manifest(prepare_splits(build_manifest(cfg), cfg), cache_root(cfg) / "example" / "manifest.csv")
    return cfg, load_study(cfg, csv)
