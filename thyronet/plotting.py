"""Figures: what people would rather look at than read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from thyronet._plot_nomogram import plot_nomogram as plot_nomogram  # re-export


def plot_fused_pairs(
    fused: np.ndarray,
    *,
    labels: Sequence | None = None,
    channel_names: Sequence[str] | None = None,
    ids: Sequence | None = None,
    max_patients: int = 8,
):
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
    # positional, whatever the index of a Series passed in
    labels = None if labels is None else list(labels)
    ids = None if ids is None else list(ids)
    for what, values in (("labels", labels), ("ids", ids)):
        if values is not None and len(values) != len(fused):
            raise ValueError(f"{what} has {len(values)} entries for {len(fused)} images")
    names = list(channel_names) if channel_names is not None else [f"channel {k}" for k in range(c)]
    fig, axes = plt.subplots(
        n, c, figsize=(2.2 * c * fused.shape[3] / fused.shape[2], 2.2 * n), squeeze=False
    )
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


# --------------------------------------------------------------------------- study figures
def _axes(ax, figsize=(5.0, 4.6)):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _legend_below(ax) -> None:
    """Legend under the axes, one entry per line, at a readable size (not over the curves)."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=9, frameon=False)


def _score_map(scores: Mapping, n: int, what: str) -> dict[str, np.ndarray]:
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError(
            f"{what} must be a non-empty mapping {{model name: scores}}; got "
            f"{type(scores).__name__}"
        )
    out = {}
    for name, values in scores.items():
        arr = np.asarray(values, dtype=float).ravel()
        if arr.size != n:
            raise ValueError(f"{what}[{name!r}] has {arr.size} values but y_true has {n}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{what}[{name!r}] contains NaN or infinite values")
        out[str(name)] = arr
    return out


def _labels(y_true) -> np.ndarray:
    y = np.asarray(y_true).ravel()
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"y_true must hold 0/1 labels; got values {sorted(values)[:5]}")
    return y.astype(int)


def roc_legend_label(
    name: str, auc: float, low: float, high: float, *, confidence: float = 0.95
) -> str:
    """The legend text of one ROC curve: ``"name: AUC 0.765 (95% CI 0.703-0.826)"``.

    Examples
    --------
    >>> from thyronet.plotting import roc_legend_label
    >>> roc_legend_label("DL_F", 0.7651, 0.7032, 0.8259)
    'DL_F: AUC 0.765 (95% CI 0.703-0.826)'
    """
    return f"{name}: AUC {auc:.3f} ({confidence:.0%} CI {low:.3f}-{high:.3f})"


def plot_roc_curves(
    y_true,
    scores: Mapping[str, Sequence[float]],
    *,
    title: str | None = None,
    confidence: float = 0.95,
    ax=None,
):
    """ROC curves of several models on one cohort, with AUC (DeLong CI) in the legend.

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 labels, 1 = positive class.
    scores : mapping of str to array-like of shape (n_subjects,)
        ``{model name: scores}``, higher = more likely positive. Curves are drawn
        in this order.
    title : str, optional
        Axes title (e.g. the cohort).
    confidence : float, default=0.95
        Level of the DeLong interval (:func:`thyronet.metrics.roc_auc_ci`).
    ax : matplotlib Axes, optional
        Draw here instead of on a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.plotting import plot_roc_curves
    >>> y = np.array([0, 0, 1, 1, 0, 1])
    >>> fig = plot_roc_curves(y, {"m": [0.1, 0.4, 0.35, 0.8, 0.2, 0.9]}, title="test")
    >>> fig.axes[0].get_legend().get_texts()[0].get_text()
    'm: AUC 0.889 (95% CI 0.581-1.000)'
    """
    from sklearn.metrics import roc_curve

    from thyronet.metrics import roc_auc_ci

    y = _labels(y_true)
    models = _score_map(scores, y.size, "scores")
    fig, ax = _axes(ax)
    for name, score in models.items():
        fpr, tpr, _ = roc_curve(y, score)
        ci = roc_auc_ci(y, score, confidence=confidence)
        ax.plot(
            fpr,
            tpr,
            lw=1.8,
            label=roc_legend_label(name, ci.auc, ci.low, ci.high, confidence=confidence),
        )
    ax.plot([0, 1], [0, 1], ls="--", lw=1, color="0.6", label="_chance")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 - Specificity")
    ax.set_ylabel("Sensitivity")
    if title:
        ax.set_title(title)
    _legend_below(ax)
    return fig


