"""Figures (matplotlib/seaborn) for the notebooks and the report."""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

__all__ = ["plot_examples", "plot_class_counts", "plot_confusion", "plot_confusions", "plot_curves", "plot_bars", "plot_history", "plot_domain_pair"]


def plot_examples(df: pd.DataFrame, per_class: int = 1, scale_bar_um: float = 50.0, apply_shift: bool = False):
    """One (or more) bar-cropped micrograph per class, with a scale bar from the pixel size.

    Parameters
    ----------
    df : pandas.DataFrame
        Manifest rows (``label``, ``path``, ``pixel_size_um``, ``domain``, ``session``...).
    per_class : int
        Micrographs shown per class.
    scale_bar_um : float
        Length of the scale bar in µm (drawn where the pixel size is known).
    apply_shift : bool
        Show each row with its acquisition shift applied.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..data._preprocess import load_bar_free

    labels = list(dict.fromkeys(df["label"]))
    ncol = min(len(labels), 4)
    nrow = int(np.ceil(len(labels) * per_class / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3.2 * nrow), squeeze=False)
    k = 0
    for label in labels:
        rows = df[df["label"] == label].head(per_class)
        for _, row in rows.iterrows():
            ax = axes.flat[k]
            img = load_bar_free(row, apply_shift=apply_shift)
            ax.imshow(img, cmap="gray", vmin=0, vmax=1)
            px = row.get("pixel_size_um")
            if px and px == px:
                length = scale_bar_um / px
                h, w = img.shape
                ax.plot([w * 0.05, w * 0.05 + length], [h * 0.92] * 2, color="yellow", lw=3)
                ax.text(w * 0.05, h * 0.88, f"{scale_bar_um:g} µm", color="yellow", fontsize=9)
            ax.set_title(f"{label}\n{row.get('domain', '')} · {str(row.get('session', ''))[:24]}", fontsize=9)
            ax.axis("off")
            k += 1
    for ax in axes.flat[k:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_class_counts(df: pd.DataFrame, hue: str = "split"):
    """Images per class, coloured by ``hue`` (split or domain).

    Parameters
    ----------
    df : pandas.DataFrame
        Manifest rows with ``label``.
    hue : str
        Column that colours the bars (ignored when absent).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(9, 3.5))
    order = list(dict.fromkeys(df["label"]))
    sns.countplot(data=df, y="label", hue=hue if hue in df.columns else None, order=order, ax=ax)
    ax.set_xlabel("images")
    ax.set_ylabel("")
    fig.tight_layout()
    return fig


def plot_confusion(cm: np.ndarray, classes: Sequence[str], title: str = "", normalize: bool = True, ax=None):
    """A confusion matrix heatmap (row-normalised by default).

    Parameters
    ----------
    cm : numpy.ndarray
        Counts, true classes in rows.
    classes : sequence of str
        Class names in the matrix's order.
    title : str
        Panel title.
    normalize : bool
        Show row fractions instead of counts.
    ax : matplotlib.axes.Axes, optional
        Draw into this panel (default: a new figure).

    Returns
    -------
    matplotlib.figure.Figure or matplotlib.axes.Axes
        The new figure, or ``ax`` when one was given.
    """
    import seaborn as sns

    cm = np.asarray(cm, dtype=float)
    data = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(5.5, 4.8))
    short = [c.replace("NCM", "").replace("_", " ") for c in classes]
    sns.heatmap(data, annot=True, fmt=".2f" if normalize else ".0f", cmap="Blues", vmin=0,
                vmax=1 if normalize else None, xticklabels=short, yticklabels=short, cbar=False, ax=ax,
                annot_kws={"fontsize": 7})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    if own:
        ax.figure.tight_layout()
        return ax.figure
    return ax


