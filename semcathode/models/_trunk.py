"""The frozen trunk of a backbone, its trainable top, and the on-disk cache of trunk activations.

On a CPU the stem and early blocks of EfficientNet are most of every forward pass (about 85 % of
it at 224 px), yet with ``model.trunk`` blocks frozen their output for a given tile never
changes. :class:`TrunkCache` therefore runs the frozen part **once** per micrograph, tile and
view and keeps its output on disk (float16, memory-mapped), the sibling of
:class:`semcathode.data._preprocess.PreprocessCache`; training then runs only the :class:`Top` on those maps.

The split does not copy the network: :func:`split_network` returns two views that share the
network's own modules, so training the top trains the network, and the exported model is still
the whole network, which predicts and explains from pixels.

Cache keys (:meth:`TrunkSpec.key`, :meth:`TrunkCache.key`) hold everything that changes the
stored maps: the trunk's weights digest, the backbone, the trunk depth, the input normalisation,
the tile size and grid, the view and, through the pre-processing cache key of the micrograph, its
file hash, data bar, scale, pixel size and (for target images) the acquisition shift, which is
applied in pixel space before the trunk. Nothing else (epochs, report settings) is in a key.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._files import atomic_save
from ..data._preprocess import resize
from ..data._tiles import cut_tiles
from ._head import FeatureScale
from ._forward import forward_batch, normalise_batch

__all__ = ["TRUNK_VIEWS", "Trunk", "Top", "TrunkSpec", "TrunkCache", "resolve_trunk_dtype", "split_network", "trunk_digest",
           "view_of"]

#: Views of a micrograph whose trunk output can be cached: the pre-processed frame as it is, and
#: a half-resolution copy brought back to the same scale (downsampled 2x, then upsampled), which
#: has lost its finest detail the way a micrograph taken at half the magnification has.
TRUNK_VIEWS: tuple[str, ...] = ("full", "half")

_FORMAT = "semcathode-trunk-v2"  # v2: the pooled output of every trunk stage beside the maps


def _check_efficientnet(net: nn.Module) -> None:
    for name in ("conv_stem", "bn1", "blocks", "conv_head", "bn2", "classifier"):
        if not hasattr(net, name):
            raise ValueError(f"trunk split: the model has no '{name}' (not a timm EfficientNet)")


class Trunk(nn.Module):
    """The frozen part of a timm EfficientNet: stem and the first ``depth`` stages of blocks.

    Parameters
    ----------
    net : nn.Module
        A timm EfficientNet; its modules are shared, not copied.
    depth : int
        Number of block stages in the trunk (``0 .. len(net.blocks)``).
    """

    def __init__(self, net: nn.Module, depth: int) -> None:
        super().__init__()
        _check_efficientnet(net)
        if not 0 <= depth <= len(net.blocks):
            raise ValueError(f"trunk depth {depth} is outside 0..{len(net.blocks)} (the model's block stages)")
        self.depth = depth
        self.training = net.training
        self.stem = nn.Sequential(net.conv_stem, net.bn1)
        self.blocks = nn.Sequential(*list(net.blocks)[:depth])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised pixels ``(N, 3, H, W)`` -> the trunk's activation maps."""
        return self.blocks(self.stem(x))

    def forward_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:meth:`forward` plus the spatially pooled output ``(N, C_j)`` of every stage ``blocks.j`` on the way."""
        x = self.stem(x)
        pooled = {}
        for j, stage in enumerate(self.blocks):
            x = stage(x)
            pooled[f"blocks.{j}"] = x.float().mean(dim=(2, 3))
        return x, pooled


class Top(nn.Module):
    """The trainable part after a :class:`Trunk`: the remaining blocks, head convolution and classifier.

    Parameters
    ----------
    net : nn.Module
        The same timm EfficientNet as the trunk's (modules shared).
    depth : int
        The trunk depth where this part starts.
    """

    def __init__(self, net: nn.Module, depth: int) -> None:
        super().__init__()
        _check_efficientnet(net)
        self.depth = depth
        self.training = net.training
        self.blocks = nn.Sequential(*list(net.blocks)[depth:])
        self.conv_head, self.bn2 = net.conv_head, net.bn2
        self.global_pool, self.classifier = net.global_pool, net.classifier
        self.drop_rate = float(getattr(net, "drop_rate", 0.0))

    @property
    def pointwise(self) -> bool:
        """Every layer of the top acts per channel (no block, no head convolution: a linear head on the
        trunk's output), so pooling the maps first gives the same logits."""
        return (len(self.blocks) == 0 and isinstance(self.conv_head, nn.Identity)
                and isinstance(self.bn2, (nn.Identity, FeatureScale)))

    def features(self, maps: torch.Tensor) -> torch.Tensor:
        """Trunk maps -> the final feature maps (before pooling)."""
        return self.bn2(self.conv_head(self.blocks(maps)))

    def forward_pooled(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Trunk maps -> ``(logits, pooled pre-logit features)``."""
        pooled = self.global_pool(self.features(maps))  # as timm's forward_head, with this module's train flag
        x = nn.functional.dropout(pooled, p=self.drop_rate, training=self.training) if self.drop_rate > 0 else pooled
        return self.classifier(x), pooled

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """Trunk maps ``(N, C, h, w)`` -> logits ``(N, n_classes)``."""
        return self.forward_pooled(maps)[0]


def split_network(net: nn.Module, depth: int) -> tuple[Trunk, Top]:
    """The trunk and the top of a timm EfficientNet; ``top(trunk(x)) == net(x)``.

    Parameters
    ----------
    net : nn.Module
        A timm EfficientNet.
    depth : int
        Block stages in the frozen trunk (``model.trunk``; 5 = stem and blocks 0-4).

    Returns
    -------
    (Trunk, Top)
        Views sharing ``net``'s modules.

    Examples
    --------
    >>> import timm, torch
    >>> net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=3).eval()
    >>> trunk, top = split_network(net, 5)
    >>> x = torch.randn(2, 3, 64, 64)
    >>> tuple(trunk(x).shape), torch.allclose(top(trunk(x)), net(x), atol=1e-5)
    ((2, 112, 4, 4), True)
    """
    return Trunk(net, depth), Top(net, depth)


def trunk_digest(trunk: nn.Module) -> str:
    """sha256 (16 hex digits) of a trunk's parameters and buffers: what its output depends on.

    Parameters
    ----------
    trunk : nn.Module

    Returns
    -------
    str
    """
    h = hashlib.sha256()
    for name, t in sorted(trunk.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().float().numpy().tobytes() if t.is_floating_point()
                 else t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def resolve_trunk_dtype(dtype: str) -> str:
    """The precision the trunk cache is computed in on this machine.

    Parameters
    ----------
    dtype : str
        ``float32``, ``bfloat16`` or ``auto``: bfloat16 where the device the cache is computed on
        has native bfloat16 arithmetic (a CUDA GPU that supports it; a CPU with AMX or
        AVX-512 BF16, as oneDNN reports it), float32 elsewhere. Without native support, CPU
        autocast in bfloat16 is emulated and far slower than float32 (measured: 4 tiles/s
        against about 30 in float32 on a 2-core AVX2 machine).

    Returns
    -------
    str
        ``float32`` or ``bfloat16``.

    Examples
    --------
    >>> resolve_trunk_dtype("float32"), resolve_trunk_dtype("bfloat16")
    ('float32', 'bfloat16')
    >>> resolve_trunk_dtype("auto") in ("float32", "bfloat16")
    True
    """
    if dtype != "auto":
        return dtype
    return "bfloat16" if _native_bf16(_compute_device()) else "float32"


def _native_bf16(dev: torch.device) -> bool:
    """Whether ``dev`` computes in bfloat16 natively (not emulated)."""
    if dev.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@dataclass(frozen=True)
class TrunkSpec:
    """What a cached trunk map depends on, besides the micrograph itself.

    Attributes
    ----------
    backbone : str
        Registry name of the backbone.
    depth : int
        Trunk depth (block stages).
    digest : str
        :func:`trunk_digest` of the trunk's weights.
    size : int
        Tile side in pixels.
    tile_stride : float
        Tile-grid stride as a fraction of ``size``.
    normalize : str
        ``dataset`` or ``per_image``.
    mean, std : tuple of float
        The input statistics (``dataset``).
    dtype : str
        ``float32``, or ``bfloat16``: the trunk runs under CPU autocast in bfloat16 (2-3x faster on a CPU
        with AMX or AVX-512 BF16; the maps differ from float32 by about 1 % of their range).
    """

    backbone: str
    depth: int
    digest: str
    size: int
    tile_stride: float
    normalize: str = "dataset"
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    dtype: str = "float32"

    def key(self) -> str:
        """12 hex digits of the spec (sorted JSON)."""
        blob = json.dumps({**asdict(self), "format": _FORMAT}, sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def view_of(img: np.ndarray, view: str) -> np.ndarray:
    """A pre-processed micrograph (uint8) as one of :data:`TRUNK_VIEWS`.

    Parameters
    ----------
    img : ndarray
        uint8 ``(H, W)`` at the model's scale.
    view : str
        ``full`` (as it is) or ``half`` (downsampled 2x, then upsampled back to ``(H, W)``).

    Returns
    -------
    ndarray
        uint8 ``(H, W)``.

    Examples
    --------
    >>> import numpy as np
    >>> img = (np.indices((8, 8)).sum(0) % 2 * 255).astype(np.uint8)  # a 1-px checkerboard
    >>> bool(view_of(img, "half").std() < img.std() / 4)   # the finest detail is gone
    True
    """
    if view == "full":
        return img
    if view == "half":
        h, w = img.shape
        small = resize(img.astype(np.float32) / 255.0, (max(1, h // 2), max(1, w // 2)))
        back = resize(small, (h, w))
        return np.clip(np.rint(back * 255.0), 0, 255).astype(np.uint8)
    raise ValueError(f"unknown trunk view {view!r}; known: {', '.join(TRUNK_VIEWS)}")


class TrunkCache:
    """On-disk cache of trunk activations: one float16 ``(T, C, h, w)`` array per micrograph and view,
    and beside it (``.stages.npz``) the pooled output ``(T, C_j)`` of every trunk stage ``blocks.j``
    (what multi-layer familiarity reads of the layers inside the trunk).

    Parameters
    ----------
    root : str or Path
        Cache folder (the pipeline uses ``cache_root(cfg) / "trunk"``).
    train_tiles : int
        Tiles kept of each training micrograph (a row whose ``split`` is ``train``): a fixed subset,
        spread over the grid and drawn once per micrograph, so an epoch that samples a few tiles
        per micrograph does not pay the trunk for tiles it would rarely see. ``0``: every tile.
        Every other row keeps its whole grid (evaluation sees every tile).
    """

    def __init__(self, root: str | Path, train_tiles: int = 0) -> None:
        self.root = Path(root)
        self.train_tiles = int(train_tiles)

    def kept(self, item: pd.Series | dict) -> int:
        """How many tiles of ``item``'s grid the cache keeps (``0``: all)."""
        return self.train_tiles if str(item.get("split", "")) == "train" else 0

    def key(self, item: pd.Series | dict, spec: TrunkSpec, view: str) -> str:
        """Key of one micrograph's maps: its pre-processing cache entry, the spec and the view.

        The pre-processing entry (the stem of ``cache_path``) already holds the file hash, the data
        bar, the scale, the pixel size and the acquisition shift of a target image.

        Parameters
        ----------
        item : Series or dict
            A row of :func:`semcathode.data.build_items` (``cache_path``).
        spec : TrunkSpec
        view : str
            One of :data:`TRUNK_VIEWS`.

        Returns
        -------
        str
            32 hex digits.
        """
        if view not in TRUNK_VIEWS:
            raise ValueError(f"unknown trunk view {view!r}; known: {', '.join(TRUNK_VIEWS)}")
        pre = Path(str(item["cache_path"])).stem
        kept = self.kept(item)
        return hashlib.sha256(f"{pre}|{spec.key()}|{view}{f'|{kept}' if kept else ''}".encode()).hexdigest()[:32]

    def path(self, item: pd.Series | dict, spec: TrunkSpec, view: str) -> Path:
        """Where one micrograph's maps live (the file may not exist yet)."""
        k = self.key(item, spec, view)
        return self.root / spec.key() / k[:2] / f"{k}.npy"

    def load(self, item: pd.Series | dict, spec: TrunkSpec, view: str) -> np.ndarray:
        """The cached maps, memory-mapped (raises ``FileNotFoundError`` when not built)."""
        return np.load(self.path(item, spec, view), mmap_mode="r")

    @staticmethod
    def stages_path(maps_path: Path) -> Path:
        """Where the pooled stage outputs of a maps file live."""
        return maps_path.with_suffix(".stages.npz")

    def load_stages(self, item: pd.Series | dict, spec: TrunkSpec, view: str) -> dict[str, np.ndarray]:
        """The pooled output of every trunk stage, ``blocks.j`` -> float16 ``(T, C_j)``."""
        with np.load(self.stages_path(self.path(item, spec, view))) as z:
            return {k: z[k] for k in z.files}

    def tiles(self, item: pd.Series | dict, spec: TrunkSpec, view: str = "full") -> np.ndarray:
        """The uint8 tiles of a micrograph's view that the trunk sees, ``(T, size, size)`` (the kept subset
        of a training row, see ``train_tiles``)."""
        img = np.load(str(item["cache_path"]))
        tiles, _ = cut_tiles(view_of(img, view), spec.size, spec.tile_stride)
        kept = self.kept(item)
        if kept and kept < len(tiles):  # the same subset for every view and run: seeded by the micrograph
            seed = int(hashlib.sha256(Path(str(item["cache_path"])).stem.encode()).hexdigest()[:8], 16)
            tiles = tiles[np.sort(np.random.default_rng(seed).choice(len(tiles), kept, replace=False))]
        return tiles

    def build(self, items: pd.DataFrame, trunk: nn.Module, spec: TrunkSpec, views: Sequence[str] = ("full",),
              batch_size: int | None = None, log: Callable[[str], None] | None = print) -> dict[str, list[Path]]:
        """Compute every missing entry of ``items`` x ``views`` (each once), with a progress line and an ETA.

        Parameters
        ----------
        items : DataFrame
            Rows of :func:`semcathode.data.build_items`.
        trunk : nn.Module
            The frozen trunk whose :func:`trunk_digest` is ``spec.digest``.
        spec : TrunkSpec
        views : sequence of str
        batch_size : int, optional
            Tiles per forward pass (None: :func:`~semcathode.models._forward.forward_batch`'s default for
            the device, 4 on a CPU, where small batches keep the early maps in the cores' caches).
        log : callable, optional
            Receives progress lines (about every 10 % and at the end).

        Returns
        -------
        dict
            View -> the cache file of every row, in row order.
        """
        if trunk_digest(trunk) != spec.digest:
            raise ValueError("trunk cache: the trunk's weights do not match spec.digest")
        out = {v: [self.path(r, spec, v) for _, r in items.iterrows()] for v in views}
        todo = [(r, v, p) for v in views for (_, r), p in zip(items.iterrows(), out[v])
                if not (p.exists() and self.stages_path(p).exists())]
        if not todo:
            return out
        from ._forward import fold_batchnorm

        # a copy with every BatchNorm folded into its convolution (the network's own modules stay as they
        # are): in eval mode the same function, and on a CPU the unfused BatchNorm is a third of the time
        dev = _compute_device()
        fast = fold_batchnorm(copy.deepcopy(trunk).eval()).to(dev, memory_format=torch.channels_last)
        batch_size = forward_batch(dev, batch_size, spec.size)
        t0, done_tiles, next_report = time.time(), 0, 0.1
        for i, (row, view, path) in enumerate(todo, 1):
            maps, stages = self._forward(fast, self.tiles(row, spec, view), spec, batch_size)
            atomic_save(self.stages_path(path), lambda tmp, st=stages: _save_npz(tmp, st))
            atomic_save(path, lambda tmp, m=maps: _save_npy(tmp, m))  # last: its presence marks the entry done
            done_tiles += len(maps)
            if log and (i / len(todo) >= next_report or i == len(todo)):
                el = time.time() - t0
                eta = el / i * (len(todo) - i)
                log(f"trunk cache: {i}/{len(todo)} micrograph views, {done_tiles} tiles, "
                    f"{done_tiles / max(el, 1e-9):.0f} tiles/s, elapsed {el:.0f} s, ETA {eta:.0f} s")
                next_report += 0.1
        return out

    @staticmethod
    @torch.inference_mode()
    def _forward(trunk: nn.Module, tiles: np.ndarray, spec: TrunkSpec,
                 batch_size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        parts, pooled = [], {}
        dev = next(trunk.parameters()).device
        for s in range(0, len(tiles), batch_size):
            x = normalise_batch(tiles[s:s + batch_size], spec.normalize, spec.mean, spec.std)
            if dev.type == "cuda":
                x = x.pin_memory().to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=spec.dtype == "bfloat16"):
                xc = x.contiguous(memory_format=torch.channels_last)
                y, stages = trunk.forward_stages(xc) if hasattr(trunk, "forward_stages") else (trunk(xc), {})
            parts.append(y.to(torch.float16).contiguous().cpu().numpy())
            for name, p in stages.items():
                pooled.setdefault(name, []).append(p.to(torch.float16).cpu().numpy())
        return np.concatenate(parts), {k: np.concatenate(v) for k, v in pooled.items()}


def _compute_device() -> torch.device:
    """Where the trunk cache is computed: this process's GPU when there is one (a rank's own, in a
    launched group), else the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


def _save_npz(tmp: str, arrays: dict[str, np.ndarray]) -> None:
    with open(tmp, "wb") as fh:  # a file object: numpy adds no .npz to the temporary name
        np.savez(fh, **arrays)


def _save_npy(tmp: str, arr: np.ndarray) -> None:
    with open(tmp, "wb") as fh:
        np.save(fh, arr)