def plot_calibration_curves(
    y_true,
    probabilities: Mapping[str, Sequence[float]],
    *,
    title: str | None = None,
    n_bins: int = 10,
    strategy: str = "quantile",
    n_groups: int = 10,
    sample: str = "development",
    ax=None,
):
    """Calibration curves of several models, with the Hosmer-Lemeshow P in the legend.

    Each curve is the lowess smooth of the outcomes on the predicted probabilities
    (``rms::val.prob``'s flexible calibration curve) with a shaded 95% bootstrap
    band (100 resamples); the dots are the observed fractions in quantile bins.

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 outcomes.
    probabilities : mapping of str to array-like of shape (n_subjects,)
        ``{model name: predicted probability of the positive class}``.
    title : str, optional
        Axes title.
    n_bins : int, default=10
        Bins of each curve.
    strategy : {"quantile", "uniform"}, default="quantile"
        Bin edges: equal counts or equal widths.
    n_groups : int, default=10
        Groups of the Hosmer-Lemeshow test.
    sample : {"development", "external"}, default="development"
        Degrees-of-freedom rule of the test (:func:`thyronet.metrics.hosmer_lemeshow`).
        Where the test cannot be computed (too few distinct probabilities), the
        legend says ``P = NA``; below 0.001 it says ``P < 0.001``.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.plotting import plot_calibration_curves
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.95, 200)
    >>> y = (rng.uniform(size=200) < p).astype(int)
    >>> fig = plot_calibration_curves(y, {"m": p}, n_bins=5)
    >>> fig.axes[0].get_legend().get_texts()[0].get_text().startswith("m (Hosmer-Lemeshow P = ")
    True
    """
    from sklearn.calibration import calibration_curve

    from thyronet.metrics import hosmer_lemeshow

    y = _labels(y_true)
    models = _score_map(probabilities, y.size, "probabilities")
    fig, ax = _axes(ax)
    for name, prob in models.items():
        prob = np.clip(prob, 1e-6, 1 - 1e-6)
        try:
            p = hosmer_lemeshow(y, prob, n_groups, sample=sample).p_value
        except ValueError:  # too few distinct probabilities for the groups: no test
            p = float("nan")
        prob_true, prob_pred = calibration_curve(y, prob, n_bins=n_bins, strategy=strategy)
        grid, smooth, low, high = _flexible_calibration(y, prob)
        (line,) = ax.plot(grid, smooth, lw=1.8, label=f"{name} (Hosmer-Lemeshow P {_format_p(p)})")
        ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.15, lw=0)
        ax.plot(prob_pred, prob_true, ls="none", marker="o", ms=3, color=line.get_color())
    ax.plot([0, 1], [0, 1], ls="--", lw=1, color="0.6", label="Ideal")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("Predicted probability")
    ax.set_ylabel("Observed fraction of positives")
    if title:
        ax.set_title(title)
    _legend_below(ax)
    return fig


