"""The one walker over fitted models: every (sub-)estimator a fitted model holds.

The study (classifier table, LASSO figures), the explainers (finding the CNN) and
the model files (finding CNN weights) all walk a model the same way, through this.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: Attributes that hold a fitted sub-estimator: DeepFeatureExtractor's CNN,
#: a selector's refitted estimator, a search's best estimator, FrozenEstimator's.
_NESTED_ATTRS = ("cnn_", "estimator_", "best_estimator_", "estimator")


def walk_fitted(model: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Yield ``(path, estimator)`` for ``model`` and every fitted estimator inside it.

    Walks pipeline steps, a fitted ``ColumnTransformer``'s ``transformers_``, a
    ``FeatureUnion``'s transformers and the attributes ``cnn_``, ``estimator_``,
    ``best_estimator_`` and ``estimator`` (``FrozenEstimator``). Each estimator is
    yielded once, depth first, parents before children.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.linear_model import LogisticRegression
    >>> pipe = make_pipeline(StandardScaler(), LogisticRegression())
    >>> [p for p, _ in walk_fitted(pipe)]
    [(), ('standardscaler',), ('logisticregression',)]
    """
    seen: set[int] = set()
    yield from _walk(model, path, seen)


def _walk(model: Any, path: tuple[str, ...], seen: set[int]):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline

    if model is None or isinstance(model, str) or id(model) in seen:
        return
    seen.add(id(model))
    yield path, model
    if isinstance(model, Pipeline):
        for name, step in model.steps:
            yield from _walk(step, (*path, name), seen)
    elif isinstance(model, ColumnTransformer) and hasattr(model, "transformers_"):
        for name, sub, _ in model.transformers_:
            yield from _walk(sub, (*path, name), seen)
    elif isinstance(model, FeatureUnion):
        for name, sub in model.transformer_list:
            yield from _walk(sub, (*path, name), seen)
    for attr in _NESTED_ATTRS:
        sub = getattr(model, attr, None)
        if sub is not None and not isinstance(sub, type) and hasattr(sub, "get_params"):
            yield from _walk(sub, (*path, attr), seen)
