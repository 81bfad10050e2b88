"""Export a trained model as safetensors + JSON; load it back; predict on files.

No pickles: the weights are a safetensors file, everything else (classes, schema, backbone,
pre-processing, normalisation, metrics, configuration hash) is plain JSON beside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._files import atomic_save, atomic_write_json
from ._modelcheck import FORMAT, OOD_BANK, OOD_BANKS, ModelFileError, classes_digest, validate_model_meta
from ..io._walk import find_images
from ..data._preprocess import PreprocessParams, preprocess_image
from ..data._tiles import cut_tiles, tile_grid
from ._rows import PREDICTION_COLUMNS, familiarity_request, micrograph_rows
from ._forward import fold_batchnorm, normalise_batch, predict_arrays, predict_probs
from ._head import head_layer_of, linear_head

if TYPE_CHECKING:
    from ._trunk import TrunkSpec

__all__ = [
    "arm_model_file", "ModelFileError", "ExportedModel", "export_model", "fold_batchnorm", "load_model", "predict_paths",
    "FORMAT"]


def _json_path(path: Path) -> Path:
    return path.with_suffix(".json")


def export_model(
    model: nn.Module,
    path: str | Path,
    classes: Sequence[str],
    backbone: str,
    timm_name: str,
    preprocess: PreprocessParams,
    normalize: str,
    mean: Sequence[float],
    std: Sequence[float],
    weights_info: dict | None = None,
    metrics: dict | None = None,
    config_hash: str = "",
    bar_method: str = "auto",
    bar_fraction: float = 0.0667,
    extra: dict | None = None,
    aggregate: str = "mean_log_prob",
    trust: dict | None = None,
) -> Path:
    """Write ``<path>`` (safetensors weights) and ``<path>.json`` (everything else), atomically:
    :meth:`ExportedModel.describe` then :meth:`ExportedModel.save`.

    Parameters
    ----------
    preprocess : PreprocessParams
        Recorded whole: the physical scale (µm/px) and crop every input is brought to.
    aggregate : str
        How tiles are aggregated per micrograph.
    trust : dict, optional
        From :func:`semcathode.study._trust.calibrate`: ``temperature``, ``ood_k``,
        ``ood_threshold`` and ``bank`` (the training micrographs' embeddings, stored in
        the safetensors file as ``ood.bank``), or, for a multi-layer score, ``banks`` (one per
        layer, stored as ``ood.bank.<layer>``), ``layers`` and ``scales``.

    Returns
    -------
    Path
        The safetensors path.
    """
    return ExportedModel.describe(model, classes, backbone, timm_name, preprocess, normalize, mean, std,
                                  weights_info=weights_info, metrics=metrics, config_hash=config_hash,
                                  bar_method=bar_method, bar_fraction=bar_fraction, extra=extra, aggregate=aggregate,
                                  trust=trust).save(path)


@dataclass
class ExportedModel:
    """The model object: the network (eval mode), its ``classes`` and, in ``meta``, everything
    needed to feed it and read its output (backbone and weights provenance; scale, tile, grid,
    normalisation and aggregation; temperature; the trunk boundary), with the familiarity
    banks beside it.

    Training gives one in memory (:meth:`semcathode.study.TrainedModel.to_model`, built by
    :meth:`describe`), :meth:`save` writes it, :func:`load_model` reads it back, and predict,
    Grad-CAM and the CAM measures take it.
    """

    model: nn.Module
    classes: list[str]
    meta: dict = field(default_factory=dict)
    path: Path | None = None
    #: ``model`` compiled by :meth:`optimize` (``compile=True``), else None.
    compiled: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)
    #: The training micrographs' embeddings of a single-layer familiarity score (``(n, d)``), else None.
    bank: np.ndarray | None = field(default=None, repr=False)
    #: One bank per layer of a multi-layer familiarity score, else None.
    banks: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def describe(cls, network: nn.Module, classes: Sequence[str], backbone: str, timm_name: str,
                 preprocess: PreprocessParams, normalize: str, mean: Sequence[float], std: Sequence[float],
                 weights_info: dict | None = None, metrics: dict | None = None, config_hash: str = "",
                 bar_method: str = "auto", bar_fraction: float = 0.0667, extra: dict | None = None,
                 aggregate: str = "mean_log_prob", trust: dict | None = None) -> "ExportedModel":
        """The model object of a network: its description as the model file's JSON has it.

        Parameters are those of :func:`export_model`; ``network`` is used as it is (not copied).

        Returns
        -------
        ExportedModel
            With ``path`` None until :meth:`save`.
        """
        trust = dict(trust or {})
        bank, banks = trust.pop("bank", None), trust.pop("banks", None) or {}
        trust.pop("layer_selection", None)  # reported by the study, not needed to score
        bank = np.asarray(bank, dtype=np.float32) if bank is not None else None
        banks = {k: np.asarray(v, dtype=np.float32) for k, v in banks.items()}
        rows = ([len(bank)] if bank is not None else []) + [len(b) for b in banks.values()]
        if rows and "ood_k" in trust:  # the neighbours actually used (knn_ood_score takes at most the bank's rows)
            trust["ood_k"] = max(1, min(int(trust["ood_k"]), min(rows)))
        meta = {
            "format": FORMAT,
            "classes": list(classes),
            "classes_digest": classes_digest(list(classes)),
            "backbone": backbone,
            "timm_name": timm_name,
            "num_classes": len(classes),
            "preprocess": {"mode": preprocess.mode, "size": preprocess.size, "scale_um": preprocess.scale_um,
                           "tile_stride": preprocess.tile_stride},
            "field_of_view_um": preprocess.field_of_view_um,
            "aggregate": aggregate,
            "temperature": float(trust.get("temperature", 1.0)),
            "ood": {k: trust[k] for k in ("ood_k", "ood_threshold", "ood_quantile", "layers", "scales") if k in trust},
            "normalize": normalize,
            "mean": list(map(float, mean)),
            "std": list(map(float, std)),
            "bar": {"method": bar_method, "fraction": bar_fraction},
            "weights": weights_info or {},
            "metrics": metrics or {},
            "config_hash": config_hash,
            **(extra or {}),
        }
        head = head_layer_of(network)
        if head is not None:  # a linear head on a block stage (models.linear_head): the loader rebuilds it
            meta["head"] = head
        return cls(model=network, classes=list(classes), meta=meta, bank=bank, banks=banks or None)

    def save(self, path: str | Path) -> Path:
        """Write the model file: ``<path>`` (safetensors: the weights and the familiarity banks) and
        ``<path>.json`` (:attr:`meta`), each atomically; :func:`load_model` reads it back.

        Parameters
        ----------
        path : str or Path
            The suffix becomes ``.safetensors``.

        Returns
        -------
        Path
            The safetensors path (also :attr:`path` from now on).
        """
        from safetensors.torch import save_file

        path = Path(path).with_suffix(".safetensors")
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        if self.bank is not None:
            state[OOD_BANK] = torch.as_tensor(np.asarray(self.bank, dtype=np.float32)).contiguous()
        for layer, b in (self.banks or {}).items():
            state[OOD_BANKS + layer] = torch.as_tensor(np.asarray(b, dtype=np.float32)).contiguous()
        atomic_save(path, lambda tmp: save_file(state, tmp, metadata={"format": FORMAT}))
        atomic_write_json(_json_path(path), self.meta)
        self.path = path
        return path

    @property
    def params(self) -> PreprocessParams:
        return PreprocessParams(**self.meta["preprocess"])

    @property
    def temperature(self) -> float:
        """Temperature fitted on the valid split (1.0 = uncalibrated)."""
        return float(self.meta.get("temperature", 1.0))

    @property
    def input_norm(self) -> tuple[str, list[float], list[float]]:
        """``(normalize, mean, std)`` of the network input (see :func:`~semcathode.models._forward.normalise_batch`)."""
        return self.meta.get("normalize", "dataset"), self.meta["mean"], self.meta["std"]

    def trunk_spec(self) -> "TrunkSpec | None":
        """The key of this model's frozen-trunk maps in a :class:`~semcathode.models._trunk.TrunkCache`.

        Returns
        -------
        TrunkSpec or None
            As training computed the maps (backbone, trunk depth and weights, tile grid, input
            statistics and ``trunk_dtype``); None when every layer was trained (``meta["trunk"]`` 0).
        """
        from ._trunk import TrunkSpec, split_network, trunk_digest

        depth = int(self.meta.get("trunk", 0))
        if not depth:
            return None
        normalize, mean, std = self.input_norm
        trunk, _ = split_network(self.model, depth)
        return TrunkSpec(backbone=self.meta["backbone"], depth=depth, digest=trunk_digest(trunk), size=self.params.size,
                         tile_stride=self.params.tile_stride, normalize=normalize, mean=tuple(mean), std=tuple(std),
                         dtype=self.meta.get("trunk_dtype", "float32"))

    def normalise(self, arr: np.ndarray) -> torch.Tensor:
        """:func:`~semcathode.models._forward.normalise_batch` with this model's settings.

        Parameters
        ----------
        arr : ndarray
            uint8 ``(H, W)`` or ``(T, H, W)`` network input.

        Returns
        -------
        Tensor
            Normalised float ``(N, 3, H, W)``.
        """
        return normalise_batch(arr, *self.input_norm)

    def load_array(self, path: str | Path, pixel_size_um: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Read a micrograph, remove its data bar and bring it to the model's scale.

        Parameters
        ----------
        path : str or Path
        pixel_size_um : float, optional
            Used when the file carries no pixel size (and only then).

        Returns
        -------
        grey : ndarray
            The bar-free micrograph at its own resolution (float [0, 1]).
        arr : ndarray
            uint8 frame at the model's ``scale_um`` (the input to the tile grid).

        Raises
        ------
        ValueError
            The model needs a physical scale and neither the file nor ``pixel_size_um`` gives one;
            or bringing the frame to the model's scale would exceed a limit (upsampling, pixels,
            tiles: :func:`~semcathode.data._preprocess.preprocess_image` checks them), checked before resampling.
        """
        from ..io._databar import crop_data_bar
        from ..io._read import read_sem

        sem = read_sem(path)
        bar = self.meta.get("bar", {})
        img, _ = crop_data_bar(sem.image, sem.meta, method=bar.get("method", "auto"), fraction=bar.get("fraction", 0.0667))
        px = sem.meta.pixel_size_um
        if px is None or not np.isfinite(px) or px <= 0:
            px = pixel_size_um
        return img, preprocess_image(img, self.params, px, name=str(path))

    def preprocess_path(self, path: str | Path, pixel_size_um: float | None = None) -> tuple[np.ndarray, torch.Tensor]:
        """Read a micrograph, remove its data bar, pre-process: (bar-free grey image, input tiles (T, 3, S, S))."""
        img, arr = self.load_array(path, pixel_size_um)
        tiles, _ = cut_tiles(arr, self.params.size, self.params.tile_stride)
        return img, self.normalise(tiles)

    def tile_positions(self, grey_shape: tuple[int, int], arr_shape: tuple[int, int]) -> list[tuple[int, int]]:
        """Corners of the tile grid in the scaled frame (see :func:`~semcathode.data._tiles.tile_grid`)."""
        return tile_grid(arr_shape, self.params.size, self.params.tile_stride)

    def predict_arrays(self, arrays: Sequence[np.ndarray], features: bool = False, layers: Sequence[str] = ()):
        """:func:`semcathode.models._forward.predict_arrays` with this model's settings."""
        return predict_arrays(self.model, arrays, self.params.size, *self.input_norm, stride=self.params.tile_stride,
                              aggregate=self.meta.get("aggregate", "mean_log_prob"), features=features,
                              layers=layers)

    def optimize(self, compile: bool = False) -> "ExportedModel":
        """Fold BatchNorm into the preceding convolutions and use channels_last (CPU inference).

        Probabilities change by ~1e-6 (float rounding); returns ``self``.

        Parameters
        ----------
        compile : bool
            Also compile the network (``torch.compile``, static shapes) into :attr:`compiled`, which
            archive predict uses for batches that need no layer taps. It pays on a GPU over many
            batches (``benchmarks/gpu_check.sh`` measures it); the first batch waits for the compiler.
        """
        fold_batchnorm(self.model)
        self.model.to(memory_format=torch.channels_last)
        if compile:
            self.compiled = torch.compile(self.model, dynamic=False)
        return self

    def optimized(self) -> "ExportedModel":
        """A copy of this model with :meth:`optimize` applied; this one is left as it is.

        For the forward-only passes of a caller that also hooks this model's own modules (a CAM):
        the copy's BatchNorm is folded into its convolutions, so its layers are not this model's.

        Returns
        -------
        ExportedModel
        """
        import copy
        import dataclasses

        return dataclasses.replace(self, model=copy.deepcopy(self.model), compiled=None).optimize()

    @torch.no_grad()
    def predict_tensor(self, x: torch.Tensor, bs: int | None = None) -> np.ndarray:
        """Softmax probabilities (N, n_classes) for normalised inputs (:func:`~semcathode.models._forward.predict_probs`)."""
        return predict_probs(self.model, x, bs).numpy()


