"""The paper's five models as plain scikit-learn pipelines.

- Model 1, DL_L: ``make_dl_model("longitudinal")`` -- fuse (longitudinal view) -> CNN
- Model 2, DL_C: ``make_dl_model("transverse")`` -- fuse (transverse view) -> CNN
- Model 3, DL_F: ``make_dl_model("fused")`` -- fuse (dual-channel) -> CNN
- Model 4, combined: ``make_combined_model()`` -- [fuse -> deep features -> PCA(64)]
  + clinical encoding -> scale -> P value -> LASSO -> classifier selection
- Model 5, clinical: ``make_clinical_model()`` -- clinical encoding -> scale ->
  P value -> LASSO -> classifier selection

Every model takes the whole cohort table as ``X`` (extra columns such as
``patient_id``, ``cohort`` or ``oracle_risk`` are ignored) and the label as ``y``.
The builders take the fuser's and the CNN's parameters as keyword arguments.
``memory=`` (a :class:`joblib.Memory` or a folder) caches the fitted transformer
steps, so that in :class:`~sklearn.model_selection.GridSearchCV` candidates that
differ only downstream of the CNN reuse the CNN fitted on their fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from thyronet.classifier_selection import ClassifierSelector
from thyronet.clinical import ClinicalEncoder
from thyronet.cnn import SkorchCNN
from thyronet.features import DeepFeatureExtractor
from thyronet.fusion import DualChannelFuser
from thyronet.schema import CLINICAL_COLUMNS, CohortError, roi_column
from thyronet.selection import LassoSelector, PValueSelector

__all__ = [
    "RowIndexPipeline",
    "make_clinical_model",
    "make_combined_model",
    "make_dl_model",
    "make_late_fusion_model",
]

VIEWS = {"fused": None, "longitudinal": "longitudinal", "transverse": "transverse"}
"""``view`` of :func:`make_dl_model` -> the fusion strategy it fixes (``None``: free)."""


class RowIndexPipeline(Pipeline):
    """A :class:`~sklearn.pipeline.Pipeline` whose DataFrame output keeps its input's row index.

    The image branch of the combined model goes from the cohort table through 4-D
    image arrays, which carry no row index, so with ``set_output(transform="pandas")``
    its features would come out with a fresh ``RangeIndex``. Beside the clinical
    branch (which keeps the table's index) a :class:`~sklearn.compose.ColumnTransformer`
    would then misalign the rows of any cohort whose index is not ``0..n-1`` (a
    train/validation subset, say). This pipeline gives a DataFrame result the index
    of the DataFrame it was given; everything else is a plain ``Pipeline``.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.preprocessing import FunctionTransformer, StandardScaler
    >>> from thyronet.pipelines import RowIndexPipeline
    >>> frame = pd.DataFrame({"a": [1.0, 2.0, 4.0]}, index=[10, 11, 12])
    >>> to_array = FunctionTransformer(lambda X: X.to_numpy(), feature_names_out="one-to-one")
    >>> steps = [("array", to_array), ("scale", StandardScaler())]
    >>> RowIndexPipeline(steps).set_output(transform="pandas").fit_transform(frame).index.tolist()
    [10, 11, 12]
    """

    @staticmethod
    def _reindexed(out, X):
        if isinstance(out, pd.DataFrame) and isinstance(X, pd.DataFrame) and len(out) == len(X):
            out.index = X.index
        return out

    @available_if(Pipeline._can_fit_transform)
    def fit_transform(self, X, y=None, **params):
        return self._reindexed(super().fit_transform(X, y, **params), X)

    @available_if(Pipeline._can_transform)
    def transform(self, X, **params):
        return self._reindexed(super().transform(X, **params), X)


@dataclass(frozen=True)
class CohortColumns:
    """Column selector for a :class:`~sklearn.compose.ColumnTransformer`.

    Returns the ``required`` columns, then those of ``optional`` that are present,
    and raises a :class:`~thyronet.datasets.CohortError` listing the required
    columns a frame lacks (rather than silently encoding nothing).

    Examples
    --------
    >>> import pandas as pd
    >>> from thyronet.pipelines import CohortColumns
    >>> select = CohortColumns(("longitudinal",), ("longitudinal_roi",), "the images")
    >>> select(pd.DataFrame(columns=["patient_id", "longitudinal"]))
    ['longitudinal']
    """

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    what: str = "columns"

    def __call__(self, X) -> list[str]:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"the model takes a cohort DataFrame; got {type(X).__name__}")
        missing = [c for c in self.required if c not in X.columns]
        if missing:
            raise CohortError(
                f"the cohort is missing column(s) {missing} ({self.what}); it has "
                f"{list(map(str, X.columns))}"
            )
        return [*self.required, *(c for c in self.optional if c in X.columns)]


def _param_names(estimator) -> set[str]:
    return set(estimator.get_params(deep=False))


def _split_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Route keyword arguments to the fuser and/or the CNN (names of both go to both)."""
    fuser_names, cnn_names = _param_names(DualChannelFuser()), _param_names(SkorchCNN())
    nested = ("optimizer__", "backbone__")
    unknown = sorted(
        k for k in params if k not in fuser_names | cnn_names and not k.startswith(nested)
    )
    if unknown:
        raise TypeError(
            f"unknown parameter(s) {unknown}; the fuser takes {sorted(fuser_names)} and the "
            f"CNN {sorted(cnn_names)} (plus optimizer__*/backbone__*)"
        )
    fuser = {k: v for k, v in params.items() if k in fuser_names}
    cnn = {k: v for k, v in params.items() if k in cnn_names or k.startswith(nested)}
    return fuser, cnn


def _cnn(cnn_params: dict[str, Any]) -> SkorchCNN:
    """``SkorchCNN`` with its parameters; nested ``optimizer__*``/``backbone__*`` via set_params."""
    nested = {k: v for k, v in cnn_params.items() if "__" in k}
    plain = {k: v for k, v in cnn_params.items() if "__" not in k}
    return SkorchCNN(**plain).set_params(**nested)


def _fuser(view: str, fuser_params: dict[str, Any]) -> DualChannelFuser:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {list(VIEWS)}; got {view!r}")
    fixed = VIEWS[view]
    if fixed is not None:
        if "strategy" in fuser_params:
            raise ValueError(
                f"view={view!r} fixes the fusion strategy to {fixed!r}; pass "
                "strategy only with view='fused'"
            )
        fuser_params = {**fuser_params, "strategy": fixed}
    return DualChannelFuser(**fuser_params)


def _image_columns(fuser: DualChannelFuser) -> CohortColumns:
    views = tuple(fuser.views)
    return CohortColumns(views, tuple(roi_column(v) for v in views), "ultrasound views")


def _tabular_steps() -> list[tuple[str, Any]]:
    return [
        ("scale", StandardScaler()),
        ("pvalue", PValueSelector()),
        ("lasso", LassoSelector()),
        ("classify", ClassifierSelector()),
    ]


def _prefit_extractor(cnn: SkorchCNN, size: int, cv):
    """The extractor of a fitted CNN: frozen as is, or cross-fitting its settings."""
    if cv is not None:
        # fit keeps the frozen CNN (for transform); fit_transform fine-tunes fold clones
        return DeepFeatureExtractor(FrozenEstimator(cnn), cv=cv)
    # A prefit extractor's fit only checks the channel count; freezing it keeps
    # clone() (ColumnTransformer, memory, grid searches) from discarding the CNN.
    probe = np.zeros((1, cnn.n_features_in_, size, size), dtype=np.float32)
    return FrozenEstimator(DeepFeatureExtractor(FrozenEstimator(cnn)).fit(probe))


def make_dl_model(view: str = "fused", *, memory=None, **params: Any) -> Pipeline:
    """Models 1-3: the CNN on the fused (DL_F) or a single view (DL_L, DL_C).

    Parameters
    ----------
    view : {"fused", "longitudinal", "transverse"}, default="fused"
        ``"fused"`` is the paper's dual-channel model (strategy ``"stack"`` unless
        ``strategy=`` says otherwise); the others fuse one view.
    memory : str, joblib.Memory or None
        Cache of the fused images (see :class:`~sklearn.pipeline.Pipeline`).
    **params
        Parameters of :class:`~thyronet.DualChannelFuser` (``image_size``,
        ``strategy``, ``roi_margin``, ...) and of :class:`~thyronet.SkorchCNN`
        (``backbone``, ``pretrained``, ``max_epochs``, ``lr``, ...). ``batch_size``
        and ``verbose`` go to both.

    Returns
    -------
    Pipeline
        Steps ``fuse`` and ``cnn``.

    Examples
    --------
    >>> from thyronet.pipelines import make_dl_model
    >>> model = make_dl_model("longitudinal", image_size=32, backbone="test_resnet")
    >>> model.named_steps["fuse"].strategy, model.named_steps["cnn"].backbone
    ('longitudinal', 'test_resnet')
    """
    fuser_params, cnn_params = _split_params(params)
    return Pipeline(
        [("fuse", _fuser(view, fuser_params)), ("cnn", _cnn(cnn_params))], memory=memory
    )


def make_late_fusion_model(*, weights=None, memory=None, **params: Any) -> VotingClassifier:
    """A dual-view model by late fusion: one CNN per view, their probabilities averaged.

    The paper's DL_F stacks the two views as channels of one image, so its first
    convolution mixes two unregistered planes pixel by pixel. Here each view gets
    its own CNN (DL_L and DL_C of :func:`make_dl_model`, same parameters) and
    scikit-learn's soft-voting :class:`~sklearn.ensemble.VotingClassifier` averages
    their predicted probabilities. On the known-truth benchmark
    (``benchmarks/bench_known_truth.py``, 2,000 training patients, 5 seeds) it beats
    the stacked model by 0.048 AUC (95% CI 0.028 to 0.067) on the same centre;
    ``stack`` stays the default, as in the paper.

    Parameters
    ----------
    weights : sequence of 2 floats or None
        Weights of the longitudinal and transverse probabilities (``None``: equal).
    memory : str, joblib.Memory or None
        Cache of each view's fused images.
    **params
        Parameters of both views' :func:`make_dl_model` (``image_size``,
        ``backbone``, ``max_epochs``, ...). ``strategy`` is fixed per view.

    Returns
    -------
    VotingClassifier
        Estimators ``longitudinal`` and ``transverse`` (each a ``fuse`` -> ``cnn``
        pipeline), ``voting="soft"``. Set a view's parameters with
        ``set_params(longitudinal__cnn__lr=...)``.

    Examples
    --------
    >>> from thyronet.pipelines import make_late_fusion_model
    >>> model = make_late_fusion_model(image_size=32, backbone="test_resnet")
    >>> [name for name, _ in model.estimators], model.voting
    (['longitudinal', 'transverse'], 'soft')
    >>> model.named_estimators["transverse"].named_steps["fuse"].strategy
    'transverse'
    """
    if "strategy" in params:
        raise TypeError("make_late_fusion_model fixes each view's strategy; do not pass strategy")
    views = [(v, make_dl_model(v, memory=memory, **params)) for v in ("longitudinal", "transverse")]
    return VotingClassifier(views, voting="soft", weights=weights)


def make_clinical_model(*, memory=None) -> Pipeline:
    """Model 5: the 13 clinical indicators, built like the combined model.

    Clinical encoding, standardisation, P-value filter, LASSO and classifier
    selection (the paper: "the construction process of the clinical model
    followed the same approach as that of the combined model").

    Parameters
    ----------
    memory : str, joblib.Memory or None
        Cache of the fitted transformer steps.

    Returns
    -------
    Pipeline
        Steps ``clinical``, ``scale``, ``pvalue``, ``lasso``, ``classify``.

    Examples
    --------
    >>> from thyronet.pipelines import make_clinical_model
    >>> [name for name, _ in make_clinical_model().steps]
    ['clinical', 'scale', 'pvalue', 'lasso', 'classify']
    """
    return Pipeline([("clinical", ClinicalEncoder()), *_tabular_steps()], memory=memory)


def make_combined_model(
    dl_model: Pipeline | SkorchCNN | None = None,
    *,
    n_components: int = 64,
    cv=None,
    memory=None,
    **params: Any,
) -> Pipeline:
    """Model 4: deep features of the fused CNN + clinical indicators, selected and classified.

    ::

        features  ColumnTransformer
          dl        fuse -> extract (SkorchCNN penultimate features) -> compress (PCA)
          clinical  ClinicalEncoder
        scale     StandardScaler
        pvalue    PValueSelector
        lasso     LassoSelector
        classify  ClassifierSelector

    Grid searches reach every step, e.g. ``features__dl__extract__cnn__lr`` or
    ``lasso__selection``. On the fitted model, ``model[:-1].get_feature_names_out()``
    (or ``model.get_feature_names_out()``) names the surviving features: PCA
    components (``pca0``, ``pca1``, ...) and clinical indicators (``size``,
    ``ete_present``, ...).

    Parameters
    ----------
    dl_model : Pipeline, SkorchCNN or None
        ``None``: the CNN is fine-tuned inside ``fit`` (on each CV fold in a grid
        search). A fitted DL_F model (the Pipeline of :func:`make_dl_model`, or its
        fitted :class:`~thyronet.SkorchCNN`) is reused as is, as the paper did: the
        fuser settings come from it, the feature extractor is wrapped in
        :class:`~sklearn.frozen.FrozenEstimator` (``clone`` keeps it) and ``fit``
        trains only PCA and the tabular steps. Cross-validating such a model on
        the CNN's own training data is optimistic: the CNN has seen every fold.
    n_components : int, default=64
        PCA components of the deep features (64 in the paper); at most the number
        of training patients.
    cv : int, cross-validation splitter or None, default=None
        Cross-fitting of the deep features (``DeepFeatureExtractor(cv=...)``): in
        ``fit``, PCA and the tabular steps learn from out-of-fold features, each
        training patient's from a CNN fine-tuned without that patient, so they do
        not learn the CNN's memorised training labels; the CNN of all training
        patients (or the given ``dl_model``) still serves prediction. Costs ``cv``
        extra CNN fits. ``None``: in-sample features (the paper's protocol).
    memory : str, joblib.Memory or None
        Cache of the fitted transformer steps: the feature step (and, inside it,
        the fused images and the fine-tuned CNN) is reused by grid-search candidates
        that differ only downstream.
    **params
        Fuser and CNN parameters, as in :func:`make_dl_model` (``image_size``,
        ``strategy``, ``backbone``, ``pretrained``, ``max_epochs``, ``lr``, ...).

    Returns
    -------
    Pipeline

    Examples
    --------
    >>> from thyronet.pipelines import make_combined_model
    >>> model = make_combined_model(image_size=32, backbone="test_resnet", n_components=8)
    >>> [name for name, _ in model.steps]
    ['features', 'scale', 'pvalue', 'lasso', 'classify']
    >>> model.get_params()["features__dl__extract__cnn__backbone"]
    'test_resnet'
    """
    if dl_model is None:
        fuser_params, cnn_params = _split_params(params)
        fuser = _fuser("fused", fuser_params)
        extract = DeepFeatureExtractor(_cnn(cnn_params), cv=cv)
    else:
        if isinstance(dl_model, Pipeline):
            if params:
                raise TypeError(
                    f"parameters {sorted(params)} cannot be combined with a fitted "
                    "dl_model Pipeline: its fuser and CNN are reused as they are"
                )
            steps = dl_model.named_steps
            if "fuse" not in steps or "cnn" not in steps:
                raise ValueError(
                    "dl_model must be a make_dl_model() Pipeline (steps 'fuse' "
                    f"and 'cnn'); got steps {list(steps)}"
                )
            fuser, cnn = clone(steps["fuse"]), steps["cnn"]
        elif isinstance(dl_model, SkorchCNN):
            fuser_params, cnn_params = _split_params(params)
            if cnn_params:
                raise TypeError(
                    f"CNN parameters {sorted(cnn_params)} cannot be combined with a "
                    "fitted SkorchCNN"
                )
            fuser, cnn = _fuser("fused", fuser_params), dl_model
        else:
            raise TypeError(
                "dl_model must be a fitted make_dl_model() Pipeline or SkorchCNN; "
                f"got {type(dl_model).__name__}"
            )
        check_is_fitted(cnn, "net_")
        extract = _prefit_extractor(cnn, fuser.image_size, cv)

    dl = RowIndexPipeline(
        [("fuse", fuser), ("extract", extract), ("compress", PCA(n_components=n_components))],
        memory=memory,
    )
    features = ColumnTransformer(
        [
            ("dl", dl, _image_columns(fuser)),
            (
                "clinical",
                ClinicalEncoder(),
                CohortColumns(tuple(CLINICAL_COLUMNS), (), "clinical indicators"),
            ),
        ],
        verbose_feature_names_out=False,
    )
    return Pipeline([("features", features), *_tabular_steps()], memory=memory)