def _flexible_calibration(y: np.ndarray, prob: np.ndarray, n_bootstrap: int = 100, seed: int = 0):
    """Lowess calibration curve (R's ``lowess(p, y, iter = 0)``, as ``rms::val.prob``) on a
    grid over the predicted range, with a 95% percentile bootstrap band."""
    from thyronet.metrics import lowess

    grid = np.linspace(prob.min(), prob.max(), 60)

    def curve(yy, pp):
        x, fitted = lowess(pp, yy.astype(float), iter=0)
        return np.clip(np.interp(grid, x, fitted), 0.0, 1.0)

    smooth = curve(y, prob)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_bootstrap):
        idx = rng.integers(0, y.size, y.size)
        if np.ptp(prob[idx]) > 0:
            draws.append(curve(y[idx], prob[idx]))
    if not draws:
        return grid, smooth, smooth, smooth
    low, high = np.percentile(np.vstack(draws), [2.5, 97.5], axis=0)
    return grid, smooth, low, high


def _format_p(p: float) -> str:
    if not np.isfinite(p):
        return "= NA"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def plot_decision_curves(
    y_true,
    probabilities: Mapping[str, Sequence[float]],
    *,
    thresholds=None,
    title: str | None = None,
    ax=None,
    n_bootstrap: int = 0,
    ci: float = 0.95,
    random_state=None,
):
    """Decision curves: net benefit of each model, of treating all and of treating none.

    With ``n_bootstrap > 0`` each model's curve gets its stratified bootstrap
    band (:func:`thyronet.metrics.decision_curve`), drawn as a shaded area.

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 outcomes.
    probabilities : mapping of str to array-like of shape (n_subjects,)
        ``{model name: predicted probability}``.
    thresholds : array-like of float in [0, 1), optional
        Threshold probabilities (default 0.01 ... 0.99).
    title : str, optional
        Axes title.
    ax : matplotlib Axes, optional
    n_bootstrap : int, default=0
        Bootstrap samples of the band of each model's net benefit (0: no band).
    ci : float, default=0.95
        Coverage of the band.
    random_state : int or None
        Seed of the bootstrap.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.plotting import plot_decision_curves
    >>> fig = plot_decision_curves([0, 1, 1, 0], {"m": [0.2, 0.7, 0.6, 0.4]})
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['m', 'Treat all', 'Treat none']
    """
    from thyronet.metrics import decision_curve

    y = _labels(y_true)
    models = _score_map(probabilities, y.size, "probabilities")
    fig, ax = _axes(ax)
    curve = None
    top = 0.0
    for name, prob in models.items():
        curve = decision_curve(
            y, prob, thresholds, n_bootstrap=n_bootstrap, ci=ci, random_state=random_state
        )
        (line,) = ax.plot(curve["threshold"], curve["net_benefit"], lw=1.6, label=name)
        top = max(top, float(curve["net_benefit"].max()))
        if "net_benefit_low" in curve:
            ax.fill_between(
                curve["threshold"],
                curve["net_benefit_low"],
                curve["net_benefit_high"],
                color=line.get_color(),
                alpha=0.2,
                lw=0,
            )
            top = max(top, float(curve["net_benefit_high"].max()))
    ax.plot(
        curve["threshold"],
        curve["net_benefit_all"],
        lw=1.2,
        color="0.4",
        ls="-.",
        label="Treat all",
    )
    ax.plot(
        curve["threshold"], curve["net_benefit_none"], lw=1.2, color="k", ls=":", label="Treat none"
    )
    prevalence = float(y.mean())
    high = max(top, prevalence, 0.01)
    ax.set_ylim(-0.1 * high - 0.01, 1.15 * high)
    ax.set_xlim(float(curve["threshold"].min()), float(curve["threshold"].max()))
    ax.set_xlabel("Threshold probability")
    ax.set_ylabel("Net benefit")
    if title:
        ax.set_title(title)
    _legend_below(ax)
    return fig


def _lasso_arrays(selector):
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(selector, ["alphas_", "coef_path_", "alpha_"])
    return np.asarray(selector.alphas_, dtype=float), np.asarray(selector.coef_path_)


