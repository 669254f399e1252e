"""Encoding the 13 clinical indicators of the paper's Table 1 as numbers.

:class:`ClinicalEncoder` takes a cohort table (extra columns are ignored) and
returns one numeric column per encoded indicator, with readable names:

==============  ==========================================  =============================
kind            indicators                                  output
==============  ==========================================  =============================
numeric         age, size, aspect_ratio                     the value (``age``)
binary          sex, ete, margin, shape, capsular_contact,  0/1, 1 = the second category
                discontinuous_capsule                       (``sex_male``, ``ete_present``)
ordinal         echogenicity                                0, 1, 2 in the schema's order
categorical     location, vascularity, calcification        one-hot (``location_isthmus``)
==============  ==========================================  =============================

The categories come from :data:`thyronet.datasets.CLINICAL_VARIABLES`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from thyronet.schema import CLINICAL_COLUMNS, CLINICAL_VARIABLES, CohortError, is_missing

__all__ = ["ClinicalEncoder"]


def _rows(index, limit: int = 5) -> str:
    items = list(index)
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(repr(i) for i in items[:limit]) + more


class ClinicalEncoder(TransformerMixin, BaseEstimator):
    """Encode the 13 clinical indicators with a :class:`~sklearn.compose.ColumnTransformer`.

    Numeric indicators are kept as numbers, binary ones become 0/1 (1 for the
    second category of the schema, e.g. ``sex_male``), echogenicity becomes an
    ordinal 0/1/2 and location, vascularity and calcification are one-hot
    encoded over all their schema categories. Category spelling is forgiving:
    case and surrounding spaces are ignored. Missing values (NaN, None, empty
    strings) are imputed with the training median (numeric) or the most
    frequent category (others) when ``impute=True``.

    Parameters
    ----------
    handle_unknown : {"error", "impute"}, default="error"
        A category outside the schema in :meth:`transform`: ``"error"`` raises a
        :class:`~thyronet.datasets.CohortError` naming the column, the rows and
        the allowed values; ``"impute"`` treats it as missing (replaced by the
        training mode; requires ``impute=True``). Unknown categories in
        :meth:`fit` always raise.
    impute : bool, default=True
        Impute missing values. With ``False`` a missing value raises an error
        naming the column and rows.

    Attributes
    ----------
    column_transformer_ : ColumnTransformer
        The fitted encoder of the clinical columns.
    n_features_in_ : int
        Number of columns of the frame seen in fit.
    feature_names_in_ : ndarray of str
        Columns of the frame seen in fit (only the 13 clinical ones are used).

    Examples
    --------
    >>> import pandas as pd
    >>> from thyronet import ClinicalEncoder
    >>> cohort = pd.DataFrame({
    ...     "patient_id": ["p1", "p2"], "age": [34, 51], "sex": ["female", "Male"],
    ...     "location": ["upper", "isthmus"], "size": [6.5, 9.0], "aspect_ratio": [1.1, 0.8],
    ...     "ete": ["absent", "present"], "echogenicity": ["hypoechoic", "markedly_hypoechoic"],
    ...     "margin": ["clear", "unclear"], "shape": ["regular", "irregular"],
    ...     "vascularity": ["I", "III"], "calcification": ["micro", "absent"],
    ...     "capsular_contact": ["absent", "present"],
    ...     "discontinuous_capsule": ["absent", "absent"]})
    >>> encoder = ClinicalEncoder().set_output(transform="pandas")
    >>> encoded = encoder.fit_transform(cohort)
    >>> encoded.shape
    (2, 22)
    >>> encoded[["sex_male", "location_isthmus", "echogenicity"]].to_numpy().tolist()
    [[0.0, 0.0, 1.0], [1.0, 1.0, 2.0]]
    """

    _parameter_constraints: ClassVar[dict] = {
        "handle_unknown": [StrOptions({"error", "impute"})],
        "impute": ["boolean"],
    }

    def __init__(self, handle_unknown: str = "error", *, impute: bool = True) -> None:
        self.handle_unknown = handle_unknown
        self.impute = impute

    def _normalise(self, X, *, fitting: bool) -> pd.DataFrame:
        """The 13 clinical columns as floats/canonical category strings (a new frame)."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"ClinicalEncoder needs a pandas DataFrame with the clinical columns "
                f"{list(CLINICAL_COLUMNS)}; got {type(X).__name__}"
            )
        missing = [c for c in CLINICAL_COLUMNS if c not in X.columns]
        if missing:
            raise CohortError(
                f"ClinicalEncoder: the frame is missing clinical column(s) {missing}; "
                f"it has {list(map(str, X.columns))}"
            )
        out = {}
        for var in CLINICAL_VARIABLES:
            column = X[var.name]
            empty = column.map(is_missing).to_numpy(dtype=bool)
            if var.kind == "numeric":
                values = pd.to_numeric(column.where(~empty), errors="coerce")
                bad = values.isna().to_numpy() & ~empty
                if bad.any():
                    raise CohortError(
                        f"clinical column {var.name!r} ({var.description}) must be numeric; "
                        f"row(s) {_rows(X.index[bad])} hold "
                        f"{list(column[bad].astype(str).unique()[:5])}"
                    )
                out[var.name] = values.to_numpy(dtype=np.float64)
            else:
                lookup = {c.lower(): c for c in var.categories}
                canonical = [
                    np.nan if e else lookup.get(str(v).strip().lower())
                    for v, e in zip(column, empty, strict=True)
                ]
                bad = np.array([c is None for c in canonical], dtype=bool)
                if bad.any():
                    if fitting or self.handle_unknown == "error":
                        raise CohortError(
                            f"clinical column {var.name!r} has unknown category "
                            f"{sorted(set(column[bad].astype(str)))} in row(s) "
                            f"{_rows(X.index[bad])}; allowed: {list(var.categories)}"
                            + (
                                ""
                                if fitting
                                else " (or use ClinicalEncoder(handle_unknown='impute'))"
                            )
                        )
                    canonical = [np.nan if c is None else c for c in canonical]
                    empty = empty | bad
                out[var.name] = np.array(canonical, dtype=object)
            if empty.any() and not self.impute:
                raise CohortError(
                    f"clinical column {var.name!r} is missing in row(s) {_rows(X.index[empty])}; "
                    "use ClinicalEncoder(impute=True) or fill them"
                )
            if fitting and empty.all():
                raise CohortError(
                    f"clinical column {var.name!r} is missing in every row; it cannot be "
                    "encoded or imputed"
                )
        return pd.DataFrame(out, index=X.index)

    def _build(self) -> ColumnTransformer:
        def kind(k):
            return [v for v in CLINICAL_VARIABLES if v.kind == k]

        def fill(strategy):
            return [("impute", SimpleImputer(strategy=strategy))] if self.impute else []

        numeric, binary, ordinal, onehot = (
            kind(k) for k in ("numeric", "binary", "ordinal", "categorical")
        )
        # Category values are known from the schema, so no unknown value reaches
        # the encoders (``_normalise`` has already dealt with them).
        return ColumnTransformer(
            [
                (
                    "numeric",
                    Pipeline([*fill("median"), ("identity", "passthrough")]),
                    [v.name for v in numeric],
                ),
                (
                    "binary",
                    Pipeline(
                        [
                            *fill("most_frequent"),
                            (
                                "encode",
                                OneHotEncoder(
                                    categories=[list(v.categories) for v in binary],
                                    drop="first",
                                    sparse_output=False,
                                    dtype=np.float64,
                                ),
                            ),
                        ]
                    ),
                    [v.name for v in binary],
                ),
                (
                    "ordinal",
                    Pipeline(
                        [
                            *fill("most_frequent"),
                            (
                                "encode",
                                OrdinalEncoder(
                                    categories=[list(v.categories) for v in ordinal],
                                    dtype=np.float64,
                                ),
                            ),
                        ]
                    ),
                    [v.name for v in ordinal],
                ),
                (
                    "onehot",
                    Pipeline(
                        [
                            *fill("most_frequent"),
                            (
                                "encode",
                                OneHotEncoder(
                                    categories=[list(v.categories) for v in onehot],
                                    sparse_output=False,
                                    dtype=np.float64,
                                ),
                            ),
                        ]
                    ),
                    [v.name for v in onehot],
                ),
            ],
            remainder="drop",
            verbose_feature_names_out=False,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: pd.DataFrame, y=None) -> ClinicalEncoder:
        """Learn the imputation values from the clinical columns of ``X``.

        Parameters
        ----------
        X : DataFrame
            A cohort table with (at least) the 13 clinical columns.
        y : ignored

        Returns
        -------
        self : ClinicalEncoder
        """
        frame = self._normalise(X, fitting=True)
        self.column_transformer_ = self._build().fit(frame)
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(X.columns)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Encode the clinical columns of ``X`` (other columns are ignored).

        Parameters
        ----------
        X : DataFrame
            A cohort table with (at least) the 13 clinical columns.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out)
            Float64 (a DataFrame after ``set_output(transform="pandas")``).
        """
        check_is_fitted(self, "column_transformer_")
        frame = self._normalise(X, fitting=False)
        return np.asarray(self.column_transformer_.transform(frame), dtype=np.float64)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the encoded columns, e.g. ``age``, ``sex_male``, ``location_isthmus``.

        Parameters
        ----------
        input_features : ignored
            The output names depend only on the schema.

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self, "column_transformer_")
        return self.column_transformer_.get_feature_names_out()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        return tags
