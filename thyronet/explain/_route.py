"""Finding the CNN inside a fitted model, and the route that input rows take to reach it.

Grad-CAM explains a :class:`~thyronet.SkorchCNN`, which may sit deep inside a
fitted model: behind a :class:`~thyronet.DualChannelFuser` in the DL model, or
inside a :class:`~thyronet.DeepFeatureExtractor` in one column of the combined
model's ``ColumnTransformer``. :func:`find_cnn` walks the model with
:func:`thyronet._walk.walk_fitted` and returns the CNN with the function that
turns the model's input into the CNN's (the pipeline steps before it, the
column selection) and the fuser that prepares its images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils.validation import check_is_fitted

from thyronet._walk import walk_fitted
from thyronet.cnn import SkorchCNN
from thyronet.features import DeepFeatureExtractor
from thyronet.fusion import DualChannelFuser


@dataclass
class CNNRoute:
    """How input rows reach a CNN: a preprocessing function, the CNN, the fuser."""

    cnn: SkorchCNN
    preprocess: Callable[[Any], np.ndarray] | None
    fuser: DualChannelFuser | None


def find_cnn(model) -> CNNRoute | None:
    """The first fitted :class:`~thyronet.SkorchCNN` in ``model`` and its route, or ``None``.

    Raises
    ------
    NotFittedError
        A ``DeepFeatureExtractor`` or ``ColumnTransformer`` on the way is not fitted.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> find_cnn(LogisticRegression()) is None
    True
    """
    for path, estimator in walk_fitted(model):
        if isinstance(estimator, SkorchCNN):
            return _route(model, path, estimator)
        if isinstance(estimator, DeepFeatureExtractor) and getattr(estimator, "cnn_", None) is None:
            raise NotFittedError(
                "the DeepFeatureExtractor holding the CNN is not fitted; fit "
                "the model before explaining it"
            )
        if isinstance(estimator, ColumnTransformer):
            check_is_fitted(estimator, "transformers_")
    return None


def _route(model, path: tuple[str, ...], cnn: SkorchCNN) -> CNNRoute:
    """Follow ``path`` (from :func:`walk_fitted`) from ``model`` down to ``cnn``.

    A pipeline contributes the steps before the one on the path, a
    ``ColumnTransformer`` its column selection; a ``FeatureUnion`` and the
    attributes that hold a fitted estimator (``cnn_``, ``estimator``...) pass
    the rows on unchanged. The fuser is the last one before the CNN's step in the
    innermost pipeline on the path.
    """
    stages: list[Callable[[Any], Any]] = []
    fuser: DualChannelFuser | None = None
    node = model
    for name in path:
        if isinstance(node, Pipeline) and name in node.named_steps:
            i = [step_name for step_name, _ in node.steps].index(name)
            if i > 0:
                stages.append(node[:i].transform)
            fusers = [s for _, s in node.steps[:i] if isinstance(s, DualChannelFuser)]
            fuser = fusers[-1] if fusers else None
            node = node.steps[i][1]
        elif isinstance(node, ColumnTransformer) and name in node.named_transformers_:
            columns = next(cols for n, _, cols in node.transformers_ if n == name)
            stages.append(lambda X, _columns=columns: _select_columns(X, _columns))
            node = node.named_transformers_[name]
        elif isinstance(node, FeatureUnion) and name in node.named_transformers:
            node = node.named_transformers[name]  # a union passes its input on unchanged
        else:  # an attribute holding a fitted estimator: cnn_, estimator, estimator_...
            node = getattr(node, name)
    return CNNRoute(cnn, _compose(stages) if stages else None, fuser)


def _compose(stages: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    def preprocess(X):
        for stage in stages:
            X = stage(X)
        return X

    return preprocess


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
