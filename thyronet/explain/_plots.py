"""Figures of the explanations: Grad-CAM on each view, SHAP summary, bar and waterfall.

Every function returns a :class:`matplotlib.figure.Figure`, closed in pyplot so
that loops do not accumulate open figures (``fig.savefig`` works).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from thyronet.explain._gradcam import GradCAMExplainer, GradCAMResult
from thyronet.explain._shap import _import_shap


def _as_result(model_or_result, X, target, target_layer) -> GradCAMResult:
    if isinstance(model_or_result, GradCAMResult):
        if X is not None:
            raise TypeError("pass X only with a model, not with a GradCAMResult")
        return model_or_result
    if X is None:
        raise TypeError("pass the patients X to explain with the model")
    explainer = GradCAMExplainer(model_or_result, target_layer=target_layer)
    return explainer.explain(X, target=target)


def _overlay(ax, image: np.ndarray, heat: np.ndarray | None, *, alpha: float, cmap: str):
    ax.imshow(image, cmap="gray", vmin=0.0, vmax=max(1.0, float(np.nanmax(image))))
    mappable = None
    if heat is not None and not np.all(np.isnan(heat)):
        mappable = ax.imshow(heat, cmap=cmap, vmin=0.0, vmax=1.0, alpha=alpha)
    ax.set_xticks([])
    ax.set_yticks([])
    return mappable


def _draw_row(axes, result: GradCAMResult, i: int, *, alpha: float, cmap: str, titles: bool):
    names = result.view_names
    mappable = None
    for j, name in enumerate(names):
        _overlay(axes[j], result.views[i, j], None, alpha=alpha, cmap=cmap)
        heat = result.view_heatmaps[i, j]
        ax = axes[len(names) + j]
        m = _overlay(ax, result.views[i, j], heat, alpha=alpha, cmap=cmap)
        mappable = m or mappable
        if m is None:
            ax.text(
                0.5,
                0.5,
                "view not used\nby this model",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="white",
                fontsize=8,
            )
        if titles:
            axes[j].set_title(f"{name.capitalize()} ROI", fontsize=9)
            ax.set_title(f"Grad-CAM: {name}" + (" alone" if result.per_view else ""), fontsize=9)
    return mappable


def _cam_title(result: GradCAMResult) -> str:
    title = f"Grad-CAM ({result.target} class, layer {result.layer})"
    if result.per_view:
        title += "\neach view's map: the model shown that view, the other(s) at their mean"
    return title


def _row_label(result: GradCAMResult, i: int, labels, ids) -> str:
    parts = []
    if ids is not None:
        parts.append(str(ids[i]))
    if labels is not None:
        label = labels[i]
        if label in (1, True, "1"):
            label = "+"
        elif label in (0, False, "0"):
            label = "-"
        parts.append(f"CLNM {label}")
    parts.append(f"p = {result.probabilities[i]:.2f}")
    return "\n".join(parts)


def _check_lengths(result: GradCAMResult, labels, ids) -> None:
    for name, seq in (("labels", labels), ("ids", ids)):
        if seq is not None and len(seq) != len(result):
            raise ValueError(f"{name} has {len(seq)} entries for {len(result)} patients")


def plot_gradcam(
    model_or_result,
    X=None,
    *,
    index: int = 0,
    target="positive",
    target_layer: str | None = None,
    label=None,
    patient_id=None,
    alpha: float = 0.45,
    cmap: str = "jet",
):
    """One patient in the paper's Figure 3 layout: each view's ROI, then the heatmap on each.

    With the two views: longitudinal ROI | transverse ROI | Grad-CAM on the
    longitudinal view | Grad-CAM on the transverse view. A dual-channel model has
    one heatmap over its fused input, shown on both views.

    Parameters
    ----------
    model_or_result : model or GradCAMResult
        A fitted model (as in :func:`gradcam`) with ``X``, or the result of
        :meth:`GradCAMExplainer.explain`.
    X : DataFrame or array-like, optional
        The patients (with a model).
    index : int, default=0
        Which patient of ``X`` (or of the result).
    target : {"positive", "negative"} or class label, default="positive"
        With a model: the class whose evidence is shown.
    target_layer : str or None
        With a model: the layer to target (default: the backbone's).
    label, patient_id : optional
        Shown in the title.
    alpha : float, default=0.45
        Opacity of the heatmap.
    cmap : str, default="jet"
        Colour map of the heatmap.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.explain import GradCAMResult, plot_gradcam
    >>> views = np.random.default_rng(0).random((1, 2, 32, 32), dtype=np.float32)
    >>> result = GradCAMResult(views[:, 0], views, ("longitudinal", "transverse"), views,
    ...                        np.array([0.7]), "positive", "layer4")
    >>> [ax.get_title() for ax in plot_gradcam(result).axes[:4]]
    ['Longitudinal ROI', 'Transverse ROI', 'Grad-CAM: longitudinal', 'Grad-CAM: transverse']
    """
    if X is not None and not isinstance(model_or_result, GradCAMResult):
        rows = X.iloc[[index]] if isinstance(X, pd.DataFrame) else np.asarray(X)[[index]]
        result, index = _as_result(model_or_result, rows, target, target_layer), 0
    else:
        result = _as_result(model_or_result, X, target, target_layer)
    if not 0 <= index < len(result):
        raise IndexError(f"index {index} is out of range for {len(result)} patients")
    n_views = len(result.view_names)
    fig = Figure(figsize=(2.4 * 2 * n_views + 0.6, 2.9), layout="constrained")
    axes = fig.subplots(1, 2 * n_views, squeeze=False)[0]
    mappable = _draw_row(axes, result, index, alpha=alpha, cmap=cmap, titles=True)
    title = _row_label(
        result,
        index,
        None if label is None else [label] * len(result),
        None if patient_id is None else [patient_id] * len(result),
    )
    fig.suptitle(title.replace("\n", "  |  ") + f"  |  target: {result.target}", fontsize=10)
    if mappable is not None:
        fig.colorbar(mappable, ax=list(axes[n_views:]), shrink=0.8, label="Grad-CAM")
    return fig


def plot_gradcam_gallery(
    model_or_result,
    X=None,
    *,
    labels: Sequence | None = None,
    ids: Sequence | None = None,
    max_patients: int = 8,
    target="positive",
    target_layer: str | None = None,
    alpha: float = 0.45,
    cmap: str = "jet",
):
    """Several patients in the Figure 3 layout, one row each.

    Parameters
    ----------
    model_or_result : model or GradCAMResult
        A fitted model (as in :func:`gradcam`) with ``X``, or the result of
        :meth:`GradCAMExplainer.explain`.
    X : DataFrame or array-like, optional
        The patients (with a model); the first ``max_patients`` are shown.
    labels : sequence, optional
        True label of each patient (shown as CLNM +/-).
    ids : sequence, optional
        Patient identifiers.
    max_patients : int, default=8
        Rows shown.
    target : {"positive", "negative"} or class label, default="positive"
    target_layer : str or None
        With a model: the layer to target (default: the backbone's).
    alpha : float, default=0.45
        Opacity of the heatmap.
    cmap : str, default="jet"
        Colour map of the heatmap.

    Returns
    -------
    matplotlib.figure.Figure
        ``rows x 2V`` image axes (V views) and a colour bar.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.explain import GradCAMResult, plot_gradcam_gallery
    >>> views = np.random.default_rng(0).random((3, 2, 32, 32), dtype=np.float32)
    >>> result = GradCAMResult(views[:, 0], views, ("longitudinal", "transverse"), views,
    ...                        np.array([0.7, 0.2, 0.4]), "positive", "layer4")
    >>> fig = plot_gradcam_gallery(result, labels=[1, 0, 0], ids=["a", "b", "c"])
    >>> len(fig.axes)  # 3 rows x 4 panels + the colour bar
    13
    """
    if not isinstance(max_patients, Integral) or max_patients < 1:
        raise ValueError(f"max_patients must be a positive integer, got {max_patients!r}")
    if X is not None and not isinstance(model_or_result, GradCAMResult):
        if len(X) == 0:
            raise ValueError("X has no patients to show")
        X = X.iloc[:max_patients] if isinstance(X, pd.DataFrame) else np.asarray(X)[:max_patients]
        labels = None if labels is None else list(labels)[:max_patients]
        ids = None if ids is None else list(ids)[:max_patients]
    result = _as_result(model_or_result, X, target, target_layer)
    _check_lengths(result, labels, ids)
    rows = min(len(result), max_patients)
    n_views = len(result.view_names)
    fig = Figure(figsize=(2.1 * 2 * n_views + 1.6, 2.1 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, 2 * n_views, squeeze=False)
    mappable = None
    for i in range(rows):
        m = _draw_row(axes[i], result, i, alpha=alpha, cmap=cmap, titles=i == 0)
        mappable = m or mappable
        axes[i, 0].set_ylabel(_row_label(result, i, labels, ids), fontsize=8)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes[:, n_views:].ravel().tolist(), shrink=0.6, label="Grad-CAM")
    fig.suptitle(_cam_title(result), fontsize=10)
    return fig


def _new_pyplot_figure(width: float, height: float):
    return plt.figure(figsize=(width, height))


def _finish(fig, xlabel: str | None = None):
    if xlabel is not None and fig.axes:
        fig.axes[0].set_xlabel(xlabel)
    fig.tight_layout()  # shap's long feature names would be cut off otherwise
    plt.close(fig)
    return fig


def _check_explanation(explanation, *, single: bool = False):
    shap = _import_shap()
    if not isinstance(explanation, shap.Explanation):
        raise TypeError(
            f"expected a shap.Explanation (from shap_explain); got {type(explanation).__name__}"
        )
    ndim = np.ndim(explanation.values)
    if ndim != (1 if single else 2):
        raise ValueError(
            f"expected a {'single-row' if single else 'multi-row'} explanation "
            f"with 2-D values; got values of shape {np.shape(explanation.values)}"
        )
    return shap


def _value_label(what: str = "SHAP value") -> str:
    return f"{what} (impact on the model's log-odds of CLNM)"


def plot_shap_summary(explanation, *, max_display: int = 20):
    """SHAP summary (beeswarm): one dot per patient and feature, coloured by the value.

    The paper's Figure 6. Features are ordered by mean absolute SHAP value.

    Parameters
    ----------
    explanation : shap.Explanation
        Several rows (from :func:`shap_explain`).
    max_display : int, default=20
        Features shown (the others are summed in one row).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from thyronet.explain import plot_shap_summary, shap_explain
    >>> X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    >>> fig = plot_shap_summary(shap_explain(LogisticRegression().fit(X, y), X))
    >>> fig.axes[0].get_xlabel()
    "SHAP value (impact on the model's log-odds of CLNM)"
    """
    shap = _check_explanation(explanation)
    n = min(max_display, np.shape(explanation.values)[1])
    fig = _new_pyplot_figure(8.0, 0.4 * n + 1.6)
    ax = fig.add_subplot()
    shap.plots.beeswarm(explanation, max_display=max_display, ax=ax, show=False, plot_size=None)
    ax.set_title("SHAP summary", fontsize=11)
    return _finish(fig, _value_label())


def plot_shap_bar(explanation, *, max_display: int = 20):
    """Mean absolute SHAP value per feature (global importance).

    Parameters
    ----------
    explanation : shap.Explanation
        Several rows (from :func:`shap_explain`).
    max_display : int, default=20

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from thyronet.explain import plot_shap_bar, shap_explain
    >>> X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    >>> fig = plot_shap_bar(shap_explain(LogisticRegression().fit(X, y), X))
    >>> fig.axes[0].get_xlabel()
    'mean |SHAP value| (log-odds of CLNM)'
    """
    shap = _check_explanation(explanation)
    n = min(max_display, np.shape(explanation.values)[1])
    fig = _new_pyplot_figure(8.0, 0.4 * n + 1.4)
    ax = fig.add_subplot()
    shap.plots.bar(explanation, max_display=max_display, ax=ax, show=False)
    ax.set_title("Mean |SHAP value|", fontsize=11)
    return _finish(fig, "mean |SHAP value| (log-odds of CLNM)")


def plot_shap_waterfall(explanation, index: int = 0, *, max_display: int = 15, patient_id=None):
    """How one patient's features move the prediction from the baseline (waterfall).

    Parameters
    ----------
    explanation : shap.Explanation
        Several rows (then ``index`` picks one) or a single row.
    index : int, default=0
        The patient (row of ``explanation``).
    patient_id : str, optional
        Shown in the title instead of ``index`` (e.g. the cohort's patient ID).
    max_display : int, default=15

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from thyronet.explain import plot_shap_waterfall, shap_explain
    >>> X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    >>> fig = plot_shap_waterfall(shap_explain(LogisticRegression().fit(X, y), X), 3)
    >>> fig.get_suptitle()
    'SHAP waterfall (patient 3)'
    """
    shap = _import_shap()
    if not isinstance(explanation, shap.Explanation):
        raise TypeError(
            f"expected a shap.Explanation (from shap_explain); got {type(explanation).__name__}"
        )
    if np.ndim(explanation.values) == 2:
        n = np.shape(explanation.values)[0]
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of range for {n} patients")
        row = explanation[index]
    else:
        row = explanation
    _check_explanation(row, single=True)
    fig = _new_pyplot_figure(8.0, 4.0)
    plt.figure(fig.number)  # shap draws on the current figure
    shap.plots.waterfall(row, max_display=max_display, show=False)
    width, height = fig.get_size_inches()
    fig.set_size_inches(width, max(height, 3.0) + 0.6)
    who = index if patient_id is None else patient_id
    fig.suptitle(f"SHAP waterfall (patient {who})", fontsize=11)
    return _finish(fig)