def plot_lasso_path(
    selector, *, feature_names: Sequence[str] | None = None, max_labels: int = 12, ax=None
):
    """Coefficient paths of a fitted :class:`thyronet.LassoSelector` against log(alpha).

    The chosen strength ``alpha_`` is a dashed vertical line; the features kept at
    it are labelled (at most ``max_labels``, largest coefficients first).

    Parameters
    ----------
    selector : LassoSelector
        A fitted selector (uses ``alphas_``, ``coef_path_``, ``alpha_``, ``support_``).
    feature_names : sequence of str, optional
        Default: the selector's ``feature_names_in_`` or ``x0, x1, ...``.
    max_labels : int, default=12
        Kept features named in the legend.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.selection import LassoSelector
    >>> from thyronet.plotting import plot_lasso_path
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(80, 4))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> fig = plot_lasso_path(LassoSelector(alphas=20).fit(X, y))
    >>> fig.axes[0].get_xlabel()
    'log10(alpha)'
    """
    alphas, path = _lasso_arrays(selector)
    if path.ndim == 3:  # several classes: one line per class and feature
        path = path.reshape(-1, path.shape[-1])
        n_features = path.shape[0]
        names = [
            f"class{k}:{j}"
            for k in range(path.shape[0] // selector.n_features_in_)
            for j in range(selector.n_features_in_)
        ]
    else:
        n_features = path.shape[0]
        names = _feature_names(selector, feature_names, n_features)
    fig, ax = _axes(ax, figsize=(6.0, 4.4))
    x = np.log10(alphas)
    chosen = int(np.argmin(np.abs(alphas - selector.alpha_)))
    at_chosen = np.abs(path[:, chosen])
    order = np.argsort(-at_chosen, kind="stable")
    labelled = {j for j in order[:max_labels] if at_chosen[j] > 0}
    for j in range(n_features):
        if j in labelled:
            ax.plot(x, path[j], lw=1.5, label=str(names[j]))
        else:
            ax.plot(x, path[j], lw=0.7, color="0.7", label="_other")
    ax.axvline(np.log10(selector.alpha_), ls="--", color="k", lw=1, label="_alpha")
    ax.axhline(0, color="0.3", lw=0.5, label="_zero")
    ax.set_xlabel("log10(alpha)")
    ax.set_ylabel("Coefficient")
    kept = int(np.count_nonzero(selector.support_))
    ax.set_title(f"LASSO path ({kept} feature{'' if kept == 1 else 's'} kept)")
    if labelled:
        ax.legend(loc="best", fontsize=6, frameon=False, ncol=2 if len(labelled) > 6 else 1)
    return fig


def _feature_names(selector, feature_names, n_features: int) -> list[str]:
    if feature_names is not None:
        names = [str(v) for v in feature_names]
        if len(names) != n_features:
            raise ValueError(
                f"feature_names has {len(names)} names but the selector has {n_features} features"
            )
        return names
    names = getattr(selector, "feature_names_in_", None)
    if names is not None:
        return [str(v) for v in names]
    return [f"x{j}" for j in range(n_features)]


def plot_lasso_cv(selector, *, ax=None):
    """Cross-validation curve of a fitted :class:`thyronet.LassoSelector`.

    Mean held-out error (``cv_mean_``) with one standard deviation of the folds
    (``cv_std_``) against log(alpha); the chosen ``alpha_`` is a dashed line.

    Parameters
    ----------
    selector : LassoSelector
        A fitted selector.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.selection import LassoSelector
    >>> from thyronet.plotting import plot_lasso_cv
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(80, 4))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> fig = plot_lasso_cv(LassoSelector(alphas=20).fit(X, y))
    >>> fig.axes[0].get_ylabel()
    'CV mean squared error'
    """
    alphas, _ = _lasso_arrays(selector)
    mean = np.asarray(selector.cv_mean_, dtype=float)
    std = np.asarray(selector.cv_std_, dtype=float)
    metric = {"mse": "mean squared error", "log_loss": "log loss"}.get(
        getattr(selector, "cv_metric_", ""), "error"
    )
    fig, ax = _axes(ax, figsize=(6.0, 4.4))
    x = np.log10(alphas)
    ax.errorbar(
        x,
        mean,
        yerr=std,
        fmt="o",
        ms=3,
        color="tab:red",
        ecolor="0.7",
        elinewidth=0.8,
        capsize=1.5,
        label="CV mean ± SD",
    )
    ax.axvline(
        np.log10(selector.alpha_),
        ls="--",
        color="k",
        lw=1,
        label=f"chosen alpha = {selector.alpha_:.3g}",
    )
    ax.set_xlabel("log10(alpha)")
    ax.set_ylabel(f"CV {metric}")
    ax.set_title("LASSO cross-validation")
    ax.legend(loc="best", fontsize=7, frameon=False)
    return fig


def figure_bytes(fig, fmt: str = "png", *, dpi: int = 150) -> bytes:
    """Render a figure to PNG or SVG bytes.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from thyronet.plotting import figure_bytes
    >>> fig, _ = plt.subplots()
    >>> figure_bytes(fig, "png")[:4]
    b'\\x89PNG'
    """
    import io

    if fmt not in ("png", "svg"):
        raise ValueError(f"fmt must be 'png' or 'svg'; got {fmt!r}")
    buffer = io.BytesIO()
    kwargs = {"metadata": {"Date": None}} if fmt == "svg" else {}
    fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", **kwargs)
    return buffer.getvalue()


def figure_img(fig, alt: str, *, width: str | None = None, dpi: int = 150) -> str:
    """An HTML ``<img>`` holding a figure (or PNG bytes) as a base64 ``data:`` URI.

    Self-contained: the page needs no other file. The study report and the
    documentation's figures use it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure or bytes
        The figure, rendered to PNG at ``dpi``, or PNG bytes already rendered.
    alt : str
        Alternative text (HTML-escaped).
    width : str, optional
        CSS width of the image (e.g. ``"48%"``).
    dpi : int
        Resolution when rendering a figure.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from thyronet.plotting import figure_img
    >>> fig, _ = plt.subplots()
    >>> figure_img(fig, "an empty plot", width="50%")[:53]
    '<img alt="an empty plot" width="50%" src="data:image/'
    """
    import base64
    import html

    png = fig if isinstance(fig, bytes) else figure_bytes(fig, "png", dpi=dpi)
    size = f' width="{html.escape(width)}"' if width else ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}"{size} src="data:image/png;base64,{data}">'


