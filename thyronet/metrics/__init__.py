"""Statistics of clinical prediction models that agree with R's pROC.

AUC with DeLong or bootstrap confidence intervals, paired and unpaired DeLong
tests, calibration (Hosmer-Lemeshow, curve, intercept, slope, Brier score),
``rms::val.prob``'s validation indexes (:func:`calibration_summary`),
``Hmisc::improveProb``'s NRI and IDI (:func:`reclassification`), R's
``lowess``, decision curves, Harrell's bootstrap optimism correction
(:func:`bootstrap_validate`), nomograms, threshold metrics with Wilson intervals,
model comparison tables and the paper's Table 1. See ``docs/statistics.md`` and
``docs/validation.md``.

Convention everywhere: labels are 0/1 with 1 the positive class, and a
higher score means more likely positive.
"""

from thyronet.metrics._bootstrap_validate import bootstrap_validate
from thyronet.metrics._calibration import (
    Calibration,
    CalibrationLine,
    HosmerLemeshow,
    calibration,
    calibration_intercept_slope,
    hosmer_lemeshow,
)
from thyronet.metrics._calibration_summary import CalibrationSummary, calibration_summary
from thyronet.metrics._compare import ModelComparison, compare_models, evaluate_cohorts
from thyronet.metrics._decision import decision_curve
from thyronet.metrics._delong import (
    DeLongTest,
    UnpairedDeLongTest,
    delong_covariance,
    delong_test,
    delong_test_unpaired,
    delong_variance,
)
from thyronet.metrics._evaluate import evaluate_predictions
from thyronet.metrics._lowess import lowess
from thyronet.metrics._nomogram import Nomogram, nomogram
from thyronet.metrics._reclassification import (
    CategoricalNRI,
    Reclassification,
    reclassification,
)
from thyronet.metrics._roc import AUCInterval, YoudenThreshold, roc_auc_ci, youden_threshold
from thyronet.metrics._summary import BinarySummary, Proportion, binary_summary, wilson_interval
from thyronet.metrics._table1 import baseline_table, format_baseline_table
from thyronet.metrics._threshold import (
    ChosenThreshold,
    ThresholdRule,
    choose_threshold,
    parse_threshold_rule,
)

__all__ = [
    "AUCInterval",
    "BinarySummary",
    "Calibration",
    "CalibrationLine",
    "CalibrationSummary",
    "CategoricalNRI",
    "ChosenThreshold",
    "DeLongTest",
    "HosmerLemeshow",
    "ModelComparison",
    "Nomogram",
    "Proportion",
    "Reclassification",
    "ThresholdRule",
    "UnpairedDeLongTest",
    "YoudenThreshold",
    "baseline_table",
    "binary_summary",
    "bootstrap_validate",
    "calibration",
    "calibration_intercept_slope",
    "calibration_summary",
    "choose_threshold",
    "compare_models",
    "decision_curve",
    "delong_covariance",
    "delong_test",
    "delong_test_unpaired",
    "delong_variance",
    "evaluate_cohorts",
    "evaluate_predictions",
    "format_baseline_table",
    "hosmer_lemeshow",
    "lowess",
    "nomogram",
    "parse_threshold_rule",
    "reclassification",
    "roc_auc_ci",
    "wilson_interval",
    "youden_threshold",
]
