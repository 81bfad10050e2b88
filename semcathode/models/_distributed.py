"""A fastai Learner inside a launched DDP group: one shard of the training inputs per rank.

:func:`rank_ctx` adapts a Learner for the duration of a fit when this process is one rank of an
initialised ``torch.distributed`` group (started by ``torchrun``; see
:mod:`semcathode.study._launch`), and does nothing otherwise, so one process trains exactly
as before. It uses fastai's :class:`~fastai.distributed.DistributedTrainer` (which wraps the model
in ``DistributedDataParallel`` through ``accelerate``) with a data loader that also works on the
gloo backend (fastai's broadcasts its shuffled order through a CUDA tensor) and that, for training,
drops the remainder instead of repeating inputs, so the ranks' shards are disjoint.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import torch
import torch.distributed as dist
from fastai.callback.core import Callback
from fastai.distributed import DistributedDL, DistributedTrainer
from fastai.learner import Learner

__all__ = ["world", "rank_ctx", "RankRecord"]


def world() -> tuple[int, int]:
    """``(rank, world size)`` of this process: ``(0, 1)`` outside an initialised group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _RankDL(DistributedDL):
    """:class:`~fastai.distributed.DistributedDL` that broadcasts on any backend and, for a training
    loader (``drop_last``), gives every rank an equal, disjoint slice of one shuffled order."""

    record: "RankRecord | None" = None

    def _broadcast(self, t, rank):
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        t = torch.as_tensor(t, dtype=torch.long, device=device)
        dist.broadcast(t, rank)
        return t.cpu().tolist()

    def get_idxs(self):
        if not self.drop_last:  # evaluation: fastai pads to a multiple of the world and unpads the gathered outputs
            return super().get_idxs()
        idxs = self._broadcast(list(self.dl.get_idxs()), 0)  # rank 0's order on every rank
        n = len(idxs) // self.world_size * self.world_size
        self.n = self.n_padded = n
        mine = idxs[self.rank * n // self.world_size:(self.rank + 1) * n // self.world_size]
        if self.record is not None:
            self.record.shard(mine)
        return mine


class RankRecord(Callback):
    """What one rank did during a fit: the training inputs of each epoch (as a count and a digest of
    the sorted indices) and its per-batch training losses.

    Attributes
    ----------
    epochs : list of list of int
        The dataset indices this rank trained on, per epoch (kept for the launcher's overlap check).
    losses : list of float
        Training loss of every batch, in order.
    """

    order = 60

    def __init__(self) -> None:
        self.epochs: list[list[int]] = []
        self.losses: list[float] = []

    def shard(self, idxs: list[int]) -> None:
        self.epochs.append([int(i) for i in idxs])

    def after_batch(self) -> None:
        if self.training:
            self.losses.append(float(self.learn.loss.detach()))

    def summary(self) -> dict:
        """Counts, digests and losses in plain JSON types."""
        k = max(1, len(self.losses) // 4)
        return {"inputs_per_epoch": [len(e) for e in self.epochs],
                "sha256_per_epoch": [hashlib.sha256(",".join(map(str, sorted(e))).encode()).hexdigest()[:16]
                                     for e in self.epochs],
                "loss_first_quarter": float(sum(self.losses[:k]) / k) if self.losses else None,
                "loss_last_quarter": float(sum(self.losses[-k:]) / k) if self.losses else None,
                "batches": len(self.losses)}


class _RankTrainer(DistributedTrainer):
    """fastai's DDP callback with :class:`_RankDL` loaders that report to ``record``."""

    def __init__(self, record: RankRecord, **kwargs) -> None:
        super().__init__(sync_bn=False, **kwargs)  # SyncBatchNorm needs CUDA; each rank keeps its own statistics
        self.record = record

    def _wrap_dl(self, dl):
        if isinstance(dl, DistributedDL):
            return dl
        wrapped = _RankDL(dl, device=self.learn.model.device if hasattr(self.learn.model, "device") else None)
        wrapped.record = self.record if getattr(dl, "drop_last", False) else None
        return wrapped


@contextlib.contextmanager
def rank_ctx(learn: Learner, record: RankRecord | None = None) -> Iterator[Learner]:
    """Train ``learn`` as one rank of the initialised process group (a no-op outside one).

    Parameters
    ----------
    learn : Learner
    record : RankRecord, optional
        Collects this rank's shards and losses.

    Yields
    ------
    Learner
        ``learn``, with fastai's DDP callback attached while inside a group of more than one rank.
    """
    rank, size = world()
    if size <= 1:
        yield learn
        return
    cuda = dist.get_backend() == "nccl"
    trainer = _RankTrainer(record if record is not None else RankRecord(), cpu=not cuda)
    cbs = [trainer] + ([record] if record is not None else [])
    learn.add_cbs(cbs)
    try:
        yield learn
    finally:
        learn.remove_cbs(cbs)
