"""The model store: trained weights on disk, keyed by the configuration fields that shape them.

A key is a hash of the fields listed in :data:`MODEL_FIELDS` (and nothing else), the seed and
the exact train images; changing an evaluation, CAM or report setting therefore reuses the
stored models, while changing e.g. ``stage1.epochs`` or ``preprocess.scale_um`` trains anew.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pandas as pd
import torch

from .._files import atomic_save, atomic_write_json
from ..config._sections import StageConfig
from ..config._settings import StudySettings

__all__ = ["ModelStore", "MODEL_FIELDS", "model_fields", "stage1_key", "arm_key", "model_store"]

_STAGE_FIELDS = tuple(f.name for f in dataclasses.fields(StageConfig))  # every stage field shapes training

#: Configuration fields that change a trained model, per section; :func:`stage1_key` hashes
#: ``"source"``, :func:`arm_key` hashes ``"source"`` and ``"arm"``. Left out on purpose:
#: ``data.data_dir`` and ``preprocess.cache_dir`` (locations: the images themselves are hashed
#: through the train items), ``data.extra_compositions`` (the new domain has its own items),
#: ``preprocess.tile_stride`` (the evaluation grid; training draws random crops),
#: ``protocol.seeds`` / ``protocol.arms`` (which runs exist, not what one run trains; the seed
#: and arm are in the key themselves), and the ``evaluate``, ``cam`` and ``validity`` sections.
MODEL_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "source": {
        # which micrographs, labels and split groups form the training set
        "data": ("dataset", "labels_csv", "compositions", "states", "skip_bad", "min_size", "bar_method",
                 "bar_fraction", "block_size", "tail_frac", "pretail_frac", "merge_duplicates", "valid_frac", "test_frac",
                 "split_seed", "synthetic_per_class", "synthetic_size"),
        # the network's input representation
        "preprocess": ("mode", "size", "scale_um", "crops_per_image", "tile_stride", "pixel_size_um", "normalize"),
        # the architecture, its initial weights and (trunk > 0) the frozen part and how the top samples the cache
        "model": ("backbone", "weights", "channels_last", "drop_rate", "trunk", "trunk_views", "tiles_per_epoch", "train_tiles", "trunk_dtype", "head", "head_layer",
                  "label_smoothing"),
        # which source frame blocks are held out for the target (and the target's own split)
        "target": ("kind", "target_frac", "valid_frac", "per_class_train", "domain"),
        # stage-1 class balancing
        "protocol": ("stage1_imbalance", "sampler", "oversample_target", "class_weights"),
        "stage1": _STAGE_FIELDS,
    },
    "arm": {
        # the fair budget of arms that do not start from the stage-1 model
        "protocol": ("fair_budget", "fair_max_epochs"),
        "stage2": _STAGE_FIELDS,
    },
}


class ModelStore:
    """Trained weights on disk (safetensors + JSON), keyed by configuration hashes.

    Parameters
    ----------
    root : str or Path, optional
        Folder; default ``<cache>/models``.
    """

    def __init__(self, root: str | Path | None = None):
        from ..config import cache_root

        self.root = Path(root) if root else cache_root() / "models"

    def paths(self, key: str) -> tuple[Path, Path]:
        """The weights and JSON paths of ``key``.

        Parameters
        ----------
        key : str

        Returns
        -------
        (Path, Path)
            ``<root>/<key>.safetensors`` and ``<root>/<key>.json``.
        """
        w = self.root / f"{key}.safetensors"
        return w, w.with_suffix(".json")

    def get(self, key: str) -> tuple[dict, dict] | None:
        """Load an entry.

        Parameters
        ----------
        key : str

        Returns
        -------
        (dict, dict) or None
            ``(state_dict, meta)``, or None when absent or unreadable (a corrupt entry is
            treated as absent: it will be rewritten).
        """
        from safetensors.torch import load_file

        w, j = self.paths(key)
        if not (w.exists() and j.exists()):
            return None
        try:
            return load_file(str(w)), json.loads(j.read_text())
        except Exception:  # corrupt entry: treat as absent, it will be rewritten
            return None

    def put(self, key: str, model: torch.nn.Module, meta: dict) -> None:
        """Write an entry atomically.

        Parameters
        ----------
        key : str
        model : nn.Module
            Its state dict is stored (on the CPU).
        meta : dict
            JSON-serialisable description (history, weights provenance, timing).
        """
        from safetensors.torch import save_file

        w, j = self.paths(key)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        atomic_save(w, lambda tmp: save_file(state, tmp))
        atomic_write_json(j, meta)


def model_store(settings: StudySettings, cache_dir: str | Path | None = None) -> ModelStore:
    """The model store under ``cache_dir``, else under the configuration's cache root.

    Parameters
    ----------
    settings : StudySettings
    cache_dir : str or Path, optional

    Returns
    -------
    ModelStore
        Rooted at ``<cache_dir or settings.cache_root>/models``.
    """
    return ModelStore(Path(cache_dir or settings.cache_root) / "models")


def model_fields(settings: StudySettings, *groups: str, **sections: StageConfig) -> dict:
    """The values of the model-changing fields of ``groups`` (see :data:`MODEL_FIELDS`).

    Parameters
    ----------
    settings : StudySettings
    *groups : str
        ``"source"`` and/or ``"arm"``.
    **sections : StageConfig
        A stage configuration to use instead of ``settings``'s (e.g. ``stage2=`` the fair-budget
        schedule an arm actually trains with).

    Returns
    -------
    dict
        ``{section: {field: value}}``.
    """
    out: dict[str, dict] = {}
    for g in groups:
        for sec, names in MODEL_FIELDS[g].items():
            obj = sections.get(sec, getattr(settings, sec))
            out.setdefault(sec, {}).update({n: getattr(obj, n) for n in names})
    if "trunk_dtype" in out.get("model", {}):  # what the cache is computed in here, not the request
        from ..models._trunk import resolve_trunk_dtype

        out["model"]["trunk_dtype"] = resolve_trunk_dtype(out["model"]["trunk_dtype"])
    return out


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _items_key(items: pd.DataFrame) -> str:
    """Hash of the exact images (content hash and shift) of ``items``, order-free."""
    shifts = items["shift"] if "shift" in items.columns else [""] * len(items)
    blob = "|".join(sorted(f"{a}:{b}" for a, b in zip(items["sha256"], shifts)))
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def stage1_key(settings: StudySettings, seed: int, items: pd.DataFrame | None = None) -> str:
    """Key of a stage-1 model: the model-changing fields, the seed and the source train images.

    Parameters
    ----------
    settings : StudySettings
    seed : int
    items : DataFrame, optional
        The study's items; only the source train rows enter the key.

    Returns
    -------
    str
        ``<hash of MODEL_FIELDS['source']>-s<seed>[-<hash of the source train images>]``.
    """
    key = f"{_digest(model_fields(settings, 'source'))}-s{seed}"
    if items is not None:
        src = items[(items["domain"] == "source") & (items["split"] == "train")]
        key += f"-{_items_key(src)}"
    return key


def arm_key(settings: StudySettings, arm: str, seed: int, train_items: pd.DataFrame, stage: StageConfig | None = None) -> str:
    """Key of a stage-2 model of one arm.

    Parameters
    ----------
    settings : StudySettings
    arm : str
    seed : int
    train_items : DataFrame
        The exact stage-2 train rows.
    stage : StageConfig, optional
        The stage-2 schedule actually trained (default ``settings.stage2``; the fair budget of
        :func:`~semcathode.study._arms.fair_stage` raises its ``min_steps``).

    Returns
    -------
    str
        ``<hash of MODEL_FIELDS['source'] and ['arm']>-<arm>-s<seed>-<hash of the train images>``.
    """
    fields = model_fields(settings, "source", "arm", **({"stage2": stage} if stage is not None else {}))
    return f"{_digest(fields)}-{arm}-s{seed}-{_items_key(train_items)}"
