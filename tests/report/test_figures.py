import numpy as np
import pandas as pd

from semcathode.report._figures import plot_bars, plot_confusion, plot_confusions, plot_curves, plot_history


def test_figures_build():
    classes = ["a", "b"]
    fig = plot_confusion(np.array([[3, 1], [0, 4]]), classes)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "0.75" in texts and "1.00" in texts  # row-normalised
    preds = pd.DataFrame({"label": ["a", "b", "a"], "pred": ["a", "b", "b"], "arm": ["x", "x", "y"]})
    assert len(plot_confusions(preds, classes).axes) >= 2
    df = pd.DataFrame({"n": [1, 2, 1, 2], "f1": [0.2, 0.4, 0.3, 0.5], "arm": ["p", "p", "q", "q"]})
    assert plot_curves(df, x="n", y="f1", hue="arm") is not None
    assert plot_bars(df, x="arm", y="f1") is not None
    hist = pd.DataFrame({"seed": [0, 0], "step": [0, 1], "train_loss": [2.0, 1.0], "valid_loss": [2.1, 1.2],
                         "macro_f1": [0.2, 0.5]})
    assert len(plot_history(hist).axes) == 2
