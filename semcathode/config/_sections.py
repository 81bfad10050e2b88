"""The shape of a run configuration: its sections as dataclasses, their allowed values, its hash.

Every field declares its allowed values in its dataclass metadata (``range``: a :class:`Range`;
``choices``, from :data:`CHOICES`; ``nonempty``; ``items``: the range or choices of each list
item), so the rules sit beside the field they govern; :func:`semcathode.config._run.validate` checks them. Loading, validation and
saving live in :mod:`semcathode.config._run`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ConfigError",
    "Range",
    "DataConfig",
    "PreprocessConfig",
    "ModelConfig",
    "StageConfig",
    "TargetConfig",
    "ProtocolConfig",
    "EvalConfig",
    "CamConfig",
    "MorphologyConfig",
    "DistributedConfig",
    "ValidityConfig",
    "RunConfig",
    "PROFILES",
    "CHOICES",
    "config_hash",
]

PROFILES: tuple[str, ...] = ("smoke", "demo", "paper")

#: ``profile: custom`` in a file: the values are the dataclass defaults plus the file, no shipped profile.
CUSTOM_PROFILE = "custom"


class ConfigError(ValueError):
    """A configuration key or value is invalid; the message names it (all of them, on one line).

    Attributes
    ----------
    problems : list of str
        One entry per bad key.
    """

    #: Problems written out in the message; the others are counted (all stay in ``problems``).
    shown: int = 10

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            msg = self.problems[0]
        else:
            msg = f"{len(self.problems)} invalid config values: " + "; ".join(self.problems[: self.shown])
            if len(self.problems) > self.shown:
                msg += f"; and {len(self.problems) - self.shown} more"
        super().__init__(msg)


@dataclass(frozen=True)
class Range:
    """Allowed interval of a numeric config value (always finite; ``None`` = unbounded)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        if self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi):
            return False
        return True

    def __str__(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {self.hi:g}"
        return "a finite number"


def _f(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, range: Range | None = None,
       choices: tuple[str, ...] | None = None, nonempty: bool = False,
       items: Range | tuple[str, ...] | None = None) -> Any:
    """A dataclass field whose allowed values are declared in its metadata (checked by :func:`validate`).

    ``choices`` (a tuple of :data:`CHOICES`) governs a string key; ``items`` each item of a list
    key: a :class:`Range` for numbers, a tuple of :data:`CHOICES` for names.
    """
    meta: dict[str, Any] = {}
    if range is not None:
        meta["range"] = range
    if choices is not None:
        meta["choices"] = tuple(choices)
    if nonempty:
        meta["nonempty"] = True
    if items is not None:
        meta["items"] = items
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


GE0 = Range(0)
GE1 = Range(1)
POS = Range(0, lo_open=True)
FRACTION = Range(0, 1, hi_open=True)  # [0, 1)
UNIT = Range(0, 1)  # [0, 1]
#: Backbone names (the keys of :data:`semcathode.models._backbones.BACKBONES`; kept here so that a config
#: loads without importing torch; a test keeps the two in step).
BACKBONE_NAMES: tuple[str, ...] = ("efficientnet_b0", "efficientnet_lite0")

#: Every string enumeration of the configuration (and of an exported model's JSON), by what it
#: names: the one table the fields' ``choices``/``items`` come from. Names that other
#: subpackages define are repeated here so a config loads without importing them (torch,
#: pytorch-grad-cam); tests keep them in step: ``arm`` = the keys of
#: :data:`semcathode.study.ARMS`, ``shift_kind`` = :data:`semcathode.data._shift.SHIFT_KINDS`,
#: ``cam_method`` = the keys of :data:`semcathode.explain._compute.CAM_METHODS`, ``aggregate`` =
#: :data:`semcathode.models._forward.AGGREGATIONS`, ``backbone`` = :data:`semcathode.models._backbones.BACKBONES`.
CHOICES: dict[str, tuple[str, ...]] = {
    "dataset": ("kaist-ncm", "synthetic", "folder"),
    "bar_method": ("auto", "metadata", "detect", "fraction", "none"),
    "preprocess_mode": ("scale", "resize"),
    "normalize": ("dataset", "per_image"),
    "backbone": BACKBONE_NAMES,
    "weights": ("auto", "hub", "packaged", "scratch"),
    "schedule": ("discriminative", "paper"),
    "target_kind": ("simulated_shift", "domain_column"),
    "imbalance": ("none", "oversample", "weighted_loss"),
    "sampler": ("replicate", "weighted"),
    "class_weights": ("median", "inverse"),
    "aggregate": ("mean_log_prob", "mean_prob"),
    "cam_method": ("gradcam", "gradcampp", "eigencam", "layercam", "hirescam", "xgradcam"),
    "arm": ("pre_ft_oversample", "pre_ft_weighted", "pre_ft", "ft_only", "scratch_ft", "pretrain_only"),
    "shift_kind": ("brightness", "contrast", "gamma", "noise", "blur", "magnification"),
    "trunk_view": ("full", "half"),
    "cam_layer": ("last", "last_block", "conv_head", "blocks.3", "blocks.4", "blocks.5", "blocks.6"),
    "trunk_dtype": ("auto", "float32", "bfloat16"),
    "head": ("conv", "linear"),
    "head_layer": ("blocks.3", "blocks.4", "blocks.5"),
    "threshold": ("auto", "otsu", "local"),
    "familiarity_layer": ("blocks.2", "blocks.3", "blocks.4", "blocks.5", "blocks.6", "final"),
    "dist_backend": ("auto", "gloo", "nccl"),
}
#: String keys whose values are free text (paths, class-name parts, a domain value): not enumerations.
FREE_TEXT_KEYS: tuple[str, ...] = ("data.data_dir", "data.labels_csv", "data.compositions", "data.states",
                                   "data.extra_compositions", "preprocess.cache_dir", "target.domain")


@dataclass
class DataConfig:
    """Where the micrographs are and how they are labelled and split."""

    dataset: str = _f("kaist-ncm", choices=CHOICES["dataset"])
    data_dir: str = ""  # '' = the dataset's default location
    labels_csv: str = ""  # optional CSV with path,label[,domain,session,sample_id]
    compositions: list[str] = _f(factory=lambda: ["NCM333", "NCM622", "NCM811"], nonempty=True)
    states: list[str] = _f(factory=lambda: ["pristine", "formation", "cycled"], nonempty=True)
    extra_compositions: list[str] = field(default_factory=lambda: ["NCM523"])
    skip_bad: bool = False
    min_size: int = _f(64, range=Range(16, 100_000))
    bar_method: str = _f("auto", choices=CHOICES["bar_method"])
    bar_fraction: float = _f(0.0667, range=Range(0, 0.5, hi_open=True))
    block_size: int = _f(5, range=GE1)  # consecutive frames of a session that form one split group
    tail_frac: float = _f(0.1, range=FRACTION)  # share of each session's last frames (by frame number) held out as the session-tail test split (0 = off)
    pretail_frac: float = _f(0.0, range=FRACTION)  # share of each session's frames just before the tail that form the source valid split (0 = frame-block valid split instead); every setting is chosen there
    merge_duplicates: bool = True  # duplicate / near-duplicate images always share a split group
    valid_frac: float = _f(0.15, range=FRACTION)  # valid_frac + test_frac < 1
    test_frac: float = _f(0.2, range=FRACTION)
    split_seed: int = _f(0, range=GE0)
    synthetic_per_class: int = _f(12, range=GE1)
    synthetic_size: int = _f(160, range=Range(64, 4096))


@dataclass
class PreprocessConfig:
    """How a bar-free micrograph becomes a network input."""

    mode: str = _f("scale", choices=CHOICES["preprocess_mode"])  # scale (physical-scale crops) | resize (whole frame squeezed to size x size)
    size: int = _f(224, range=Range(16, 4096))  # network input side in px (scale: the crop; resize: the whole frame)
    scale_um: float = _f(0.5, range=Range(0, 100))  # scale: µm per px every micrograph is resampled to (0 = keep native)
    crops_per_image: int = _f(2, range=GE1)  # scale: random crops drawn per micrograph per training epoch
    tile_stride: float = _f(1.0, range=Range(0.25, 1))  # scale: evaluation tile-grid stride as a fraction of size (grid always covers the frame; >= 0.25: at most 16x the tiles)
    pixel_size_um: float = _f(0.0, range=Range(0, 100))  # fallback µm/px for files without one (0 = such a file is an error)
    normalize: str = _f("dataset", choices=CHOICES["normalize"])  # dataset (ImageNet stats) | per_image (histogram standardisation)
    cache_dir: str = ""  # '' = ~/.cache/semcathode or $SEMCATHODE_CACHE


@dataclass
class ModelConfig:
    """Backbone and weights."""

    backbone: str = _f("efficientnet_lite0", choices=CHOICES["backbone"])
    weights: str = _f("auto", choices=CHOICES["weights"])
    channels_last: bool = True
    drop_rate: float = _f(0.2, range=FRACTION)
    trunk: int = _f(0, range=Range(0, 6))  # block stages kept frozen at their initial weights, their output cached once per tile and view (0 = the whole network trained from pixels)
    trunk_views: list[str] = _f(factory=lambda: ["full"], nonempty=True, items=CHOICES["trunk_view"])  # cached views of each training micrograph: full, half (2x down, then up: lost finest detail)
    tiles_per_epoch: int = _f(4, range=Range(1, 1000))  # trunk: tiles of each training micrograph drawn per epoch
    trunk_dtype: str = _f("float32", choices=CHOICES["trunk_dtype"])  # trunk: the precision the cache is computed in (bfloat16: autocast, 2-3x faster with AMX/AVX-512 BF16 and 5-10x slower without; auto: bfloat16 where the hardware has it)
    train_tiles: int = _f(0, range=Range(0, 10000))  # trunk: tiles of each training micrograph cached (a fixed subset spread over the grid; 0 = all)
    label_smoothing: float = _f(0.0, range=Range(0, 0.5))  # cross-entropy label smoothing
    head: str = _f("conv", choices=CHOICES["head"])  # conv: timm's head (head convolution, pooling, classifier) after every block; linear: the network ends at head_layer, its pooled output standardised and read by a linear classifier (the frozen-feature probe as the model; needs trunk = the stages kept)
    head_layer: str = _f("blocks.5", choices=CHOICES["head_layer"])  # linear head: the block stage whose pooled output the classifier reads


@dataclass
class StageConfig:
    """One training stage."""

    epochs: int = _f(4, range=GE0)
    freeze_epochs: int = _f(1, range=GE0)
    lr: float = _f(2e-3, range=Range(0, 10, lo_open=True))
    lr_div: float = _f(10.0, range=GE1)  # discriminative: lowest group gets lr / lr_div
    batch_size: int = _f(16, range=Range(1, 65_536))
    schedule: str = _f("discriminative", choices=CHOICES["schedule"])  # discriminative | paper (Adam 1e-3, no freezing)
    weight_decay: float = _f(0.01, range=GE0)
    min_steps: int = _f(0, range=GE0)  # tiny train sets: train at least this many optimiser steps
    freeze_early_epochs: int = _f(0, range=GE0)  # epochs of the unfrozen phase with the high-resolution early group still frozen
    validate: bool = True  # score the valid split after every epoch (off = faster)


@dataclass
class TargetConfig:
    """The data-poor target domain."""

    kind: str = _f("simulated_shift", choices=CHOICES["target_kind"])
    target_frac: float = _f(0.4, range=Range(0, 1, lo_open=True, hi_open=True))  # share of each class's frame blocks held out for the target
    valid_frac: float = _f(0.0, range=FRACTION)  # target valid share (stage 2 trains a fixed schedule: no valid needed)
    per_class_train: int = _f(20, range=GE1)
    domain: str = "target"  # domain_column: which domain value is the target


@dataclass
class ProtocolConfig:
    """Arms, imbalance strategies and seeds of the transfer study."""

    seeds: list[int] = _f(factory=lambda: [0, 1, 2], nonempty=True, items=GE0)
    arms: list[str] = _f(
        factory=lambda: [
            "pre_ft_oversample",
            "pre_ft_weighted",
            "ft_only",
            "pretrain_only",
            "scratch_ft",
        ],
        nonempty=True,
        items=CHOICES["arm"],
    )
    stage1_imbalance: str = _f("oversample", choices=CHOICES["imbalance"])  # (stage 1 on the source)
    oversample_target: int = _f(0, range=GE0)  # 0 = size of the largest class
    sampler: str = _f("replicate", choices=CHOICES["sampler"])
    class_weights: str = _f("median", choices=CHOICES["class_weights"])
    fair_budget: bool = True  # FT-only/Scratch+FT train at least as many steps as Pre+FT in both stages
    fair_max_epochs: int = _f(60, range=GE1)  # cap on those epochs


@dataclass
class EvalConfig:
    """Metrics and statistics."""

    n_boot: int = _f(1000, range=GE1)
    aggregate: str = _f("mean_log_prob", choices=CHOICES["aggregate"])  # per-micrograph aggregation of tiles
    ood_k: int = _f(5, range=GE1)  # neighbours in feature space for the ood_score
    familiar_quantile: float = _f(0.95, range=Range(0, 1, lo_open=True))  # valid-split quantile of ood_score that sets the `familiar` threshold
    familiarity_layers: list[str] = _f(factory=list, items=CHOICES["familiarity_layer"])  # candidate layers of the multi-layer ood_score (blocks.4, blocks.5, final; the set is chosen against NCM523's train split); empty = the final embedding only


@dataclass
class CamConfig:
    """Grad-CAM settings."""

    method: str = _f("gradcam", choices=CHOICES["cam_method"])
    per_class: int = _f(2, range=GE1)
    arms: list[str] = _f(factory=lambda: ["pre_ft_oversample", "ft_only"], items=CHOICES["arm"])
    opacity: float = _f(0.45, range=UNIT)
    deletion_steps: int = _f(8, range=GE1)
    layer: str = _f("last", choices=CHOICES["cam_layer"])  # target layer: last (head map, 7x7 on a 224-px tile) or a block stage (blocks.4: 14x14, ~4 µm cells at 0.26 µm/px)


@dataclass
class MorphologyConfig:
    """Particle segmentation and measures (:mod:`semcathode.morphology`); every length in µm.

    The segmentation smooths the bar-free micrograph, thresholds it, splits touching particles by
    a marker-based watershed on the distance transform and keeps the regions at least
    ``min_diameter_um`` across. Each value is converted to pixels with the micrograph's own pixel
    size, so the same particles give the same measures at any magnification.
    """

    work_um: float = _f(0.5, range=GE0)  # segment at this pixel size (finer micrographs are downsampled, coarser ones kept; 0: each at its own)
    denoise_um: float = _f(0.3, range=GE0)  # Gaussian sigma of the denoising (0: none)
    threshold: str = _f("auto", choices=CHOICES["threshold"])  # auto: Otsu, or a local threshold when the illumination is uneven (stated per micrograph)
    local_block_um: float = _f(20.0, range=POS)  # window of the local threshold
    uneven_ratio: float = _f(0.25, range=POS)  # auto picks local when the background's std (smoothed over 25 µm) exceeds this share of the image's
    min_diameter_um: float = _f(2.0, range=GE0)  # smallest particle kept (equivalent diameter)
    marker_h_um: float = _f(0.3, range=POS)  # a distance-transform maximum at least this high above its saddle seeds a particle
    fines_um: float = _f(3.0, range=POS)  # particles under this equivalent diameter are fines
    band_um: float = _f(1.0, range=POS)  # width of the boundary band around the outlines (CAM check)


@dataclass
class DistributedConfig:
    """How training runs, not what it trains: processes (PyTorch DDP through ``accelerate``,
    started by ``torchrun``) and the progress display. No model-store key and no notebook hash
    holds this section.

    With ``processes`` above 1, every training step (stage 1, each arm, each learning-curve point)
    that the model store lacks runs in a group of ``processes`` launched processes, each with its
    own shard of the training inputs; rank 0 alone writes the model into the store, and the
    calling process (a notebook, the CLI) loads it from there. The global batch is kept: each rank
    takes ``batch_size / processes``. One process trains in the calling process, as always.
    """

    processes: int = _f(1, range=Range(1, 1024))  # ranks of the launched group (1: train in this process)
    backend: str = _f("auto", choices=CHOICES["dist_backend"])  # auto: nccl on CUDA, gloo on CPU
    progress_bar: bool = True  # fastai's bar while training in an interactive Jupyter kernel (`semcathode run` writes false into its run's config: the bar's HTML would fill the streamed log)


@dataclass
class ValidityConfig:
    """Shortcut, robustness and learning-curve studies."""

    robustness_kinds: list[str] = _f(factory=lambda: list(CHOICES["shift_kind"]), items=CHOICES["shift_kind"])
    robustness_severities: list[float] = _f(factory=lambda: [0.0, 0.5, 1.0], items=GE0)
    robustness_arms: list[str] = _f(factory=lambda: ["pre_ft_oversample", "ft_only", "pretrain_only"],
                                    items=CHOICES["arm"])
    learning_curve_sizes: list[int] = _f(factory=lambda: [1, 2, 5, 10, 20], items=GE1)
    learning_curve_arms: list[str] = _f(factory=lambda: ["pre_ft_oversample", "ft_only", "scratch_ft"],
                                        items=CHOICES["arm"])
    learning_curve_seeds: list[int] = _f(factory=lambda: [0, 1], items=GE0)
    ablation_seeds: list[int] = _f(factory=lambda: [0, 1], items=GE0)  # normalisation ablation
    new_domain: bool = True
    new_domain_sizes: list[int] = _f(factory=lambda: [2, 5, 10], items=GE1)


@dataclass
class RunConfig:
    """The whole run: every notebook receives this one configuration.

    Load it with :func:`semcathode.load_config` (profile YAML <- file <- overrides, every value
    range-checked); the sections are plain dataclasses.

    Examples
    --------
    >>> import semcathode as sc
    >>> cfg = sc.load_config("demo", overrides={"stage1.epochs": 10})
    >>> cfg.profile, cfg.stage1.epochs, cfg.preprocess.scale_um, cfg.preprocess.size
    ('demo', 10, 0.2625, 224)"""

    profile: str = _f("smoke", choices=PROFILES + (CUSTOM_PROFILE,))
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    stage1: StageConfig = field(default_factory=StageConfig)
    stage2: StageConfig = field(default_factory=StageConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    cam: CamConfig = field(default_factory=CamConfig)
    morphology: MorphologyConfig = field(default_factory=MorphologyConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    validity: ValidityConfig = field(default_factory=ValidityConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON serialisable).

        Returns
        -------
        dict
            Section name -> field name -> value.
        """
        return dataclasses.asdict(self)

    def hash(self, *sections: str) -> str:
        """Short hash of the named sections (all when none are given); see :func:`config_hash`.

        Parameters
        ----------
        *sections : str
            Top-level section names.

        Returns
        -------
        str
            12 hex digits.
        """
        return config_hash(self, *sections)


def config_hash(cfg: RunConfig, *sections: str) -> str:
    """Stable 12-hex-digit hash of the configuration (or of some sections).

    Parameters
    ----------
    cfg : RunConfig
        The configuration.
    *sections : str
        Top-level section names (``"data"``, ``"stage1"``...) or single keys of one (``"cam.arms"``).
        None = everything.

    Returns
    -------
    str
        The first 12 hex digits of the SHA-256 of the sections as sorted JSON.

    Raises
    ------
    ConfigError
        A name that is not a section.

    Examples
    --------
    >>> a, b = RunConfig(), RunConfig()
    >>> b.stage1.epochs += 1
    >>> config_hash(a, "data") == config_hash(b, "data"), config_hash(a) == config_hash(b)
    (True, False)
    >>> config_hash(a, "stage1.lr") == config_hash(b, "stage1.lr"), config_hash(a, "stage1.epochs") == config_hash(b, "stage1.epochs")
    (True, False)
    """
    d = cfg.to_dict()
    if sections:
        def known(name: str) -> bool:
            head, _, key = name.partition(".")
            return head in d and (not key or (isinstance(d[head], dict) and key in d[head]))

        missing = [s for s in sections if not known(s)]
        if missing:
            raise ConfigError(f"unknown config section(s) or key(s): {', '.join(missing)}")
        d = {s: (d[s] if "." not in s else d[s.partition(".")[0]][s.partition(".")[2]]) for s in sections}
    blob = json.dumps(d, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
