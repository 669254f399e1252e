"""Names shared by the study and its report: the five models, their labels, the cohorts.

Nothing here computes; :mod:`thyronet.study._run` fits the models named here and
:mod:`thyronet.study._report` writes about them.
"""

from __future__ import annotations

__all__ = [
    "CALIBRATION_MODELS",
    "CLASSIFIER_LABELS",
    "COHORT_LABELS",
    "MODEL_LABELS",
    "MODEL_NAMES",
    "classifier_label",
]

MODEL_NAMES: tuple[str, ...] = ("dl_l", "dl_c", "dl_f", "combined", "clinical")
"""The five models, in the paper's numbering (Model 1 ... Model 5)."""

MODEL_LABELS: dict[str, str] = {
    "dl_l": "Model 1: DL_L",
    "dl_c": "Model 2: DL_C",
    "dl_f": "Model 3: DL_F",
    "combined": "Model 4: Combined",
    "clinical": "Model 5: Clinical",
}
"""Display names of the models in tables, legends and the report."""

COHORT_LABELS: dict[str, str] = {
    "train": "Training set",
    "validation": "Validation (tuning cohort)",
    "test": "External test set",
}
"""Display names of the cohorts. The study's protocol tunes on the validation cohort (it
chooses the classifiers of Models 4 and 5 there, and the CNNs' early stopping with
``early_stopping_on = "validation"``; ``study.json`` records this under ``cohort_roles``),
so its numbers are labelled as those of a tuning cohort, not an independent validation."""

CALIBRATION_MODELS: tuple[str, ...] = ("dl_f", "combined", "clinical")
"""Models of the calibration and decision-curve figures (the paper's Figure 5)."""

CLASSIFIER_LABELS: dict[str, str] = {
    "logistic_regression": "logistic regression",
    "lightgbm": "LightGBM",
    "naive_bayes": "naive Bayes",
}
"""Display names of the built-in candidate classifiers in the report (tables and CSV
files keep the registry names)."""


def classifier_label(name: str) -> str:
    """Display name of a candidate classifier: the built-ins' from
    :data:`CLASSIFIER_LABELS`, a plugin's registry name with spaces for underscores.

    Examples
    --------
    >>> from thyronet.study._labels import classifier_label
    >>> classifier_label("lightgbm"), classifier_label("my_svm")
    ('LightGBM', 'my svm')
    """
    return CLASSIFIER_LABELS.get(name, str(name).replace("_", " "))
