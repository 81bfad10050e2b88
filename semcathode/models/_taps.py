"""Pooled activations of named layers, read during a forward pass (for multi-layer familiarity)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

FINAL = "final"  # the pooled pre-logit features (what the classifier reads)


class LayerTap:
    """Forward hooks that keep the spatial mean of named submodules' outputs.

    Use as a context manager around forward passes; ``pooled`` then maps each layer to the list of
    ``(N, C)`` batches seen, in order. :data:`FINAL` is not a submodule: callers add it from the
    forward's own pre-logits.

    Parameters
    ----------
    model : nn.Module
        The network whose submodules are tapped (names as in ``model.named_modules()``).
    layers : sequence of str
        Submodule names (``blocks.4``) and possibly :data:`FINAL` (ignored here).
    modules : dict of str to nn.Module, optional
        The modules to tap under the names to report (instead of resolving ``layers`` in ``model``).
    """

    def __init__(self, model: nn.Module | None, layers: Sequence[str] = (),
                 modules: dict[str, nn.Module] | None = None) -> None:
        if modules is None:
            names = dict(model.named_modules()) if model is not None else {}
            missing = [name for name in layers if name != FINAL and name not in names]
            if missing:
                raise ValueError(f"familiarity layer(s) {', '.join(missing)} are not modules of the network "
                                 f"(e.g. blocks.4, blocks.5 or {FINAL})")
            modules = {name: names[name] for name in layers if name != FINAL}
        self.modules = dict(modules)
        self.pooled: dict[str, list[torch.Tensor]] = {name: [] for name in self.modules}
        self._handles: list = []

    def __enter__(self) -> "LayerTap":
        for name, module in self.modules.items():
            self._handles.append(module.register_forward_hook(
                lambda _m, _i, out, name=name: self.pooled[name].append(out.detach().float().mean(dim=(2, 3)))))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
