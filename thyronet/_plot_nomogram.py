"""The nomogram figure (``thyronet.plotting.plot_nomogram``), kept apart to keep plotting short."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_nomogram"]


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.2e}"


_CHAR_WIDTH = 1.2  # width of one 7-pt character in points-scale units (0-100 over ~5 in)


def _fitting_labels(xs: np.ndarray, labels: list[str]) -> list[tuple[float, str]]:
    """The tick labels that do not overlap, left to right (a crowded short scale
    keeps every other one or fewer)."""
    kept: list[tuple[float, str]] = []
    for x, label in sorted(zip(xs.tolist(), labels, strict=True)):
        if kept:
            last_x, last = kept[-1]
            if x - last_x < _CHAR_WIDTH * (len(last) + len(label)) / 2 + 1.0:
                continue
        kept.append((x, label))
    return kept


def plot_nomogram(nomo, *, title: str | None = None, ax=None):
    """Draw a :class:`~thyronet.metrics.Nomogram` as ``rms::nomogram`` does.

    Rows from the top: the 0-100 ``Points`` ruler, one scale per predictor
    (strongest first; tick labels are predictor values at their points), the
    ``Total points`` ruler, the ``Linear predictor`` and the ``Probability``
    read off below the total.

    Parameters
    ----------
    nomo : Nomogram
        From :func:`thyronet.metrics.nomogram`.
    title : str, optional
        Axes title.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from thyronet.metrics import nomogram
    >>> from thyronet.plotting import plot_nomogram
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 2))
    >>> y = (X[:, 0] + rng.normal(size=100) > 0).astype(int)
    >>> fig = plot_nomogram(nomogram(LogisticRegression().fit(X, y), X))
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['Points', 'x0', 'x1', 'Total points', 'Linear predictor', 'Probability']
    """
    import matplotlib.pyplot as plt

    names = list(nomo.predictors.index)
    rows = ["Points", *names, "Total points", "Linear predictor", "Probability"]
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(rows) + 0.8))
    else:
        fig = ax.figure
    most = max(float(nomo.predictors["max_points"].sum()), 1e-12)

    def scale(y, xs, labels, extent=None):
        xs = np.asarray(xs, dtype=float)
        ends = [xs.min(), xs.max()] if extent is None else list(extent)
        ax.plot(ends, [y, y], color="k", lw=1)
        for x in xs:  # every tick; the labels below them where they fit
            ax.plot([x, x], [y, y + 0.12], color="k", lw=0.8)
        for x, label in _fitting_labels(xs, labels):
            ax.text(x, y + 0.16, label, ha="center", va="top", fontsize=7)

    ticks = np.arange(0, 101, 10.0)
    scale(0, ticks, [f"{t:g}" for t in ticks])
    for k, name in enumerate(names, start=1):
        table = nomo.scales[name]
        extent = (0.0, float(nomo.predictors.loc[name, "max_points"]))
        scale(k, table["points"], [_fmt(v) for v in table["value"]], extent)
    y_total = len(names) + 1
    totals = nomo.total_points
    at = totals["total_points"] * 100 / most
    scale(y_total, at, [f"{t:g}" for t in totals["total_points"]], (0, 100))
    scale(y_total + 1, at, [f"{v:.2f}" for v in totals["linear_predictor"]], (0, 100))
    probs = nomo.probability_scale
    if len(probs):
        scale(
            y_total + 2,
            probs["total_points"] * 100 / most,
            [f"{p:g}" for p in probs["probability"]],
        )
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(len(rows) - 0.4, -0.7)
    ax.set_xlim(-5, 105)
    ax.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
