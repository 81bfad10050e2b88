"""Assemble the study's data from the sections of a :class:`~semcathode.config.RunConfig` (``cfg.data``,
``cfg.target``, ``cfg.preprocess``) and the cache root; the study itself
(:class:`~semcathode.data.Study`) is in :mod:`semcathode.data._study`.

files -> manifest (indexed, validated) -> groups -> source / target / new-domain splits.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from ..config._sections import DataConfig, PreprocessConfig, TargetConfig
from ._download import resolve_data_dir
from ._scan import has_images
from ._manifest import index_folder
from ._preprocess import PreprocessCache, PreprocessParams
from ._schema import Schema
from ._splits import assign_groups, make_transfer_splits, split_groups

__all__ = [
    "schema_from_config", "check_data_dir", "data_dir_for", "synthetic_dir", "build_manifest", "prepare_splits", "preprocess_params", "cache_for", "write_attribution",
]


def schema_from_config(data: DataConfig) -> Schema:
    """The class schema configured in the ``data`` section.

    Parameters
    ----------
    data : DataConfig
        The data section of the run configuration (``cfg.data``).

    Returns
    -------
    Schema
        Compositions, states and extra compositions of ``data``.
    """
    return Schema(
        compositions=tuple(data.compositions),
        states=tuple(data.states),
        extra_compositions=tuple(data.extra_compositions),
    )


def check_data_dir(data: DataConfig) -> Path | None:
    """The user-given ``data.data_dir`` if it is a folder holding micrographs.

    Reads only: nothing is written into a user's folder (synthetic data goes to the cache).

    Parameters
    ----------
    data : DataConfig
        The data section of the run configuration (``cfg.data``): ``dataset`` and ``data_dir``.

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
    >>> check_data_dir(load_config("smoke").data) is None
    True
    >>> check_data_dir(load_config("smoke", overrides={"data.data_dir": tmp}).data)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    semcathode.config._sections.ConfigError: data.data_dir: no micrographs found in ... (supported: ...)
    """
    from ..config._sections import ConfigError
    from ..io._read import SUPPORTED_EXTENSIONS

    if not data.data_dir:
        if data.dataset == "folder":
            raise ConfigError("data.dataset is 'folder' but data.data_dir is empty; give the folder of micrographs")
        return None
    root = Path(data.data_dir)
    if not root.is_dir():
        raise ConfigError(f"data.data_dir: {root}: " + ("not a folder" if root.exists() else "folder does not exist"))
    if not has_images(root):
        raise ConfigError(f"data.data_dir: no micrographs found in {root} "
                          f"(supported: {', '.join(SUPPORTED_EXTENSIONS)})")
    return root


def synthetic_dir(data: DataConfig, cache_root: Path) -> Path:
    """The cache folder of the deterministic synthetic set of ``data`` (``<cache>/synthetic/<key>``).

    Parameters
    ----------
    data : DataConfig
        The data section of the run configuration (``cfg.data``): its ``synthetic_*`` values.
    cache_root : Path
        The cache root (:func:`semcathode.config.cache_root` of the run configuration).

    Returns
    -------
    Path
        The folder, whether or not the set has been written yet.
    """
    key = hashlib.sha256(
        json.dumps([data.synthetic_per_class, data.synthetic_size, data.extra_compositions, 1]).encode()
    ).hexdigest()[:10]
    return Path(cache_root) / "synthetic" / key


def data_dir_for(data: DataConfig, cache_root: Path) -> Path:
    """Folder of micrographs for ``data``: the configured folder, the local KAIST copy (or a
    fetch of it), or a deterministic synthetic set written to the cache.

    A configured ``data.data_dir`` is only ever read: with ``data.dataset: synthetic`` it is
    used as it is when it holds images, and it is an error when it holds none (synthetic
    micrographs are written only into the cache, :func:`synthetic_dir`).

    Parameters
    ----------
    data : DataConfig
        The data section of the run configuration (``cfg.data``).
    cache_root : Path
        The cache root (:func:`semcathode.config.cache_root` of the run configuration).

    Returns
    -------
    Path
        The folder to index.

    Raises
    ------
    ConfigError
        ``data.data_dir`` is given but is not a folder of micrographs (:func:`check_data_dir`).
    """
    given = check_data_dir(data)
    if given is not None:
        return given
    if data.dataset == "synthetic":
        root = synthetic_dir(data, cache_root)
        if not (root / ".complete").exists():
            from ._synthetic import write_synthetic_dataset

            s = data.synthetic_size
            write_synthetic_dataset(
                root, n_per_class=data.synthetic_per_class, compositions=tuple(data.compositions),
                states=tuple(data.states), size=(s * 3 // 4 + s // 15, s), seed=0,
            )
            (root / ".complete").write_text("ok\n")
        return root
    return resolve_data_dir(data.dataset, None)


def build_manifest(data: DataConfig, cache_root: Path) -> pd.DataFrame:
    """Index the configured data into a validated manifest (see :func:`index_folder`).

    Parameters
    ----------
    data : DataConfig
        The data section of the run configuration (``cfg.data``).
    cache_root : Path
        The cache root (:func:`semcathode.config.cache_root` of the run configuration). Required,
        though only ``data.dataset: synthetic`` uses it (the set is written below it).

    Returns
    -------
    DataFrame
        The manifest, one row per usable micrograph.
    """
    root = data_dir_for(data, cache_root)
    kaist_layout = (root / "images").is_dir() and (root / "manifest.csv").exists()
    return index_folder(
        root / "images" if kaist_layout else root,
        schema=schema_from_config(data),
        labels_csv=data.labels_csv or None,
        skip_bad=data.skip_bad,
        min_size=data.min_size,
        bar_method=data.bar_method,
        bar_fraction=data.bar_fraction,
    )


def prepare_splits(manifest: pd.DataFrame, data: DataConfig, target: TargetConfig) -> pd.DataFrame:
    """Groups, the transfer study's domains and the splits, all in one manifest.

    Duplicate and near-duplicate images of one class are first put into one group
    (``data.merge_duplicates``), so a pair never straddles train/test or source/target.
    First the last frames of every session of the schema's classes (``data.tail_frac``,
    :func:`~semcathode.data._splits.session_position`) become the source domain's ``tail`` split: a
    test of extrapolation along the stage, kept out of every training set. With
    ``data.pretail_frac`` the frames just before the tail become the source's ``valid`` split
    (the pre-tail: shaped like the tail, so every setting chosen on it is chosen for the test that
    matters), and the frame-block split then has no valid part.
    The other rows of the schema's classes are partitioned into ``source`` and ``target``: with
    ``target.kind = simulated_shift`` by held-out frame blocks plus the acquisition shift
    (see :data:`semcathode.data._splits.SIMULATED_SHIFT_NOTE`); with ``domain_column`` by the
    manifest's own ``domain`` column. Rows of extra compositions (e.g. NCM523, a real new
    domain) keep their domain and get their own group split.

    Parameters
    ----------
    manifest : DataFrame
        From :func:`build_manifest`.
    data : DataConfig
        The data section of the run configuration (``cfg.data``).
    target : TargetConfig
        The target section of the run configuration (``cfg.target``).

    Returns
    -------
    DataFrame
        The manifest's rows (same index) with ``group``, ``domain``, ``split`` and ``shift``.

    Examples
    --------
    >>> import tempfile
    >>> from semcathode.config import cache_root, load_config
    >>> tmp = tempfile.mkdtemp()
    >>> cfg = load_config("smoke", overrides={"data.dataset": "synthetic", "preprocess.cache_dir": tmp,
    ...                                       "data.synthetic_per_class": 6, "data.synthetic_size": 96,
    ...                                       "data.block_size": 1, "data.tail_frac": 0,
    ...                                       "data.merge_duplicates": False})
    >>> df = prepare_splits(build_manifest(cfg.data, cache_root(cfg)), cfg.data, cfg.target)
    >>> len(df), sorted(df["domain"].unique()), sorted(df["split"].unique())
    (54, ['source', 'target'], ['test', 'train', 'valid'])
    >>> cfg.data.tail_frac, cfg.data.pretail_frac, cfg.data.valid_frac = 0.2, 0.2, 0.0
    >>> df = prepare_splits(build_manifest(cfg.data, cache_root(cfg)), cfg.data, cfg.target)
    >>> where = df["group"].str.split("|").str[-1]
    >>> sorted(df.loc[where == "pretail", "split"].unique()), sorted(df.loc[where == "tail", "split"].unique())
    (['valid'], ['tail'])
    >>> bool((df.loc[df["split"] == "valid", "group"].str.endswith("|pretail")).all())  # no frame-block valid beside it
    True
    """
    schema = schema_from_config(data)
    from ._splits import session_position

    is_main = manifest["label"].isin(schema.classes)
    position = session_position(manifest[is_main], data.tail_frac, data.pretail_frac)
    position = position.reindex(manifest.index, fill_value="train")
    if target.kind == "domain_column" and "domain" in manifest:  # the target's own frames stay the target's
        position[(manifest["domain"] == target.domain) & (position == "pretail")] = "train"
    tail = manifest[position == "tail"].copy()
    pretail = manifest[position == "pretail"].copy()
    df = assign_groups(manifest[position == "train"], data.block_size)
    # with a pre-tail, it is the source's valid split: no frame-block valid split beside it
    valid_frac = 0.0 if len(pretail) else data.valid_frac
    if data.merge_duplicates:
        from ._duplicates import find_duplicates
        from ._splits import merge_duplicate_groups

        df = merge_duplicate_groups(df, find_duplicates(df))
    main = df[df["label"].isin(schema.classes)]
    extra = df[~df["label"].isin(schema.classes)]
    if target.kind == "simulated_shift":
        from ._shift import simulated_instrument_shift

        shift = simulated_instrument_shift()
        main = make_transfer_splits(
            main, target_frac=target.target_frac, valid_frac=valid_frac,
            test_frac=data.test_frac, per_class_train=target.per_class_train,
            seed=data.split_seed, shift=shift.to_dict(), target_valid_frac=target.valid_frac,
        )
    else:
        parts = []
        for dom, sub in main.groupby("domain", sort=False):
            sub = split_groups(sub, valid_frac if dom != target.domain else data.valid_frac,
                               data.test_frac, seed=data.split_seed)
            parts.append(sub)
        main = pd.concat(parts)
        main["domain"] = ["target" if d == target.domain else "source" for d in main["domain"]]
        main["shift"] = ""
    parts = [main]
    if len(extra):
        extra = split_groups(extra, data.valid_frac, data.test_frac, seed=data.split_seed)
        extra["shift"] = ""
        parts.append(extra)
    for rows, split, name in ((pretail, "valid", "pretail"), (tail, "tail", "tail")):
        if len(rows):
            parts.append(rows.assign(group=rows["label"].astype(str) + "|" + rows["session"].astype(str) + "|" + name,
                                     domain="source", split=split, shift=""))
    out = pd.concat(parts)
    return out.loc[manifest.index.intersection(out.index)]


def preprocess_params(preprocess: PreprocessConfig) -> PreprocessParams:
    """:class:`PreprocessParams` from the ``preprocess`` section.

    Parameters
    ----------
    preprocess : PreprocessConfig
        The pre-processing section of the run configuration (``cfg.preprocess``).

    Returns
    -------
    PreprocessParams
        Mode, size, scale and tile stride.
    """
    p = preprocess
    return PreprocessParams(mode=p.mode, size=p.size, scale_um=p.scale_um, tile_stride=p.tile_stride)


def cache_for(cache_root: Path) -> PreprocessCache:
    """The pre-processing cache below the cache root.

    Parameters
    ----------
    cache_root : Path
        The cache root (:func:`semcathode.config.cache_root` of the run configuration).

    Returns
    -------
    PreprocessCache
        Rooted at ``<cache root>/preprocessed``.
    """
    return PreprocessCache(Path(cache_root) / "preprocessed")


def write_attribution(data: DataConfig, out_dir: str | Path) -> Path:
    """Write ``ATTRIBUTION.md`` for the configured data into ``out_dir``.

    Parameters
    ----------
    data : DataConfig
        The data section of the run configuration (``cfg.data``): ``dataset`` and ``data_dir``.
    out_dir : str or Path
        The output folder.

    Returns
    -------
    Path
        The file written.
    """
    from .._files import atomic_write_text
    from ._download import DATASETS, attribution

    if data.dataset in DATASETS:
        text = attribution(data.dataset)
    elif data.dataset == "synthetic":
        text = "# synthetic\n\nSynthetic micrographs generated by semcathode.data._synthetic (no real data).\n"
    else:
        text = f"# {data.data_dir}\n\nUser-supplied micrographs.\n"
    return atomic_write_text(Path(out_dir) / "ATTRIBUTION.md", text)
