"""Public dataset registry and fetch (hash-checked, resumable, with attribution).

The registry of the KAIST NCM images is committed in the package
(``semcathode/registry/kaist-ncm.csv``): one row per file with its upstream commit, path,
size and sha256. Files are downloaded from the public repository at the pinned commit, or
copied from a local mirror (``--mirror`` / ``$SEMCATHODE_DATA_MIRROR``) with the same checks.
"""

from __future__ import annotations

import os
import shutil
import urllib.parse
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import pandas as pd

from .._files import atomic_write_text, sha256_file

__all__ = [
    "DatasetError",
    "DatasetInfo",
    "DATASETS",
    "registry",
    "build_registry",
    "fetch",
    "verify",
    "attribution",
    "find_local_data",
    "resolve_data_dir",
]


class DatasetError(RuntimeError):
    """A dataset file is missing, cannot be fetched, or fails its hash check."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    repo: str
    url_template: str
    citation: str
    license: str
    registry_file: str


DATASETS: dict[str, DatasetInfo] = {
    "kaist-ncm": DatasetInfo(
        name="kaist-ncm",
        repo="MIIMSEKAIST/CNN_for_NCM-composition-and-state-prediction",
        url_template="https://raw.githubusercontent.com/MIIMSEKAIST/CNN_for_NCM-composition-and-state-prediction/{commit}/{path}",
        citation=(
            "Oh, J. et al. 'Convolutional neural network for predicting composition and state of "
            "NCM cathodes from SEM images', npj Computational Materials (2024), "
            "doi:10.1038/s41524-024-01279-6. Images from github.com/MIIMSEKAIST/"
            "CNN_for_NCM-composition-and-state-prediction (MIT licence)."
        ),
        license="MIT (upstream repository licence); credit the authors wherever the images are used",
        registry_file="kaist-ncm.csv",
    )
}


def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def registry(name: str = "kaist-ncm") -> pd.DataFrame:
    """The committed registry: ``file, sha256, bytes, upstream_commit, upstream_path``.

    Parameters
    ----------
    name : str
        A dataset of :data:`DATASETS`.

    Returns
    -------
    DataFrame
        One row per file of the dataset.
    """
    info = _info(name)
    with resources.files("semcathode.data").joinpath("registry", info.registry_file).open() as fh:
        return pd.read_csv(fh)


def build_registry(data_dir: str | Path) -> pd.DataFrame:
    """Build a registry from a local copy's ``manifest.csv`` (images and their sidecars).

    Parameters
    ----------
    data_dir : str or Path
        Folder with ``manifest.csv`` whose rows name ``file, sidecar, sha256, bytes,
        upstream_commit, upstream_path``.

    Returns
    -------
    DataFrame
        One row per file (image or sidecar).
    """
    data_dir = Path(data_dir)
    man = pd.read_csv(data_dir / "manifest.csv", encoding="utf-8", encoding_errors="surrogateescape")
    rows = []
    for r in man.itertuples(index=False):
        rows.append((r.file, r.sha256, int(r.bytes), r.upstream_commit, r.upstream_path))
        if isinstance(r.sidecar, str) and r.sidecar and (data_dir / r.sidecar).exists():
            p = data_dir / r.sidecar
            rows.append((r.sidecar, sha256_file(p), p.stat().st_size, r.upstream_commit, r.upstream_path + ".txt"))
    return pd.DataFrame(rows, columns=["file", "sha256", "bytes", "upstream_commit", "upstream_path"])


def attribution(name: str = "kaist-ncm") -> str:
    """Attribution text for a dataset.

    Parameters
    ----------
    name : str
        A dataset of :data:`DATASETS`.

    Returns
    -------
    str
        Markdown: name, citation and licence.
    """
    info = _info(name)
    return f"# {info.name}\n\n{info.citation}\n\nLicence: {info.license}\n"


def _download(url: str, dest: Path, timeout: float = 60.0) -> None:
    part = dest.with_name(dest.name + ".part")
    headers = {}
    if part.exists():
        headers["Range"] = f"bytes={part.stat().st_size}-"
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        mode = "ab" if resp.status == 206 else "wb"
        with open(part, mode) as fh:
            shutil.copyfileobj(resp, fh)
    os.replace(part, dest)


def verify(data_dir: str | Path, name: str = "kaist-ncm") -> list[str]:
    """Files of the registry that are missing or fail their hash (empty = all good).

    Parameters
    ----------
    data_dir : str or Path
        The local copy.
    name : str
        A dataset of :data:`DATASETS`.

    Returns
    -------
    list of str
        Registry file names that are missing or whose sha256 differs.
    """
    data_dir = Path(data_dir)
    bad = []
    for r in registry(name).itertuples(index=False):
        p = data_dir / r.file
        if not p.exists() or sha256_file(p) != r.sha256:
            bad.append(r.file)
    return bad


def fetch(
    name: str,
    dest: str | Path,
    mirror: str | Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Path:
    """Download (or copy from a mirror) every file of a dataset and verify its sha256.

    Files already present with the right hash are kept (so an interrupted fetch resumes).

    Parameters
    ----------
    name : str
        Dataset name, e.g. ``"kaist-ncm"``.
    dest : str or Path
        Target folder.
    mirror : str or Path, optional
        Local mirror with the same layout; default ``$SEMCATHODE_DATA_MIRROR`` if set.
    progress : callable, optional
        Called as ``progress(i, n, file)``.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DatasetError
        A file cannot be had, is a directory in the mirror, or its sha256 differs (the
        message names it); the mirror or the destination is not a folder.

    Examples
    --------
    >>> import tempfile
    >>> from semcathode.data import fetch
    >>> fetch("no-such-dataset", tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    semcathode.data._download.DatasetError: ...kaist-ncm...
    """
    info = _info(name)
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise DatasetError(f"destination {dest} exists and is not a folder")
    mirror = mirror or os.environ.get("SEMCATHODE_DATA_MIRROR") or None
    if mirror and not Path(mirror).is_dir():
        raise DatasetError(f"mirror {mirror} is not a folder")
    reg = registry(name)
    n = len(reg)
    for i, r in enumerate(reg.itertuples(index=False)):
        target = dest / r.file
        if progress:
            progress(i + 1, n, r.file)
        if target.is_dir():
            raise DatasetError(f"{r.file}: {target} is a directory where the file belongs; remove it")
        if target.exists() and sha256_file(target) == r.sha256:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".fetching")
        try:
            if mirror:
                src = Path(mirror) / r.file
                if not src.exists():
                    raise DatasetError(f"{r.file}: not found in mirror {mirror}")
                if not src.is_file():
                    kind = "a directory" if src.is_dir() else "not a regular file"
                    raise DatasetError(f"{r.file}: the mirror entry {src} is {kind}, not a file")
                try:
                    shutil.copyfile(src, tmp)
                except OSError as exc:
                    raise DatasetError(f"{r.file}: cannot copy {src} from the mirror ({exc.strerror or exc})") from None
            else:
                url = info.url_template.format(
                    commit=r.upstream_commit, path=urllib.parse.quote(r.upstream_path)
                )
                try:
                    _download(url, tmp)
                except OSError as exc:
                    raise DatasetError(f"{r.file}: download from {url} failed: {exc}") from None
            got = sha256_file(tmp)
            if got != r.sha256:
                raise DatasetError(f"{r.file}: sha256 mismatch (expected {r.sha256}, got {got}); file rejected")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    atomic_write_text(dest / "ATTRIBUTION.md", attribution(name))
    return dest


def find_local_data(name: str = "kaist-ncm") -> Path | None:
    """A local copy of the dataset: ``$SEMCATHODE_DATA``, or ``shared/data/<name>`` beside the
    checkout (``../shared/data``, looked up from the working directory and the package).

    Parameters
    ----------
    name : str
        A dataset of :data:`DATASETS`.

    Returns
    -------
    Path or None
        The folder, or ``None`` when there is no local copy.
    """
    env = os.environ.get("SEMCATHODE_DATA")
    if env and Path(env).is_dir():
        return Path(env)
    here = Path(__file__).resolve()
    for base in [Path.cwd(), *Path.cwd().parents[:3], *here.parents[:4]]:
        cand = base.parent / "shared" / "data" / name
        if cand.is_dir():
            return cand
        cand = base / "shared" / "data" / name
        if cand.is_dir():
            return cand
    return None


def resolve_data_dir(name: str = "kaist-ncm", data_dir: str | Path | None = None, download: bool = True) -> Path:
    """Where the dataset is: the given folder, a local copy, or a fetched cache copy.

    Parameters
    ----------
    name : str
        A dataset of :data:`DATASETS`.
    data_dir : str or Path, optional
        An explicit folder; it must exist.
    download : bool
        Fetch into the cache when there is no local copy (else raise).

    Returns
    -------
    Path
        The dataset folder.

    Raises
    ------
    DatasetError
        ``data_dir`` does not exist, or no local copy and ``download=False``.
    """
    if data_dir:
        p = Path(data_dir)
        if not p.is_dir():
            raise DatasetError(f"data folder {p} does not exist")
        return p
    local = find_local_data(name)
    if local is not None:
        return local
    from ..config import cache_root

    cache = cache_root() / "data" / name
    if not download:
        raise DatasetError(f"no local copy of {name}; run 'semcathode data fetch {name} DIR'")
    return fetch(name, cache)
