"""Figures: what people would rather look at than read."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def plot_fused_pairs(fused: np.ndarray, *, labels: Sequence | None = None,
                     channel_names: Sequence[str] | None = None, ids: Sequence | None = None,
                     max_patients: int = 8, ax=None):
    """Show fused images as a grid: one row per patient, one column per channel.

    Parameters
    ----------
    fused : ndarray of shape (n, C, H, W)
        Output of :class:`thyronet.DualChannelFuser`.
    labels : sequence, optional
        Label per patient, shown in the row title.
    channel_names : sequence of str, optional
        Column titles (e.g. ``fuser.get_feature_names_out()``).
    ids : sequence, optional
        Patient identifiers for the row titles.
    max_patients : int
        Rows shown.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.plotting import plot_fused_pairs
    >>> fig = plot_fused_pairs(np.random.rand(3, 2, 16, 16), labels=[0, 1, 0])
    >>> len(fig.axes)
    6
    """
    import matplotlib.pyplot as plt

    fused = np.asarray(fused)
    if fused.ndim != 4:
        raise ValueError(f"fused images must be (n, C, H, W), got shape {fused.shape}")
    n = min(len(fused), max_patients)
    c = fused.shape[1]
    names = list(channel_names) if channel_names is not None else [f"channel {k}" for k in
                                                                    range(c)]
    fig, axes = plt.subplots(n, c, figsize=(2.2 * c * fused.shape[3] / fused.shape[2], 2.2 * n),
                             squeeze=False)
    for i in range(n):
        for k in range(c):
            ax_ = axes[i, k]
            ax_.imshow(fused[i, k], cmap="gray")
            ax_.set_xticks([])
            ax_.set_yticks([])
            if i == 0:
                ax_.set_title(str(names[k]), fontsize=9)
        title = str(ids[i]) if ids is not None else f"#{i}"
        if labels is not None:
            title += f"\nCLNM={labels[i]}"
        axes[i, 0].set_ylabel(title, fontsize=8)
    fig.tight_layout()
    return fig