def save_figure(
    fig,
    path,
    *,
    formats: Sequence[str] = ("png", "svg"),
    dpi: int = 150,
    close: bool = True,
    overwrite: bool = True,
) -> list:
    """Save a figure as PNG and SVG (``path`` without suffix, or its suffix is replaced).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or path-like
        Target file stem, e.g. ``out/figures/roc_test``.
    formats : sequence of {"png", "svg"}
        Files written, one per format.
    dpi : int, default=150
        Resolution of the PNG.
    close : bool, default=True
        Close the figure afterwards (frees pyplot's memory).
    overwrite : bool, default=True
        ``False`` raises ``FileExistsError`` instead of replacing a file.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import matplotlib.pyplot as plt
    >>> from thyronet.plotting import save_figure
    >>> fig, _ = plt.subplots()
    >>> paths = save_figure(fig, pathlib.Path(tempfile.mkdtemp()) / "empty")
    >>> [p.suffix for p in paths]
    ['.png', '.svg']
    """
    from pathlib import Path

    stem = Path(path)
    if stem.suffix.lower() in (".png", ".svg"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = stem.with_name(stem.name + "." + fmt)
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} already exists (pass overwrite=True to replace it)")
        target.write_bytes(figure_bytes(fig, fmt, dpi=dpi))
        written.append(target)
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return written
