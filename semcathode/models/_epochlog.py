"""One progress line per epoch, printed from inside the kernel (streamed by ``semcathode run``)."""

from __future__ import annotations

import re
import time

from fastai.callback.core import Callback

__all__ = ["EpochLog", "format_epoch_line"]


def _fmt_s(s: float) -> str:
    s = max(0.0, s)
    if s >= 3600:
        return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
    if s >= 60:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{s:.1f}s"


def format_epoch_line(label: str, epoch: int, n_epoch: int, train_loss: float | None,
                      metric_name: str | None, metric: float | None, sec_per_epoch: float,
                      eta_s: float) -> str:
    """The progress line of one finished epoch (``epoch`` counts from 1).

    ``label`` names the stage and the seed or arm, e.g. ``"stage1 seed=0"``.
    """
    parts = [f"[{label}] epoch {epoch}/{n_epoch}"]
    parts.append(f"train_loss {train_loss:.4f}" if train_loss is not None else "train_loss -")
    if metric_name is not None and metric is not None:
        parts.append(f"{metric_name} {metric:.4f}")
    parts += [f"{sec_per_epoch:.1f} s/epoch", f"ETA {_fmt_s(eta_s)}"]
    return " · ".join(parts)


class EpochLog(Callback):
    """Print one line per epoch: stage, seed or arm (from ``label``), epoch/total, train loss,
    the first validation metric (or the valid loss), seconds per epoch and ETA of this fit.

    Parameters
    ----------
    label : str
        Stage and seed or arm, e.g. ``"stage1 seed=0"`` or ``"stage2 arm=ft_only seed=1"``.
    validated : bool
        Whether the stage validates (``stage.validate``). Without validation fastai still
        scores a stand-in batch of training crops; that number is not shown.
    """

    order = 70  # after the Recorder (order 50) has written the epoch's values
    run_valid = False

    def __init__(self, label: str, validated: bool = True) -> None:
        self.label = label
        self.validated = validated
        self.lines: list[str] = []

    def before_fit(self) -> None:
        self._t_fit = time.time()
        self._t_epoch = self._t_fit

    def before_epoch(self) -> None:
        self._t_epoch = time.time()

    def after_epoch(self) -> None:
        now = time.time()
        epoch, n_epoch = self.learn.epoch + 1, self.learn.n_epoch
        per_epoch = (now - self._t_fit) / epoch
        train_loss, metric_name, metric = self._values()
        line = format_epoch_line(self.label, epoch, n_epoch, train_loss, metric_name, metric,
                                 now - self._t_epoch, per_epoch * (n_epoch - epoch))
        self.lines.append(line)
        print(line, flush=True)

    def _values(self) -> tuple[float | None, str | None, float | None]:
        rec = getattr(self.learn, "recorder", None)
        if rec is None or not getattr(rec, "values", None):
            smooth = getattr(getattr(self.learn, "smooth_loss", None), "item", None)
            return (float(smooth()) if smooth else None), None, None
        names = [n for n in rec.metric_names[1:] if n not in ("epoch", "time")]
        vals = list(rec.values[-1])
        row = dict(zip(names, vals))
        train = row.get("train_loss")
        if not self.validated:  # the "valid" numbers come from a stand-in batch of training crops
            return _num(train), None, None
        metrics = [n for n in names if n not in ("train_loss", "valid_loss")]
        for n in metrics + ["valid_loss"]:
            v = row.get(n)
            if v is not None and v == v:  # not NaN: validation ran
                return _num(train), re.sub(r"\s+", "_", n), _num(v)
        return _num(train), None, None


def _num(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None
