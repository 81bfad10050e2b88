"""Familiarity from several layers and the layer set chosen on a selection split (issue 18)."""

from __future__ import annotations

import numpy as np

from semcathode.models._familiarity import layer_scales, multi_layer_score, select_layers
from semcathode.models._scores import auroc


def _layers(rng, n, centres, new=False):
    """Features at three layers: the nine classes are clusters at every layer; a new composition is
    a cluster of its own in the trunk layer (a texture no known class has), while the later layers,
    tuned to the classes, map it onto a known class."""
    cls = rng.integers(9, size=n)
    out = {}
    for layer, c in centres.items():
        idx = np.full(n, 9) if new and layer == "trunk" else cls
        out[layer] = c[idx] + rng.normal(scale=0.6, size=(n, c.shape[1]))
    return out


def test_select_layers_finds_the_layer_that_separates_a_new_composition_and_it_holds_elsewhere():
    rng = np.random.default_rng(0)
    centres = {layer: 2 * rng.normal(size=(10, 16)) for layer in ("trunk", "block5", "final")}
    bank = _layers(rng, 300, centres)
    pretail = _layers(rng, 60, centres)            # familiar micrographs of the selection split
    new_valid = _layers(rng, 30, centres, True)    # the new composition's valid split
    scales = layer_scales(bank, pretail)
    chosen, table = select_layers(bank, pretail, new_valid, scales)
    assert "trunk" in chosen, table
    assert len(table) == 7  # every non-empty subset of three layers
    by = dict(zip(table["layers"], table["auroc"]))
    assert by["final"] < 0.7 < 0.95 < by["trunk"]  # the class-tuned layer cannot tell, the trunk can
    # reported on other micrographs than it was chosen on: the choice holds there too
    tail, new_test = _layers(rng, 60, centres), _layers(rng, 30, centres, True)
    score_tail = multi_layer_score(bank, tail, chosen, scales)
    score_new = multi_layer_score(bank, new_test, chosen, scales)
    assert auroc(score_tail, score_new) > 0.95
    # each layer's score is on one scale: a familiar micrograph scores about one per layer
    assert abs(float(np.median(multi_layer_score(bank, tail, ("trunk", "final"), scales))) - 2.0) < 0.3
