"""Explaining the models: Grad-CAM for the CNN, SHAP for the combined model.

**Grad-CAM** (Selvaraju et al. 2017, through `pytorch-grad-cam`_) shows where a
fitted :class:`~thyronet.SkorchCNN` looks. It targets the layer that the CNN's
backbone entry names (``Backbone.target_layer_name``: ``layer4`` for ResNets,
``views`` for the two-stream plugin) and explains the single output logit: the
heatmap for the *positive* class (``classes_[1]``, CLNM) follows the gradient of
the logit, the one for the *negative* class the gradient of minus the logit. A
dual-channel model sees one fused image, so it has one heatmap over that image;
it is overlaid on each view (the paper's Figure 3):

- :func:`gradcam` -- heatmaps, float32 ``(n, H, W)`` in [0, 1];
- :class:`GradCAMExplainer` -- heatmaps with the patients' views, the heatmap
  laid on each view and the predicted probabilities (:class:`GradCAMResult`);
- :func:`plot_gradcam` (one patient) and :func:`plot_gradcam_gallery` (several).

**SHAP** (Lundberg & Lee 2017, through `shap`_) explains the combined (or the
clinical) model's classifier on the features that reach it, named as the
pipeline names them (``model[:-1].get_feature_names_out()``). The explainer
follows the classifier chosen by :class:`~thyronet.ClassifierSelector`:
:class:`shap.TreeExplainer` for LightGBM (and other tree ensembles),
:class:`shap.LinearExplainer` for logistic regression (and other linear models),
and the model-agnostic :class:`shap.PermutationExplainer` for naive Bayes and any
other classifier. Values are in log-odds of the positive class (probability for
tree ensembles that average probabilities, such as random forests):

- :func:`shap_explain` -- a :class:`shap.Explanation` (usable with shap's plots);
- :class:`ShapExplainer` -- the explainer itself (``kind``, ``model_output``...);
- :func:`plot_shap_summary` (beeswarm, the paper's Figure 6),
  :func:`plot_shap_bar` and :func:`plot_shap_waterfall` (one patient).

Every figure function returns a :class:`matplotlib.figure.Figure` (closed in
pyplot, so loops do not accumulate open figures; ``fig.savefig`` works).

.. _pytorch-grad-cam: https://github.com/jacobgil/pytorch-grad-cam
.. _shap: https://shap.readthedocs.io
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from thyronet.cnn import SkorchCNN, check_images
from thyronet.features import DeepFeatureExtractor
from thyronet.fusion import DualChannelFuser
from thyronet.schema import VIEW_COLUMNS

__all__ = [
    "GRADCAM_METHODS",
    "SHAP_ALGORITHMS",
    "GradCAMExplainer",
    "GradCAMResult",
    "GradCAMWarning",
    "ShapExplainer",
    "gradcam",
    "plot_gradcam",
    "plot_gradcam_gallery",
    "plot_shap_bar",
    "plot_shap_summary",
    "plot_shap_waterfall",
    "shap_explain",
]

GRADCAM_METHODS = ("gradcam", "gradcam++", "hirescam", "xgradcam", "layercam")
"""CAM variants of :func:`gradcam` (``method=``), all from pytorch-grad-cam."""

SHAP_ALGORITHMS = ("auto", "tree", "linear", "permutation")
"""Explainers of :class:`ShapExplainer` (``algorithm=``)."""


class GradCAMWarning(UserWarning):
    """The Grad-CAM heatmaps carry little or no spatial information."""


# =====================================================================================
# Grad-CAM
# =====================================================================================
def _cam_class(method: str):
    import pytorch_grad_cam as pgc

    classes = {
        "gradcam": pgc.GradCAM,
        "gradcam++": pgc.GradCAMPlusPlus,
        "hirescam": pgc.HiResCAM,
        "xgradcam": pgc.XGradCAM,
        "layercam": pgc.LayerCAM,
    }
    if method not in classes:
        raise ValueError(
            f"unknown Grad-CAM method {method!r}; choose one of {list(GRADCAM_METHODS)}"
        )
    return classes[method]


def _unwrap_cnn(step) -> SkorchCNN | None:
    """The fitted SkorchCNN a step is or holds (FrozenEstimator, DeepFeatureExtractor)."""
    from sklearn.frozen import FrozenEstimator

    if isinstance(step, FrozenEstimator):
        step = step.estimator
    if isinstance(step, SkorchCNN):
        return step
    if isinstance(step, DeepFeatureExtractor):
        cnn = getattr(step, "cnn_", None)
        if cnn is None:
            raise NotFittedError(
                "the DeepFeatureExtractor holding the CNN is not fitted; fit "
                "the model before explaining it"
            )
        return cnn
    return None


def _select_columns(X, columns):
    if isinstance(columns, str) or (
        isinstance(columns, Sequence) and all(isinstance(c, str) for c in columns)
    ):
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"the model selects columns {columns!r} by name; pass a DataFrame")
        return X[columns]
    if isinstance(X, pd.DataFrame):
        return X.iloc[:, columns]
    return np.asarray(X)[:, columns]


@dataclass
class _CNNRoute:
    """How input rows reach a CNN: a preprocessing function, the CNN, the fuser."""

    cnn: SkorchCNN
    preprocess: Callable[[Any], np.ndarray] | None
    fuser: DualChannelFuser | None


def _find_cnn(model) -> _CNNRoute | None:
    cnn = _unwrap_cnn(model)
    if cnn is not None:
        return _CNNRoute(cnn, None, None)
    if isinstance(model, Pipeline):
        for i, (_, step) in enumerate(model.steps):
            cnn = _unwrap_cnn(step)
            if cnn is not None:
                head = model[:i] if i > 0 else None
                fusers = [s for _, s in model.steps[:i] if isinstance(s, DualChannelFuser)]
                return _CNNRoute(
                    cnn, None if head is None else head.transform, fusers[-1] if fusers else None
                )
            if isinstance(step, ColumnTransformer):
                found = _find_cnn_in_columns(step, model[:i] if i > 0 else None)
                if found is not None:
                    return found
        return None
    if isinstance(model, ColumnTransformer):
        return _find_cnn_in_columns(model, None)
    return None


def _find_cnn_in_columns(ct: ColumnTransformer, head) -> _CNNRoute | None:
    check_is_fitted(ct, "transformers_")
    for _, transformer, columns in ct.transformers_:
        if isinstance(transformer, str):
            continue
        inner = _find_cnn(transformer)
        if inner is None:
            continue

        def preprocess(X, _inner=inner, _columns=columns):
            if head is not None:
                X = head.transform(X)
            X = _select_columns(X, _columns)
            return X if _inner.preprocess is None else _inner.preprocess(X)

        return _CNNRoute(inner.cnn, preprocess, inner.fuser)
    return None


def _resolve_target_layer(cnn: SkorchCNN, target_layer: str | torch.nn.Module | None):
    module = cnn.net_.module_
    if isinstance(target_layer, torch.nn.Module):
        if not any(m is target_layer for m in module.modules()):
            raise ValueError("target_layer is a module that is not part of this CNN")
        name = next(n for n, m in module.model.named_modules() if m is target_layer)
        return name, target_layer
    name = cnn.backbone_.target_layer_name if target_layer is None else str(target_layer)
    try:
        return name, module.model.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in module.model.named_children()]
        raise ValueError(
            f"the CNN (backbone {cnn.backbone_.name!r}) has no layer {name!r} "
            f"to target; its top-level layers are {names}"
        ) from None


def _target_sign(cnn: SkorchCNN, target) -> int:
    """+1 for the positive class (``classes_[1]``), -1 for the negative one."""
    if isinstance(target, str) and target in ("positive", "negative"):
        return 1 if target == "positive" else -1
    classes = list(np.asarray(cnn.classes_).tolist())
    if target in classes:
        return 1 if classes.index(target) == 1 else -1
    raise ValueError(
        f"target must be 'positive', 'negative' or a class label of the model "
        f"{classes}; got {target!r}"
    )


def _run_cam(
    cnn: SkorchCNN,
    images,
    *,
    layer: torch.nn.Module,
    sign: int,
    method: str,
    batch_size: int,
    verbose: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps ``(n, H, W)`` and logits ``(n,)`` of ``images`` (batched)."""
    from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget

    module = cnn.net_.module_
    device = next(module.parameters()).device
    n, _, height, width = images.shape
    heatmaps = np.empty((n, height, width), dtype=np.float32)
    logits = np.empty(n, dtype=np.float32)
    # One logit: BinaryClassifierOutputTarget(1) back-propagates +logit (evidence for
    # classes_[1]), BinaryClassifierOutputTarget(0) back-propagates -logit.
    target = BinaryClassifierOutputTarget(1 if sign > 0 else 0)
    was_training = module.training
    cam = _cam_class(method)(model=module, target_layers=[layer])
    shapes: list[tuple[int, ...]] = []
    shapes_hook = layer.register_forward_hook(
        lambda _m, _i, out: shapes.append(tuple(out.shape[2:])) if not shapes else None
    )
    try:
        with torch.enable_grad():
            for start in tqdm(
                range(0, n, batch_size), desc="Grad-CAM", unit="batch", disable=not verbose
            ):
                batch = np.ascontiguousarray(images[start : start + batch_size], dtype=np.float32)
                x = torch.from_numpy(batch).to(device)
                # Gradients reach the target layer even if the body's weights are frozen.
                x.requires_grad_(True)
                out = cam(input_tensor=x, targets=[target] * len(x))
                heatmaps[start : start + len(x)] = out
                logits[start : start + len(x)] = (
                    cam.outputs.detach().float().reshape(len(x), -1)[:, 0].cpu().numpy()
                )
    finally:
        shapes_hook.remove()
        cam.activations_and_grads.release()
        module.zero_grad(set_to_none=True)
        module.train(was_training)
    if shapes and int(np.prod(shapes[0])) == 1:
        warnings.warn(
            f"the Grad-CAM target layer has a 1x1 activation map for {height}x{width} inputs "
            f"(backbone {cnn.backbone_.name!r}): the heatmaps carry no spatial information "
            "(they are all 0). Use larger images or an earlier target_layer.",
            GradCAMWarning,
            stacklevel=3,
        )
    return np.clip(heatmaps, 0.0, 1.0, out=heatmaps), logits


