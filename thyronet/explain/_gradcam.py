"""Grad-CAM of a fitted CNN: heatmaps over its input and over each patient's views.

Grad-CAM (Selvaraju et al. 2017, through pytorch-grad-cam) targets the layer the
CNN's backbone entry names (``Backbone.target_layer_name``) and explains the
single output logit: the heatmap of the positive class (``classes_[1]``) follows
the gradient of the logit, the one of the negative class that of minus the logit.
:func:`gradcam` returns the heatmaps; :class:`GradCAMExplainer` also lays them on
each view (:class:`GradCAMResult`), ready for :mod:`thyronet.explain._plots`, masked
to the image (the constant padding that squares an ROI carries no heat).

A channel-stacked (``stack``) model has one map over both channels: its first
convolution mixes the views pixel by pixel, so that map cannot say which view drove
a prediction. ``explain(X, per_view=True)`` gives one map per view instead: the
Grad-CAM of the model shown that view alone, every other view's channel replaced by
its mean intensity (the baseline of :func:`~thyronet.explain.occlusion_by_view`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import pandas as pd
import pytorch_grad_cam as pgc
import torch
from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from thyronet.cnn import SkorchCNN, check_images
from thyronet.explain._route import find_cnn
from thyronet.schema import VIEW_COLUMNS

GRADCAM_METHODS = ("gradcam", "gradcam++", "hirescam", "xgradcam", "layercam")
"""CAM variants of :func:`gradcam` (``method=``), all from pytorch-grad-cam."""


class GradCAMWarning(UserWarning):
    """The Grad-CAM heatmaps carry little or no spatial information."""


def _cam_class(method: str):
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
                range(0, n, batch_size), desc="Grad-CAM", unit="batch", disable=not verbose or None
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
        (split per view for side-by-side fusions such as ``mosaic``; each view's own
        map with ``per_view``), NaN on a view the model does not use and on the
        padding around each view's image.
    probabilities : ndarray of shape (n,)
        The CNN's predicted probability of ``classes_[1]``.
    target : str
        ``"positive"`` or ``"negative"``.
    layer : str
        The targeted layer.
    per_view : bool, default=False
        Whether each view's map is that view's own (``explain(..., per_view=True)``).
    """

    heatmaps: np.ndarray
    views: np.ndarray
    view_names: tuple[str, ...]
    view_heatmaps: np.ndarray
    probabilities: np.ndarray
    target: str
    layer: str
    per_view: bool = False

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
        route = find_cnn(model)
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

    def explain(self, X, *, target="positive", per_view: bool = False) -> GradCAMResult:
        """Heatmaps with each patient's views, the heatmap on each view and the probabilities.

        Parameters
        ----------
        X : array-like or DataFrame
            What the model takes (a cohort table for pipelines).
        target : {"positive", "negative"} or class label, default="positive"
        per_view : bool, default=False
            One map per view: the Grad-CAM of the model shown that view alone, every
            other view's channel replaced by its per-image mean. It shows where in a
            view the network responds to that view, not how the views interact. Needs
            one input channel per view (fusion ``stack``).

        Returns
        -------
        GradCAMResult
            ``view_heatmaps`` is NaN on the padding around each view's image.

        Raises
        ------
        ValueError
            ``per_view=True`` for a model whose input does not have one channel per view.
        """
        images, heat, logits = self._compute(X, target)
        views, names, used = self._views(X, images)
        if per_view:
            view_heat = self._per_view(images, views.shape[-2:], used, len(names), target)
        else:
            view_heat = _heatmap_per_view(heat, views.shape[-2:], used, len(names))
        view_heat[~_content_mask(views)] = np.nan
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
            per_view=bool(per_view),
        )

    def _per_view(self, images, view_shape, used, n_views, target) -> np.ndarray:
        """Each used view's own map: the CAM with every other channel at its mean."""
        n, n_channels, height, width = images.shape
        if n_channels != len(used) or (height, width) != tuple(view_shape) or len(used) < 2:
            strategy = getattr(self.fuser, "strategy", "arrays")
            raise ValueError(
                "per_view Grad-CAM needs one input channel per view (fusion 'stack'); "
                f"this model's input has {n_channels} channel(s) of {height}x{width} for "
                f"{len(used)} view(s) of {view_shape[0]}x{view_shape[1]} (strategy "
                f"{strategy!r}). A side-by-side fusion ('mosaic') already gives one map per "
                "view with per_view=False."
            )
        out = np.full((n, n_views, height, width), np.nan, dtype=np.float32)
        means = images.mean(axis=(2, 3), keepdims=True)
        for channel, view in enumerate(used):
            alone = np.array(np.broadcast_to(means, images.shape), dtype=np.float32)
            alone[:, channel] = images[:, channel]
            out[:, view] = _run_cam(
                self.cnn,
                alone,
                layer=self.target_layer,
                sign=_target_sign(self.cnn, target),
                method=self.method,
                batch_size=self.batch_size,
                verbose=self.verbose,
            )[0]
        return out

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


def _content_mask(views: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """True on each view's image, False on the constant padding that squared it.

    :func:`thyronet.imaging.resize_square` pads an ROI with its minimum intensity:
    whole rows (top, bottom) or columns (left, right) at the image's minimum. Those
    runs from each border are masked; a constant image is kept whole.
    """
    mask = np.ones(views.shape, dtype=bool)
    for idx in np.ndindex(*views.shape[:-2]):
        image = views[idx]
        low = np.nanmin(image)
        if np.nanmax(image) - low <= tol:
            continue
        flat_rows = np.all(image - low <= tol, axis=1)
        flat_cols = np.all(image - low <= tol, axis=0)
        for flat, axis in ((flat_rows, 0), (flat_cols, 1)):
            top = int(np.argmin(flat))  # first row/column with content
            bottom = len(flat) - int(np.argmin(flat[::-1]))
            if axis == 0:
                mask[idx][:top] = False
                mask[idx][bottom:] = False
            else:
                mask[idx][:, :top] = False
                mask[idx][:, bottom:] = False
    return mask


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
