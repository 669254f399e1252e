"""Input checks shared by the statistics functions.

Every check returns a new array (the caller's input is never modified) and
raises :class:`ValueError` with a message that names the argument and the
offending positions.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd


def _positions(mask: np.ndarray, limit: int = 5) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in idx[:limit])
    more = f" (and {idx.size - limit} more)" if idx.size > limit else ""
    return f"{shown}{more}"


def _as_1d(values, name: str) -> np.ndarray:
    if isinstance(values, pd.Series | pd.Index | pd.api.extensions.ExtensionArray) and (
        pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)
    ):
        # nullable pandas dtypes (Int64, Float64, boolean): pd.NA becomes NaN
        values = values.to_numpy(dtype=float, na_value=np.nan)
    arr = np.asarray(values)
    if arr.ndim == 2 and 1 in arr.shape and arr.size > 0:
        raise ValueError(
            f"{name} must be one-dimensional (one value per subject); got shape {arr.shape}. "
            "Pass a 1-D array, e.g. the positive-class column predict_proba(X)[:, 1]."
        )
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be one-dimensional (one value per subject); got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    return arr


def check_labels(y_true, name: str = "y_true", *, both_classes: bool = True) -> np.ndarray:
    """Return ``y_true`` as a boolean array (True = positive class, label 1).

    Labels must be 0/1 (integers, floats or booleans). With ``both_classes``
    both labels must occur.
    """
    arr = _as_1d(y_true, name)
    if arr.dtype == bool:
        labels = arr.copy()
    else:
        try:
            numeric = arr.astype(float)
        except (TypeError, ValueError):
            found = sorted({str(v) for v in arr.tolist()})[:5]
            raise ValueError(
                f"{name} must hold 0/1 labels (1 = positive class); got non-numeric values {found}"
            ) from None
        nan = np.isnan(numeric)
        if nan.any():
            raise ValueError(f"{name} contains NaN at position(s) {_positions(nan)}")
        bad = (numeric != 0) & (numeric != 1)
        if bad.any():
            found = sorted(set(numeric[bad].tolist()))[:5]
            raise ValueError(
                f"{name} must hold 0/1 labels (1 = positive class); got "
                f"{found} at position(s) {_positions(bad)}"
            )
        labels = numeric == 1
    if both_classes:
        n_pos = int(labels.sum())
        if n_pos == 0 or n_pos == labels.size:
            only = "1 (positive)" if n_pos else "0 (negative)"
            raise ValueError(
                f"{name} has a single class: all {labels.size} subjects are "
                f"{only}; this statistic needs both positive (1) and "
                "negative (0) subjects"
            )
    return labels


def check_scores(
    y_score,
    name: str = "y_score",
    *,
    n: int | None = None,
    n_name: str = "y_true",
    probability: bool = False,
) -> np.ndarray:
    """Return ``y_score`` as a finite float64 array of length ``n``.

    With ``probability`` the values must lie in [0, 1].
    """
    arr = _as_1d(y_score, name)
    if arr.dtype == bool:
        arr = arr.astype(float)
    try:
        scores = np.array(arr, dtype=np.float64, copy=True)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}") from None
    if n is not None and scores.size != n:
        raise ValueError(
            f"{name} has {scores.size} values but {n_name} has {n}; "
            "they must have one value per subject"
        )
    nan = np.isnan(scores)
    if nan.any():
        raise ValueError(f"{name} contains NaN at position(s) {_positions(nan)}")
    inf = np.isinf(scores)
    if inf.any():
        raise ValueError(f"{name} contains infinite values at position(s) {_positions(inf)}")
    if probability:
        out = (scores < 0) | (scores > 1)
        if out.any():
            found = scores[out][:3].tolist()
            raise ValueError(
                f"{name} must be probabilities in [0, 1]; got {found} at "
                f"position(s) {_positions(out)}"
            )
    return scores


def check_confidence(confidence) -> float:
    """Return a confidence level strictly between 0 and 1."""
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, Real)
        or not (0 < float(confidence) < 1)
    ):
        raise ValueError(
            f"confidence must be a number strictly between 0 and 1 (e.g. 0.95); got {confidence!r}"
        )
    return float(confidence)


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_min_per_class(labels: np.ndarray, minimum: int, what: str, name: str = "y_true") -> None:
    """Require at least ``minimum`` subjects of each class."""
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos < minimum or n_neg < minimum:
        raise ValueError(
            f"{what} needs at least {minimum} positive and {minimum} negative "
            f"subjects; {name} has {n_pos} positive and {n_neg} negative"
        )