def load_model(path: str | Path, device: str | torch.device = "cpu") -> ExportedModel:
    """Load a model written by :func:`export_model`.

    Parameters
    ----------
    path : str or Path
        The ``.safetensors`` file (its ``.json`` must be beside it).
    device : str or torch.device

    Returns
    -------
    ExportedModel
        In eval mode, with ``bank`` (the training micrographs' embeddings, or None).

    Raises
    ------
    ModelFileError
        Missing or corrupt weights, missing or invalid JSON, a JSON field out of its range
        or weights (feature bank included) that do not match the JSON: every field the
        loader and the predictor read is checked here
        (:func:`~semcathode.models._modelcheck.validate_model_meta`), naming the file and the field.

    Examples
    --------
    >>> import tempfile
    >>> import semcathode as sc
    >>> tmp = tempfile.mkdtemp()
    >>> _, study = sc.data.example_study(tmp)
    >>> s1 = sc.train_stage1(study, 0, log=None)  # doctest: +ELLIPSIS
    [stage 1 seed 0, ...
    >>> model = sc.load_model(sc.study.export_trained(s1, f"{tmp}/model.safetensors", study.classes))
    >>> len(model.classes), model.meta["preprocess"]["size"]
    (9, 64)
    """
    import timm
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    jp = _json_path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model weights not found")
    if not jp.is_file():
        raise ModelFileError(f"{jp}: model description (JSON) not found beside the weights")
    try:
        meta = json.loads(jp.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, integer too long, nesting
        raise ModelFileError(f"{jp}: not valid JSON ({str(exc).splitlines()[0][:200] or type(exc).__name__})") from None
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise ModelFileError(f"{path}: corrupt or unreadable safetensors file ({exc})") from None
    bank = state.pop(OOD_BANK, None)
    banks = {k[len(OOD_BANKS):]: state.pop(k) for k in [k for k in state if k.startswith(OOD_BANKS)]}
    validate_model_meta(meta, state, jp, bank=bank, banks=banks)
    model = timm.create_model(meta["timm_name"], pretrained=False, num_classes=len(meta["classes"]))
    if meta.get("head") is not None:
        linear_head(model, meta["head"])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelFileError(
            f"{path}: weights do not match {jp.name} (backbone {meta['timm_name']}, "
            f"{len(meta['classes'])} classes): {first}"
        ) from None
    model.to(device).eval()
    return ExportedModel(model=model, classes=list(meta["classes"]), meta=meta, path=path,
                         bank=bank.numpy() if bank is not None else None,
                         banks={k: v.float().numpy() for k, v in banks.items()} or None)


def _predict_file(model: ExportedModel, f: Path, pixel_size_um: float | None) -> dict[str, Any]:
    """One micrograph's row of :func:`predict_paths` (raises when it cannot be read or predicted)."""
    _, arr = model.load_array(f, pixel_size_um)
    return micrograph_rows(model, model.predict_arrays([arr], **familiarity_request(model)))[0]


def predict_paths(model: ExportedModel, inputs: Sequence[str | Path], pixel_size_um: float | None = None) -> pd.DataFrame:
    """Predict whole micrographs (folders are expanded): one row per micrograph.

    Every file is brought to the model's physical scale, covered with the tile grid and its
    tiles' log-probabilities are averaged; probabilities are temperature-scaled when the
    model was calibrated. A file that cannot be read, or has no pixel size when the model
    needs one (and ``pixel_size_um`` is not given), gets an ``error`` and no prediction:
    the other files are not affected.

    Parameters
    ----------
    model : ExportedModel
    inputs : sequence of str or Path
        Files and folders.
    pixel_size_um : float, optional
        µm/px for files that carry none.

    Returns
    -------
    DataFrame
        ``path, pred, confidence, n_tiles, tile_agreement, ood_score, familiar``, one
        ``p_<class>`` per class, and ``error``. ``ood_score`` (higher = less like the
        training micrographs) and ``familiar`` (score under the threshold chosen on the
        valid split) are empty when the model carries no feature bank.

    Examples
    --------
    >>> import tempfile
    >>> import semcathode as sc
    >>> tmp = tempfile.mkdtemp()
    >>> _, study = sc.data.example_study(tmp)
    >>> s1 = sc.train_stage1(study, 0, log=None)  # doctest: +ELLIPSIS
    [stage 1 seed 0, ...
    >>> model = sc.load_model(sc.study.export_trained(s1, f"{tmp}/model.safetensors", study.classes))
    >>> table = predict_paths(model, study.manifest["path"][:2].tolist() + [f"{tmp}/missing.png"])
    >>> len(table), int(table["pred"].isin(study.classes).sum()), table["error"].iloc[-1] != ""
    (3, 2, True)
    """
    from ..config._sections import ConfigError
    from ..io._read import SEMReadError

    rows: list[dict[str, Any]] = []
    for f in find_images(inputs, missing="keep"):
        row: dict[str, Any] = {"path": str(f)}
        try:
            row.update(_predict_file(model, f, pixel_size_um))
        except ConfigError:  # a bad limit setting ($SEMCATHODE_MAX_...) is one error for the run, not one per file
            raise
        except Exception as exc:  # noqa: BLE001 - one bad file never ends the batch; its reason is kept
            row["error"] = str(exc) if isinstance(exc, (SEMReadError, ValueError, OSError)) else f"{f}: {exc!r}"
        rows.append(row)
    cols = list(PREDICTION_COLUMNS) + [f"p_{c}" for c in model.classes] + ["error"]
    return pd.DataFrame(rows).reindex(columns=cols)


def arm_model_file(arm: str) -> str:
    """File name of an arm's exported model (what :func:`export_models` writes).

    Parameters
    ----------
    arm : str
        An arm name (see :data:`semcathode.study.ARMS`).

    Returns
    -------
    str
        ``model_<arm>.safetensors``.

    Examples
    --------
    >>> arm_model_file("ft_only")
    'model_ft_only.safetensors'
    """
    return f"model_{arm}.safetensors"