def gradcam(
    model,
    X,
    *,
    target="positive",
    target_layer: str | None = None,
    method: str = "gradcam",
    batch_size: int = 16,
    verbose: bool = False,
) -> np.ndarray:
    """Grad-CAM heatmaps of a fitted CNN (or a model holding one) for the rows of ``X``.

    Parameters
    ----------
    model : SkorchCNN, Pipeline or DeepFeatureExtractor
        A fitted :class:`~thyronet.SkorchCNN` (then ``X`` is the ``(n, C, H, W)``
        image array), or a fitted pipeline holding one: the DL models of
        :func:`~thyronet.pipelines.make_dl_model` (fuser -> CNN) or the combined
        model of :func:`~thyronet.pipelines.make_combined_model`, whose deep
        features come from the fused CNN (then ``X`` is the cohort table and the
        steps before the CNN produce its input). The heatmap explains the CNN's
        logit, not a later classifier.
    X : array-like or DataFrame
        What ``model`` takes.
    target : {"positive", "negative"} or class label, default="positive"
        Class whose evidence is shown: ``"positive"`` (``classes_[1]``, CLNM)
        follows the gradient of the logit, ``"negative"`` that of minus the logit.
    target_layer : str or None
        Layer to target, relative to the backbone's model; ``None`` uses the one
        its backbone entry names (``Backbone.target_layer_name``).
    method : {"gradcam", "gradcam++", "hirescam", "xgradcam", "layercam"}
        CAM variant.
    batch_size : int, default=16
        Images per forward/backward pass.
    verbose : bool, default=False
        Show a progress bar over batches.

    Returns
    -------
    ndarray of shape (n, H, W), float32
        One heatmap per image over the CNN's input (the fused image), each scaled
        to [0, 1] (all 0 where no location supports the target).

    Warns
    -----
    GradCAMWarning
        The target layer's activation map is 1x1 for these inputs (e.g. a tiny
        backbone on 32 px images): the heatmaps are all 0.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet import SkorchCNN
    >>> from thyronet.explain import gradcam
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((8, 2, 64, 64), dtype=np.float32)
    >>> cnn = SkorchCNN("test_resnet", max_epochs=1, batch_size=4, validation_fraction=None,
    ...                 early_stopping=False, verbose=0, random_state=0).fit(X, np.arange(8) % 2)
    >>> heat = gradcam(cnn, X)
    >>> heat.shape, heat.dtype, bool(heat.min() >= 0 and heat.max() <= 1)
    ((8, 64, 64), dtype('float32'), True)
    """
    return GradCAMExplainer(
        model, target_layer=target_layer, method=method, batch_size=batch_size, verbose=verbose
    ).heatmaps(X, target=target)


