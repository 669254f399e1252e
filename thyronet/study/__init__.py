"""The paper's five-model study in one call: fit, evaluate, explain, report.

:func:`run_study` follows the protocol of Li et al. (2026): Models 1-5 (DL_L,
DL_C, DL_F, Combined, Clinical) are fitted on the ``train`` cohort, the
classifiers of Models 4 and 5 are chosen by AUC on the ``validation`` cohort,
and every model is evaluated on every cohort (``train``, ``validation`` and, when
present, the external ``test`` cohort). It returns a :class:`StudyResults` and,
with ``out_dir``, writes the paper's tables and figures, the fitted models and a
self-contained ``report.html``. See ``docs/study.md``.

One module per concern: ``_config`` (:class:`StudyConfig`), ``_labels`` (model and
cohort names), ``_results`` (:class:`StudyResults`), ``_resume`` (saved-model
reuse), ``_fit`` (building and fitting a model), ``_tables``, ``_figures``,
``_report`` (the HTML report) and ``_run`` (:func:`run_study`).
"""

from thyronet.metrics import evaluate_predictions
from thyronet.study._config import StudyConfig, StudyError
from thyronet.study._labels import CALIBRATION_MODELS, COHORT_LABELS, MODEL_LABELS, MODEL_NAMES
from thyronet.study._report import render_report, write_report
from thyronet.study._results import FigureRecord, StudyResults
from thyronet.study._run import run_study

__all__ = [
    "CALIBRATION_MODELS",
    "COHORT_LABELS",
    "MODEL_LABELS",
    "MODEL_NAMES",
    "FigureRecord",
    "StudyConfig",
    "StudyError",
    "StudyResults",
    "evaluate_predictions",
    "render_report",
    "run_study",
    "write_report",
]
