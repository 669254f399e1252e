"""Statistics of clinical prediction models that agree with R's pROC.

AUC with DeLong or bootstrap confidence intervals, paired and unpaired DeLong
tests, calibration (Hosmer-Lemeshow, curve, intercept, slope, Brier score),
decision curves, threshold metrics with Wilson intervals, model comparison
tables and the paper's Table 1. See ``docs/statistics.md``.

Convention everywhere: labels are 0/1 with 1 the positive class, and a
higher score means more likely positive.
"""

from thyronet.metrics._calibration import (
    Calibration,
    CalibrationLine,
    HosmerLemeshow,
    calibration,
    calibration_intercept_slope,
    hosmer_lemeshow,
)
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
from thyronet.metrics._roc import AUCInterval, YoudenThreshold, roc_auc_ci, youden_threshold
from thyronet.metrics._summary import BinarySummary, Proportion, binary_summary, wilson_interval
from thyronet.metrics._table1 import baseline_table

__all__ = [
    "AUCInterval",
    "BinarySummary",
    "Calibration",
    "CalibrationLine",
    "DeLongTest",
    "HosmerLemeshow",
    "ModelComparison",
    "Proportion",
    "UnpairedDeLongTest",
    "YoudenThreshold",
    "baseline_table",
    "binary_summary",
    "calibration",
    "calibration_intercept_slope",
    "compare_models",
    "decision_curve",
    "delong_covariance",
    "delong_test",
    "delong_test_unpaired",
    "delong_variance",
    "evaluate_cohorts",
    "evaluate_predictions",
    "hosmer_lemeshow",
    "roc_auc_ci",
    "wilson_interval",
    "youden_threshold",
]