@dataclass(frozen=True)
class GradCAMResult:
    """Grad-CAM of a set of patients, ready to plot.

    Attributes
    ----------
    heatmaps : ndarray of shape (n, H, W), float32
        Heatmaps over the CNN's input image, in [0, 1].
    views : ndarray of shape (n, V, S, S), float32
        Each patient's view images (ROI crops as the fuser prepares them), or the
        input's channels when the model takes image arrays.
    view_names : tuple of str
        Names of the ``V`` views.
    view_heatmaps : ndarray of shape (n, V, S, S), float32
        The heatmap laid on each view: the same map on every view the model uses
        (split per view for side-by-side fusions such as ``mosaic``), NaN on a
        view the model does not use.
    probabilities : ndarray of shape (n,)
        The CNN's predicted probability of ``classes_[1]``.
    target : str
        ``"positive"`` or ``"negative"``.
    layer : str
        The targeted layer.
    """

    heatmaps: np.ndarray
    views: np.ndarray
    view_names: tuple[str, ...]
    view_heatmaps: np.ndarray
    probabilities: np.ndarray
    target: str
    layer: str

    def __len__(self) -> int:
        return int(self.heatmaps.shape[0])


class GradCAMExplainer:
    """Grad-CAM of a fitted CNN, or of the CNN inside a fitted model.

    Parameters
    ----------
    model : SkorchCNN, Pipeline or DeepFeatureExtractor
        As in :func:`gradcam`.
    target_layer : str or None
        Layer to target (relative to the backbone's model); ``None`` uses the one
        the backbone entry names.
    method : {"gradcam", "gradcam++", "hirescam", "xgradcam", "layercam"}
        CAM variant.
    batch_size : int, default=16
        Images per forward/backward pass.
    verbose : bool, default=False
        Show a progress bar over batches.

    Attributes
    ----------
    cnn : SkorchCNN
        The explained CNN.
    fuser : DualChannelFuser or None
        The fuser that prepares its input (``None`` when the model takes arrays).
    target_layer_name : str
        Name of the targeted layer, relative to the backbone's model.
    target_layer : torch.nn.Module
        The targeted layer.

    Examples
    --------
    >>> from thyronet.datasets import make_ptmc_cohort
    >>> from thyronet.explain import GradCAMExplainer
    >>> from thyronet.pipelines import make_dl_model
    >>> cohort = make_ptmc_cohort(n_patients=24, image_size=64, random_state=0)
    >>> model = make_dl_model(image_size=64, backbone="test_resnet", max_epochs=1,
    ...                       batch_size=8, validation_fraction=None, early_stopping=False,
    ...                       verbose=0, random_state=0).fit(cohort, cohort["clnm"])
    >>> explainer = GradCAMExplainer(model)
    >>> explainer.target_layer_name
    'layer4'
    >>> result = explainer.explain(cohort.head(3))
    >>> result.heatmaps.shape, result.views.shape, result.view_names
    ((3, 64, 64), (3, 2, 64, 64), ('longitudinal', 'transverse'))
    """

    def __init__(
        self,
        model,
        *,
        target_layer: str | None = None,
        method: str = "gradcam",
        batch_size: int = 16,
        verbose: bool = False,
    ) -> None:
        route = _find_cnn(model)
        if route is None:
            raise TypeError(
                "Grad-CAM needs a fitted SkorchCNN or a model holding one (a make_dl_model() "
                f"or make_combined_model() pipeline); got {type(model).__name__}"
            )
        check_is_fitted(route.cnn, "net_")
        _cam_class(method)  # an unknown method fails here
        if not isinstance(batch_size, Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.model = model
        self.cnn = route.cnn
        self.fuser = route.fuser
        self._preprocess = route.preprocess
        self.target_layer_name, self.target_layer = _resolve_target_layer(route.cnn, target_layer)
        self.method = method
        self.batch_size = int(batch_size)
        self.verbose = verbose

    def images(self, X) -> np.ndarray:
        """The CNN's input for ``X``: ``(n, C, H, W)`` float32 (fused images)."""
        images = X if self._preprocess is None else self._preprocess(X)
        return check_images(images, n_channels=self.cnn.n_features_in_)

    def _compute(self, X, target) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sign = _target_sign(self.cnn, target)
        images = self.images(X)
        heat, logits = _run_cam(
            self.cnn,
            images,
            layer=self.target_layer,
            sign=sign,
            method=self.method,
            batch_size=self.batch_size,
            verbose=self.verbose,
        )
        return images, heat, logits

    def heatmaps(self, X, *, target="positive") -> np.ndarray:
        """Heatmaps ``(n, H, W)`` float32 in [0, 1] over the CNN's input (see :func:`gradcam`)."""
        return self._compute(X, target)[1]

    def __call__(self, X, *, target="positive") -> np.ndarray:
        """Same as :meth:`heatmaps`."""
        return self.heatmaps(X, target=target)

    def explain(self, X, *, target="positive") -> GradCAMResult:
        """Heatmaps with each patient's views, the heatmap on each view and the probabilities.

        Parameters
        ----------
        X : array-like or DataFrame
            What the model takes (a cohort table for pipelines).
        target : {"positive", "negative"} or class label, default="positive"

        Returns
        -------
        GradCAMResult
        """
        images, heat, logits = self._compute(X, target)
        views, names, used = self._views(X, images)
        view_heat = _heatmap_per_view(heat, views.shape[-2:], used, len(names))
        proba = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        sign = _target_sign(self.cnn, target)
        return GradCAMResult(
            heat,
            views,
            names,
            view_heat,
            proba,
            "positive" if sign > 0 else "negative",
            self.target_layer_name,
        )

    def _views(self, X, images: np.ndarray) -> tuple[np.ndarray, tuple[str, ...], list[int]]:
        """View images for display, their names and the indices of the views the model uses."""
        if self.fuser is None:
            n_channels = images.shape[1]
            names = (
                tuple(VIEW_COLUMNS)
                if n_channels == len(VIEW_COLUMNS)
                else tuple(f"channel {k}" for k in range(n_channels))
            )
            return np.asarray(images, dtype=np.float32), names, list(range(n_channels))
        fuser = self.fuser
        names = tuple(fuser.views)
        stack = clone(fuser).set_params(strategy="stack", output="array", verbose=0)
        frame = X
        if isinstance(X, pd.DataFrame):
            present = [v for v in names if v in X.columns]
            if present != list(names):  # show the views the model reads
                names = tuple(fuser.views_)
                stack.set_params(views=names)
        views = stack.fit(frame).transform(frame)
        used = [names.index(v) for v in fuser.views_ if v in names]
        return views, names, used


def _heatmap_per_view(
    heat: np.ndarray, view_shape: tuple[int, int], used: list[int], n_views: int
) -> np.ndarray:
    """Lay a heatmap over the CNN's input on each view it comes from (NaN elsewhere)."""
    n = heat.shape[0]
    size_h, size_w = view_shape
    out = np.full((n, n_views, size_h, size_w), np.nan, dtype=np.float32)
    k = len(used)
    h, w = heat.shape[1:]
    if (h, w) == (size_h, size_w):
        parts = [heat] * k
    elif k > 1 and (h, w) == (size_h, k * size_w):  # views side by side (mosaic)
        parts = [heat[:, :, j * size_w : (j + 1) * size_w] for j in range(k)]
    elif k > 1 and (h, w) == (k * size_h, size_w):  # views stacked vertically
        parts = [heat[:, j * size_h : (j + 1) * size_h] for j in range(k)]
    else:  # another geometry: resize onto each view
        resized = torch.nn.functional.interpolate(
            torch.from_numpy(np.ascontiguousarray(heat))[:, None],
            size=(size_h, size_w),
            mode="bilinear",
            align_corners=False,
        )[:, 0].numpy()
        parts = [resized] * k
    for j, part in zip(used, parts, strict=True):
        out[:, j] = part
    return out


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
            ax.set_title(f"Grad-CAM: {name}", fontsize=9)
    return mappable


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
    from matplotlib.figure import Figure

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
    from matplotlib.figure import Figure

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
    fig.suptitle(f"Grad-CAM ({result.target} class, layer {result.layer})", fontsize=10)
    return fig


# =====================================================================================
# SHAP
# =====================================================================================
def _import_shap():
    with warnings.catch_warnings():
        # shap's colour maps use Colormap.set_bad/set_over/set_under, which
        # matplotlib >= 3.11 marks as pending deprecation; harmless.
        warnings.filterwarnings(
            "ignore",
            message=r"The set_(bad|over|under) function",
            category=PendingDeprecationWarning,
        )
        import shap
    return shap


def _is_lightgbm(clf) -> bool:
    return type(clf).__module__.split(".")[0] == "lightgbm"


def _tree_model(clf) -> bool:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.tree import DecisionTreeClassifier

    if isinstance(
        clf,
        (
            DecisionTreeClassifier,
            RandomForestClassifier,
            ExtraTreesClassifier,
            GradientBoostingClassifier,
        ),
    ):
        return True
    return type(clf).__module__.split(".")[0] in ("lightgbm", "xgboost", "catboost")


def _linear_model(clf) -> bool:
    from sklearn.linear_model._base import LinearClassifierMixin

    coef = getattr(clf, "coef_", None)
    return (
        isinstance(clf, LinearClassifierMixin)
        and coef is not None
        and np.ndim(coef) == 2
        and np.shape(coef)[0] == 1
    )


def _classifier_of(final) -> tuple[Any, str]:
    """The fitted classifier a final step is or selected, and its name."""
    from thyronet.classifier_selection import ClassifierSelector

    if isinstance(final, ClassifierSelector):
        check_is_fitted(final, "best_estimator_")
        return final.best_estimator_, final.best_name_
    check_is_fitted(final)
    return final, type(final).__name__


def _log_odds(clf, X) -> np.ndarray:
    """Log-odds of ``classes_[1]`` (the margin tree and linear explainers decompose)."""
    if _is_lightgbm(clf):
        return np.asarray(clf.predict(X, raw_score=True), dtype=np.float64)
    if hasattr(clf, "decision_function") and _linear_model(clf):
        return np.asarray(clf.decision_function(X), dtype=np.float64).ravel()
    if hasattr(clf, "predict_log_proba"):
        with np.errstate(divide="ignore"):
            lp = np.asarray(clf.predict_log_proba(X), dtype=np.float64)
        lp = np.clip(lp, np.log(1e-300), 0.0)
        return lp[:, 1] - lp[:, 0]
    p = np.clip(np.asarray(clf.predict_proba(X), dtype=np.float64)[:, 1], 1e-15, 1 - 1e-15)
    return np.log(p) - np.log1p(-p)


class ShapExplainer:
    """SHAP explainer of a fitted tabular model's classifier, chosen to fit the classifier.

    The rows are transformed through the model up to its classifier (for the
    combined model: features, scaling, P-value filter, LASSO), and the classifier
    chosen by :class:`~thyronet.ClassifierSelector` is explained on those
    features, with the names ``model[:-1].get_feature_names_out()`` gives them.

    ``algorithm="auto"`` picks:

    - ``"tree"``: :class:`shap.TreeExplainer` (exact, path-dependent) for LightGBM,
      XGBoost, CatBoost and scikit-learn tree ensembles;
    - ``"linear"``: :class:`shap.LinearExplainer` (interventional, on the
      background) for binary linear models such as logistic regression;
    - ``"permutation"``: :class:`shap.PermutationExplainer` (model-agnostic; the
      values add up exactly to the output) for naive Bayes and any other classifier.

    Values are in log-odds of ``classes_[1]`` (probability for forests, which
    average probabilities); :meth:`model_output` returns the explained quantity,
    so ``values.sum(1) + base_values == model_output(X)``.

    Parameters
    ----------
    model : Pipeline or classifier
        A fitted pipeline ending in a classifier or a
        :class:`~thyronet.ClassifierSelector` (the combined or clinical model), or
        a fitted classifier (then rows are already its features).
    background : DataFrame or array-like
        Rows (what ``model`` takes) that represent the population: the baseline of
        the linear and permutation explainers. Usually the training cohort.
    algorithm : {"auto", "tree", "linear", "permutation"}, default="auto"
    feature_names : sequence of str, optional
        Names of the classifier's features when they cannot be read from the model.
    max_background : int, default=100
        Background rows kept (a random subset when there are more).
    max_evals : int or "auto", default="auto"
        Model evaluations per row of the permutation explainer (at least
        ``2 * n_features + 1``, one antithetic permutation); ``"auto"`` is
        ``10 * (2 * n_features + 1)``: ten permutations.
    random_state : int, default=0
        Seeds the background subset and the permutations.
    verbose : bool, default=False
        Show shap's progress bar for slow explanations.

    Attributes
    ----------
    kind : str
        ``"tree"``, ``"linear"`` or ``"permutation"``.
    explainer : shap.Explainer
        The shap explainer.
    classifier : estimator
        The explained classifier (the selected one for a ClassifierSelector).
    classifier_name : str
        Its name (``best_name_`` of a ClassifierSelector).
    feature_names : ndarray of str
        Names of the features the classifier takes.
    output : str
        ``"log-odds"`` or ``"probability"``: the unit of the SHAP values.
    background : ndarray of shape (n_background, n_features)
        The background, as classifier features.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from thyronet.explain import ShapExplainer
    >>> X, y = make_classification(n_samples=100, n_features=4, random_state=0)
    >>> explainer = ShapExplainer(LogisticRegression().fit(X, y), X)
    >>> explainer.kind, explainer.output
    ('linear', 'log-odds')
    >>> explanation = explainer(X[:5])
    >>> explanation.values.shape
    (5, 4)
    """

    def __init__(
        self,
        model,
        background,
        *,
        algorithm: str = "auto",
        feature_names: Sequence[str] | None = None,
        max_background: int = 100,
        max_evals: int | str = "auto",
        random_state: int = 0,
        verbose: bool = False,
    ) -> None:
        if algorithm not in SHAP_ALGORITHMS:
            raise ValueError(
                f"unknown SHAP algorithm {algorithm!r}; choose one of {list(SHAP_ALGORITHMS)}"
            )
        if not isinstance(max_background, Integral) or max_background < 1:
            raise ValueError(f"max_background must be a positive integer, got {max_background!r}")
        if not (max_evals == "auto" or (isinstance(max_evals, Integral) and max_evals > 0)):
            raise ValueError(f"max_evals must be 'auto' or a positive integer, got {max_evals!r}")
        self.model = model
        if isinstance(model, Pipeline):
            final = model.steps[-1][1]
            self._head = model[:-1] if len(model.steps) > 1 else None
        else:
            final, self._head = model, None
        if not hasattr(final, "predict_proba"):
            raise TypeError(
                f"SHAP explains a classifier with predict_proba; the model ends in "
                f"{type(final).__name__}"
            )
        self.classifier, self.classifier_name = _classifier_of(final)
        classes = getattr(self.classifier, "classes_", None)
        if classes is None or len(classes) != 2:
            raise ValueError(
                "SHAP explanations here are for binary classifiers; the classifier "
                f"has classes {None if classes is None else list(classes)}"
            )
        self.classes_ = np.asarray(classes)
        self._columns = getattr(self.classifier, "feature_names_in_", None)
        features = self.transform(background)
        if len(features) == 0:
            raise ValueError("the background has no rows")
        self.feature_names = self._feature_names(final, feature_names, features.shape[1])
        rng = np.random.default_rng(random_state)
        if len(features) > max_background:
            features = features[np.sort(rng.choice(len(features), max_background, replace=False))]
        self.background = features
        self.random_state = random_state
        self.verbose = verbose
        self.max_evals = max_evals
        self.algorithm = algorithm
        self.kind = self._choose(algorithm)
        self.explainer, self.output = self._build()

    # -- features ---------------------------------------------------------------------
    def _feature_names(self, final, given, n_features: int) -> np.ndarray:
        if given is not None:
            names = np.asarray(list(given), dtype=object)
        elif self._head is not None:
            try:
                names = np.asarray(self._head.get_feature_names_out(), dtype=object)
            except (AttributeError, ValueError, TypeError, NotFittedError):
                names = getattr(final, "feature_names_in_", None)
        else:
            names = getattr(final, "feature_names_in_", None)
        if names is None:
            names = np.asarray([f"x{k}" for k in range(n_features)], dtype=object)
        if len(names) != n_features:
            raise ValueError(
                f"{len(names)} feature names for {n_features} features reaching the classifier"
            )
        return np.asarray([str(n) for n in names], dtype=object)

    def transform(self, X) -> np.ndarray:
        """The features that reach the classifier, ``(n, n_features)`` float64."""
        features = X if self._head is None else self._head.transform(X)
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2:
            raise ValueError(
                f"SHAP explains tabular classifiers, whose input is 2-D; this "
                f"model's classifier takes shape {features.shape} (for a CNN, "
                "use Grad-CAM: thyronet.explain.gradcam)"
            )
        return features

    def _frame(self, features: np.ndarray):
        """Features in the form the classifier was fitted on (named columns or array)."""
        if self._columns is not None:
            return pd.DataFrame(features, columns=list(self._columns))
        return features

    def model_output(self, X, *, transformed: bool = False) -> np.ndarray:
        """The quantity the SHAP values decompose, for rows ``X``.

        Parameters
        ----------
        X : DataFrame or array-like
            Rows as the model takes them (or classifier features with
            ``transformed=True``).
        transformed : bool, default=False

        Returns
        -------
        ndarray of shape (n,)
            Log-odds (or probability, see ``output``) of ``classes_[1]``.
        """
        features = np.asarray(X, dtype=np.float64) if transformed else self.transform(X)
        data = self._frame(features)
        if self.output == "probability":
            return np.asarray(self.classifier.predict_proba(data), dtype=np.float64)[:, 1]
        return _log_odds(self.classifier, data)

    # -- explainers -------------------------------------------------------------------
    def _choose(self, algorithm: str) -> str:
        if algorithm != "auto":
            return algorithm
        if _tree_model(self.classifier):
            return "tree"
        if _linear_model(self.classifier):
            return "linear"
        return "permutation"

    def _build(self):
        shap = _import_shap()
        clf = self.classifier
        if self.kind == "tree":
            try:
                explainer = shap.TreeExplainer(clf)
            except Exception as exc:
                raise ValueError(
                    f"shap's TreeExplainer cannot explain the classifier "
                    f"{self.classifier_name!r} ({type(clf).__name__}): {exc}; use "
                    "algorithm='permutation'"
                ) from exc
            tree_output = getattr(explainer.model, "tree_output", "log_odds")
            return explainer, ("probability" if tree_output == "probability" else "log-odds")
        if self.kind == "linear":
            if not _linear_model(clf):
                raise ValueError(
                    f"algorithm='linear' needs a binary linear classifier (coef_ "
                    f"of one row); {self.classifier_name!r} is "
                    f"{type(clf).__name__}; use algorithm='permutation'"
                )
            coef = np.asarray(clf.coef_, dtype=np.float64)[0]
            intercept = float(np.ravel(clf.intercept_)[0])
            masker = shap.maskers.Independent(self.background, max_samples=len(self.background))
            return shap.LinearExplainer((coef, intercept), masker), "log-odds"

        def f(features: np.ndarray) -> np.ndarray:
            return _log_odds(clf, self._frame(np.asarray(features, dtype=np.float64)))

        masker = shap.maskers.Independent(self.background, max_samples=len(self.background))
        return shap.PermutationExplainer(f, masker, seed=self.random_state), "log-odds"

    def __call__(self, X, *, transformed: bool = False):
        """Explain rows ``X``.

        Parameters
        ----------
        X : DataFrame or array-like
            Rows as the model takes them (the cohort table for the combined model),
            or classifier features with ``transformed=True``.
        transformed : bool, default=False

        Returns
        -------
        shap.Explanation
            ``values`` ``(n, n_features)``, ``base_values`` ``(n,)``, ``data`` (the
            classifier's features), ``feature_names``; ``display_data`` holds the
            features before standardisation when the model scales them (so
            waterfalls show e.g. the nodule size in mm).
        """
        shap = _import_shap()
        features = np.asarray(X, dtype=np.float64) if transformed else self.transform(X)
        if features.ndim != 2 or features.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected {len(self.feature_names)} classifier features; got "
                f"shape {features.shape}"
            )
        if self.kind == "tree":
            raw = self.explainer(self._frame(features), check_additivity=True)
            values = np.asarray(raw.values, dtype=np.float64)
            base = np.asarray(raw.base_values, dtype=np.float64)
            if values.ndim == 3:  # one column per class: keep classes_[1]
                values, base = values[..., 1], base[..., 1]
            base = np.broadcast_to(base.reshape(-1), (len(features),)).copy()
        elif self.kind == "linear":
            raw = self.explainer(features)
            values = np.asarray(raw.values, dtype=np.float64)
            base = np.broadcast_to(
                np.asarray(raw.base_values, dtype=np.float64).reshape(-1), (len(features),)
            ).copy()
        else:
            p = features.shape[1]
            evals = (
                10 * (2 * p + 1)
                if self.max_evals == "auto"
                else max(int(self.max_evals), 2 * p + 1)
            )
            raw = self.explainer(features, max_evals=evals, silent=not self.verbose)
            values = np.asarray(raw.values, dtype=np.float64)
            base = np.asarray(raw.base_values, dtype=np.float64).reshape(-1)
        return shap.Explanation(
            values=values,
            base_values=base,
            data=features,
            display_data=self._display_data(features),
            feature_names=list(self.feature_names),
        )

    def _display_data(self, features: np.ndarray) -> np.ndarray | None:
        """Features before standardisation, when a scaler followed only by selectors
        precedes the classifier (the combined and clinical models)."""
        from sklearn.feature_selection import SelectorMixin
        from sklearn.preprocessing import StandardScaler

        if self._head is None:
            return None
        steps = [s for _, s in self._head.steps if s not in (None, "passthrough")]
        scalers = [i for i, s in enumerate(steps) if isinstance(s, StandardScaler)]
        if not scalers or not all(isinstance(s, SelectorMixin) for s in steps[scalers[-1] + 1 :]):
            return None
        scaler = steps[scalers[-1]]
        index = np.arange(scaler.n_features_in_)
        for selector in steps[scalers[-1] + 1 :]:
            index = index[selector.get_support()]
        scale = scaler.scale_[index] if scaler.scale_ is not None else 1.0
        mean = scaler.mean_[index] if scaler.mean_ is not None else 0.0
        return features * scale + mean


