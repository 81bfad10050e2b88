"""A run folder with one notebook's outputs (a figure, a table, a text), shared by the report tests."""

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from semcathode.report._outputs import NotebookOutputs


@pytest.fixture
def one_notebook_run(tmp_path):
    """``tmp_path`` after notebook ``01_data`` saved a line plot, table ``t`` and a text."""
    out = NotebookOutputs(tmp_path, "01_data")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    out.figure(fig, "line", "A line", section="Dataset summary")
    out.table(pd.DataFrame({"a": [1, 2], "b": [0.5, 0.25]}), "t", "A table", section="Dataset summary")
    out.text("Dataset summary", "Some **words**.")
    out.save({"n": 2})
    return tmp_path
