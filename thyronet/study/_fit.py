"""Fitting the five models: the study's input check, the default builders, one fit.

The defaults are :mod:`thyronet.pipelines`' builders with the configuration's
settings; a final step that takes ``X_val``/``y_val`` (a
:class:`thyronet.ClassifierSelector`, a :class:`thyronet.SkorchCNN`) gets the
validation cohort.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from thyronet._walk import walk_fitted
from thyronet.pipelines import make_clinical_model, make_combined_model, make_dl_model
from thyronet.schema import (
    CLINICAL_COLUMNS,
    COHORT_COLUMN,
    COHORTS,
    ID_COLUMN,
    LABEL_COLUMN,
    VIEW_COLUMNS,
    roi_column,
    validate_cohort,
)
from thyronet.study._config import StudyConfig, StudyError


def _check_cohort(cohort: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(cohort, pd.DataFrame):
        raise StudyError(
            f"the cohort must be a pandas DataFrame (or a manifest loaded with "
            f"thyronet.datasets.load_cohort); got {type(cohort).__name__}"
        )
    if COHORT_COLUMN not in cohort.columns:
        raise StudyError(
            f"the cohort has no {COHORT_COLUMN!r} column: the study needs each "
            f"patient's cohort ({', '.join(COHORTS)})"
        )
    frame = validate_cohort(cohort)
    present = set(frame[COHORT_COLUMN])
    missing = [c for c in ("train", "validation") if c not in present]
    if missing:
        raise StudyError(
            f"the cohort has no {' and no '.join(repr(m) for m in missing)} patients; the study "
            f"fits on 'train' and chooses classifiers on 'validation' (cohorts found: "
            f"{sorted(present)})"
        )
    for name in COHORTS:
        labels = frame.loc[frame[COHORT_COLUMN] == name, LABEL_COLUMN]
        if len(labels) and labels.nunique() < 2:
            raise StudyError(
                f"cohort {name!r} has only one class ({LABEL_COLUMN} = {int(labels.iloc[0])} "
                f"for all {len(labels)} patients); AUCs need both classes"
            )
    if ID_COLUMN not in frame.columns:
        frame[ID_COLUMN] = [f"row{i}" for i in range(len(frame))]
    return frame


#: Columns that never reach a model's ``X``: the label, bookkeeping, the simulator's truth.
NEVER_FEATURES = (LABEL_COLUMN, COHORT_COLUMN, ID_COLUMN, "oracle_risk")
NEVER_FEATURE_PREFIXES = ("truth_",)


def feature_columns(frame: pd.DataFrame, extra=()) -> list[str]:
    """The columns the study's models see as ``X``: an explicit allow-list.

    The two views and their ROI columns, the 13 clinical indicators and the
    configuration's ``extra_columns`` (e.g. a plugin's extra views), in the frame's
    order. The label, ``cohort``, ``patient_id``, ``oracle_risk`` and ``truth_*``
    columns are never features, and neither is anything else not listed.

    Raises
    ------
    StudyError
        An extra column missing from the cohort, or one that may never be a feature.
    """
    extra = list(extra or ())
    forbidden = [
        c for c in extra if c in NEVER_FEATURES or str(c).startswith(NEVER_FEATURE_PREFIXES)
    ]
    if forbidden:
        raise StudyError(
            f"extra_columns {forbidden} may never reach the models (the label, bookkeeping "
            "or the simulator's truth)"
        )
    missing = [c for c in extra if c not in frame.columns]
    if missing:
        raise StudyError(f"extra_columns {missing} are not columns of the cohort")
    allowed = {*VIEW_COLUMNS, *map(roi_column, VIEW_COLUMNS), *CLINICAL_COLUMNS, *extra}
    return [c for c in frame.columns if c in allowed]


def _default_builders(config: StudyConfig) -> dict[str, Callable[..., Any]]:
    params = config.model_params()

    def tabular(model):
        return model.set_params(
            pvalue__alpha=config.pvalue_alpha,
            pvalue__continuous_test=config.pvalue_test,
            lasso__method=config.lasso_method,
            lasso__cv=config.lasso_cv,
            lasso__selection=config.lasso_selection,
            lasso__max_features=config.lasso_max_features,
            lasso__random_state=config.random_state,
            classify__candidates=config.classifiers,
            classify__random_state=config.random_state,
        )

    def combined(dl_f):
        return tabular(
            make_combined_model(dl_f, n_components=config.pca_components, cv=config.feature_cv)
        )

    return {
        "dl_l": lambda: make_dl_model("longitudinal", **params),
        "dl_c": lambda: make_dl_model("transverse", **params),
        "dl_f": lambda: make_dl_model("fused", strategy=config.fusion, **params),
        "combined": combined,
        "clinical": lambda: tabular(make_clinical_model()),
    }


def _check_training_splits(config: StudyConfig, y_train: np.ndarray) -> None:
    """Clear errors for splits of the training cohort it is too small for."""
    counts = np.bincount(np.asarray(y_train, dtype=int), minlength=2)
    smallest = int(counts.min())
    if config.feature_cv is not None and config.feature_cv > smallest:
        raise StudyError(
            f"feature_cv = {config.feature_cv} cross-fitting folds need at least "
            f"{config.feature_cv} patients of each class in the training cohort; its "
            f"smallest class has {smallest} (use a smaller feature_cv, or None)"
        )
    if config.early_stopping_on == "train_split":
        held_out = np.floor(counts * config.early_stopping_fraction).astype(int)
        if held_out.min() < 2:
            raise StudyError(
                f'early_stopping_on = "train_split" holds out {config.early_stopping_fraction} '
                f"of the training cohort ({int(counts[0])} without and {int(counts[1])} with "
                f"CLNM), which leaves fewer than 2 patients of a class to early-stop on; "
                'raise early_stopping_fraction, or use early_stopping_on = "validation"'
            )


def _accepts_validation(estimator) -> bool:
    try:
        params = inspect.signature(estimator.fit).parameters
    except (TypeError, ValueError):
        return False
    return "X_val" in params and "y_val" in params


@dataclass(frozen=True)
class TrainingInputs:
    """What a cross-fitted pipeline's steps saw of the training cohort during ``fit``.

    ``fit_transform`` of a cross-fitted deep-feature step gives each training patient
    out-of-fold features; ``transform`` gives features of the CNN fitted on all of
    them, which has memorised their labels. The training patients' apparent
    predictions and the bootstrap refits use what ``fit`` used.

    Attributes
    ----------
    first_step : array-like
        Output of the first step (the deep-feature step) for the training cohort.
    final_step : array-like
        Input of the final step (the classifier) for the training cohort.
    """

    first_step: Any
    final_step: Any


def cross_fitted(model) -> bool:
    """Whether ``model`` holds a deep-feature step that cross-fits (``cv`` set)."""
    return any(
        hasattr(step, "feature_dim_") and getattr(step, "cv", None) is not None
        for _, step in walk_fitted(model)
    )


def _fit_model(
    model, X_train, y_train, X_val, y_val, *, use_validation: bool = True
) -> tuple[Any, str, TrainingInputs | None]:
    """Fit; a final step that takes ``X_val``/``y_val`` gets the validation cohort.

    The steps before it are fitted on the training cohort and transform the
    validation cohort (what ``Pipeline(transform_input=["X_val"])`` does with
    metadata routing, without changing global configuration). For such a pipeline
    the training cohort's first-step output and classifier input are returned too
    (:class:`TrainingInputs`), else ``None``.
    """
    if not use_validation:
        return model.fit(X_train, y_train), "fit", None
    if (
        isinstance(model, Pipeline)
        and len(model.steps) >= 2
        and _accepts_validation(model.steps[-1][1])
    ):
        first = Pipeline(model.steps[:1], memory=model.memory)
        Z_first = first.fit_transform(X_train, y_train)
        rest = Pipeline(model.steps[1:-1], memory=model.memory) if len(model) > 2 else None
        Z_train = rest.fit_transform(Z_first, y_train) if rest is not None else Z_first
        pre = Pipeline([*first.steps, *(rest.steps if rest is not None else [])])
        Z_val = pre.transform(X_val)
        name, final = model.steps[-1]
        final.fit(Z_train, y_train, X_val=Z_val, y_val=y_val)
        model.steps = [*pre.steps, (name, final)]
        return model, "validation", TrainingInputs(Z_first, Z_train)
    if _accepts_validation(model):
        return model.fit(X_train, y_train, X_val=X_val, y_val=y_val), "validation", None
    return model.fit(X_train, y_train), "fit", None


def _positive_proba(model, X) -> np.ndarray:
    proba = np.asarray(model.predict_proba(X))
    classes = list(getattr(model, "classes_", [0, 1]))
    column = classes.index(1) if 1 in classes else proba.shape[1] - 1
    return proba[:, column].astype(float)
