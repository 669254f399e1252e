"""Per-view occlusion of a dual-channel model: how much each ultrasound view moves its output.

:func:`occlusion_by_view` replaces one view's channel of the fused image by that
channel's mean intensity (per patient) and measures the absolute change in the
predicted probability; :func:`plot_occlusion` draws the mean change per view and
cohort. It answers "how much does the model rely on this view overall", not where
in the view, and it needs a fusion with one channel per view (``stack``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from thyronet.fusion import DualChannelFuser
from thyronet.schema import COHORT_COLUMN

__all__ = ["occlusion_by_view", "plot_occlusion"]


def _split(model) -> tuple[DualChannelFuser, Pipeline, object]:
    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        raise TypeError("per-view occlusion needs a fitted Pipeline(fuser, CNN)")
    head, cnn = model[:-1], model.steps[-1][1]
    fuser = next((s for _, s in head.steps if isinstance(s, DualChannelFuser)), None)
    if fuser is None or not hasattr(cnn, "net_"):
        raise TypeError("per-view occlusion needs a DualChannelFuser followed by a SkorchCNN")
    views = tuple(getattr(fuser, "views_", ()))
    if len(views) < 2 or getattr(fuser, "n_channels_", None) != len(views):
        raise TypeError(
            f"per-view occlusion needs one channel per view (fusion 'stack'); this model's "
            f"fuser uses strategy {fuser.strategy!r} with {getattr(fuser, 'n_channels_', '?')} "
            "channel(s)"
        )
    return fuser, head, cnn


def occlusion_by_view(
    model, frame: pd.DataFrame, *, n_bootstrap: int = 200, random_state: int = 0
) -> pd.DataFrame:
    """Mean absolute change in predicted probability when one view is replaced by its mean.

    Parameters
    ----------
    model : fitted Pipeline
        A dual-channel model: :class:`~thyronet.DualChannelFuser` (strategy ``stack``,
        one channel per view) followed by a :class:`~thyronet.SkorchCNN`.
    frame : DataFrame
        Patients (the cohort table); with a ``cohort`` column the result is per cohort,
        otherwise one group ``all``.
    n_bootstrap : int, default=200
        Bootstrap samples (over patients) of the 95% interval of each mean.
    random_state : int, default=0

    Returns
    -------
    DataFrame
        One row per cohort and view: ``cohort, view, n, mean_abs_change, ci_low,
        ci_high, mean_change`` (signed: negative when removing the view lowers the
        predicted risk).

    Raises
    ------
    TypeError
        When the model is not a fuser-plus-CNN pipeline with one channel per view.
    """
    fuser, head, cnn = _split(model)
    images = np.asarray(head.transform(frame), dtype=np.float32)
    base = cnn.predict_proba(images)[:, 1]
    groups = (
        frame[COHORT_COLUMN].to_numpy()
        if COHORT_COLUMN in frame.columns
        else np.full(len(frame), "all")
    )
    rng = np.random.default_rng(random_state)
    rows = []
    for channel, view in enumerate(fuser.views_):
        occluded = images.copy()
        occluded[:, channel] = images[:, channel].mean(axis=(1, 2), keepdims=True)
        change = cnn.predict_proba(occluded)[:, 1] - base
        for group in pd.unique(groups):
            d = change[groups == group]
            absd = np.abs(d)
            boots = [absd[rng.integers(0, d.size, d.size)].mean() for _ in range(n_bootstrap)]
            low, high = np.percentile(boots, [2.5, 97.5]) if boots else (np.nan, np.nan)
            rows.append(
                {
                    "cohort": group,
                    "view": view,
                    "n": int(d.size),
                    "mean_abs_change": float(absd.mean()),
                    "ci_low": float(low),
                    "ci_high": float(high),
                    "mean_change": float(d.mean()),
                }
            )
    return pd.DataFrame(rows)


def plot_occlusion(table: pd.DataFrame, *, cohort_labels=None):
    """Grouped bars of :func:`occlusion_by_view`: one group per cohort, one bar per view.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    labels = dict(cohort_labels or {})
    cohorts = list(pd.unique(table["cohort"]))
    views = list(pd.unique(table["view"]))
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    width = 0.8 / max(len(views), 1)
    x = np.arange(len(cohorts))
    for i, view in enumerate(views):
        part = table[table["view"] == view].set_index("cohort").reindex(cohorts)
        mean = part["mean_abs_change"].to_numpy()
        err = np.vstack([mean - part["ci_low"].to_numpy(), part["ci_high"].to_numpy() - mean])
        ax.bar(
            x + (i - (len(views) - 1) / 2) * width,
            mean,
            width,
            yerr=err,
            capsize=3,
            label=f"{view} view replaced by its mean",
        )
    ax.set_xticks(x, [labels.get(c, c) for c in cohorts])
    ax.set_ylabel("Mean |change in predicted probability|")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=9, frameon=False)
    plt.close(fig)
    return fig