def shap_explain(
    model,
    X,
    *,
    background=None,
    algorithm: str = "auto",
    max_background: int = 100,
    max_evals: int | str = "auto",
    random_state: int = 0,
    verbose: bool = False,
):
    """SHAP values of a fitted combined (or clinical) model for the rows of ``X``.

    Parameters
    ----------
    model : Pipeline or classifier
        A fitted pipeline ending in a :class:`~thyronet.ClassifierSelector` or a
        classifier (see :class:`ShapExplainer`).
    X : DataFrame or array-like
        Rows to explain (the cohort table for the combined model).
    background : DataFrame or array-like, optional
        Population baseline (usually the training cohort); ``X`` by default.
    algorithm : {"auto", "tree", "linear", "permutation"}, default="auto"
        ``"auto"`` follows the classifier: tree for LightGBM, linear for logistic
        regression, permutation for naive Bayes and others.
    max_background : int, default=100
    max_evals : int or "auto", default="auto"
    random_state : int, default=0
    verbose : bool, default=False

    Returns
    -------
    shap.Explanation
        Values in log-odds of ``classes_[1]`` (see :class:`ShapExplainer`), one
        row per row of ``X``, named with ``model[:-1].get_feature_names_out()``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.naive_bayes import GaussianNB
    >>> from thyronet.explain import shap_explain
    >>> X, y = make_classification(n_samples=80, n_features=3, n_redundant=0,
    ...                            random_state=0)
    >>> explanation = shap_explain(GaussianNB().fit(X, y), X[:4], background=X)
    >>> explanation.values.shape, explanation.feature_names
    ((4, 3), ['x0', 'x1', 'x2'])
    """
    explainer = ShapExplainer(
        model,
        X if background is None else background,
        algorithm=algorithm,
        max_background=max_background,
        max_evals=max_evals,
        random_state=random_state,
        verbose=verbose,
    )
    return explainer(X)


def _new_pyplot_figure(width: float, height: float):
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height))


def _finish(fig, xlabel: str | None = None):
    import matplotlib.pyplot as plt

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


def plot_shap_waterfall(explanation, index: int = 0, *, max_display: int = 15):
    """How one patient's features move the prediction from the baseline (waterfall).

    Parameters
    ----------
    explanation : shap.Explanation
        Several rows (then ``index`` picks one) or a single row.
    index : int, default=0
        The patient (row of ``explanation``).
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
    import matplotlib.pyplot as plt

    fig = _new_pyplot_figure(8.0, 4.0)
    plt.figure(fig.number)  # shap draws on the current figure
    shap.plots.waterfall(row, max_display=max_display, show=False)
    width, height = fig.get_size_inches()
    fig.set_size_inches(width, max(height, 3.0) + 0.6)
    fig.suptitle(f"SHAP waterfall (patient {index})", fontsize=11)
    return _finish(fig)