def plot_curves(df: pd.DataFrame, x: str, y: str, hue: str, col: str | None = None, title: str = "",
                logx: bool = False, chance: float | None = None):
    """Mean and 95% interval over seeds of ``y`` against ``x`` per ``hue`` (one panel per ``col``).

    Parameters
    ----------
    df : pandas.DataFrame
        Long table, one row per point and seed.
    x, y, hue : str
        Columns of the axes and of the line colour.
    col : str, optional
        Column giving one panel per value.
    title : str
        Figure title.
    logx : bool
        Symmetric-log x axis (for sizes such as images per class).
    chance : float, optional
        Level of a dotted chance line.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import seaborn as sns

    g = sns.relplot(data=df, x=x, y=y, hue=hue, col=col, kind="line", marker="o", errorbar=("ci", 95),
                    height=3.2, aspect=1.2, col_wrap=min(3, df[col].nunique()) if col else None,
                    facet_kws={"sharey": True})
    for ax in g.axes.flat:
        if logx:
            ax.set_xscale("symlog", linthresh=1)
        if chance is not None:
            ax.axhline(chance, ls=":", color="grey", lw=1)
    if title:
        g.figure.suptitle(title, y=1.03)
    return g.figure


def plot_bars(df: pd.DataFrame, x: str, y: str, hue: str | None = None, title: str = "", chance: float | None = None):
    """Bar chart of ``y`` per ``x`` (mean and 95% interval over rows).

    Parameters
    ----------
    df : pandas.DataFrame
        Long table, e.g. one row per arm and seed.
    x, y : str
        Columns of the bars and their height.
    hue : str, optional
        Column splitting each bar.
    title : str
        Panel title.
    chance : float, optional
        Level of a dotted chance line.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(8, 3.5))
    sns.barplot(data=df, x=x, y=y, hue=hue, errorbar=("ci", 95), ax=ax)
    if chance is not None:
        ax.axhline(chance, ls=":", color="grey", lw=1, label="chance")
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    return fig


def plot_history(hist: pd.DataFrame):
    """Training curves (loss and valid macro-F1 per epoch) for every seed.

    Parameters
    ----------
    hist : pandas.DataFrame
        Per-epoch history with ``seed``, ``step``, ``train_loss`` and optionally ``valid_loss``
        and ``macro_f1``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for seed, h in hist.groupby("seed"):
        axes[0].plot(h["step"], h["train_loss"], "-", label=f"train seed {seed}")
        if "valid_loss" in h:
            axes[0].plot(h["step"], h["valid_loss"], "--", label=f"valid seed {seed}")
        if "macro_f1" in h:
            axes[1].plot(h["step"], h["macro_f1"], "-o", ms=3, label=f"seed {seed}")
    axes[0].set_xlabel("epoch (head-only epochs first)")
    axes[0].set_ylabel("cross-entropy")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("valid macro-F1")
    axes[1].set_ylim(0, 1.02)
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_confusions(preds: pd.DataFrame, classes: Sequence[str], by: str = "arm", normalize: bool = True):
    """Row-normalised confusion matrices (summed over seeds), one panel per ``by`` value.

    Parameters
    ----------
    preds : pandas.DataFrame
        One row per prediction with ``label``, ``pred`` and the ``by`` column.
    classes : sequence of str
        Class names in matrix order.
    by : str
        Column giving one panel per value (e.g. ``arm``).
    normalize : bool
        Show row fractions instead of counts.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from sklearn.metrics import confusion_matrix

    keys = list(dict.fromkeys(preds[by]))
    ncol = min(3, len(keys))
    nrow = int(np.ceil(len(keys) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 4.6 * nrow), squeeze=False)
    for ax, k in zip(axes.flat, keys):
        sub = preds[preds[by] == k]
        cm = confusion_matrix(sub["label"], sub["pred"], labels=list(classes))
        plot_confusion(cm, classes, title=f"{k} (n={len(sub)})", normalize=normalize, ax=ax)
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_domain_pair(df: pd.DataFrame, n: int = 3):
    """The same classes in the source and in the (simulated) target domain, side by side.

    Parameters
    ----------
    df : pandas.DataFrame
        Manifest rows with ``domain`` and ``label``.
    n : int
        Classes shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..data._preprocess import load_bar_free

    src = df[df["domain"] == "source"].drop_duplicates("label").head(n)
    tgt = df[df["domain"] == "target"].drop_duplicates("label").head(n)
    fig, axes = plt.subplots(2, n, figsize=(4 * n, 6.2), squeeze=False)
    for j in range(n):
        for i, (part, name) in enumerate([(src, "source"), (tgt, "target")]):
            ax = axes[i, j]
            if j < len(part):
                row = part.iloc[j]
                ax.imshow(load_bar_free(row), cmap="gray", vmin=0, vmax=1)
                ax.set_title(f"{name}: {row['label']}", fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    return fig
