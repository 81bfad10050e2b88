"""Tests for semcathode.data._duplicates: exact and near-duplicate pairs, pairs crossing splits."""

import shutil

import numpy as np
import pytest
from PIL import Image

from semcathode.data._duplicates import DuplicateWarning, check_duplicates, find_duplicates
from semcathode.data._manifest import index_folder


def test_duplicates_exact_and_near(tree):
    src = next((tree / "NCM333_cycled").glob("*.png"))
    shutil.copy(src, tree / "NCM333_cycled" / "copy_9999.png")
    im = np.asarray(Image.open(src)).astype(np.int16)
    Image.fromarray(np.clip(im + 3, 0, 255).astype(np.uint8)).save(tree / "NCM333_cycled" / "bright_9998.png")
    df = index_folder(tree)
    dups = find_duplicates(df)
    names = lambda k: {tuple(sorted((a.split("/")[-1], b.split("/")[-1]))) for a, b in dups[dups.kind == k][["path_a", "path_b"]].to_numpy()}
    assert (src.name, "copy_9999.png") in {tuple(sorted(p, key=lambda n: n != src.name)) for p in names("exact")} or \
        tuple(sorted((src.name, "copy_9999.png"))) in names("exact")
    assert any("bright_9998.png" in " ".join(p) for p in names("near"))
    df["split"] = "train"
    df.loc[df["path"].str.endswith("copy_9999.png"), "split"] = "test"
    with pytest.warns(DuplicateWarning, match="crosses split"):
        msgs = check_duplicates(df, dups)
    assert any("copy_9999.png" in m for m in msgs)
