"""Feature and classifier selection of the combined model.

The paper keeps, among the standardised deep + clinical features, those whose
univariate test against the label is significant (:class:`PValueSelector`), reduces
them with LASSO (:class:`LassoSelector`), then fits Logistic Regression, LightGBM and
Naive Bayes and keeps the one with the highest AUC (:class:`ClassifierSelector`;
Li et al. 2026, "Development of the combined model"). All are scikit-learn
estimators, so they fit on the training fold only inside a
:class:`~sklearn.pipeline.Pipeline`.
"""

from thyronet.selection._classifier import ClassifierSelector
from thyronet.selection._lasso import LassoSelector
from thyronet.selection._pvalue import PValueSelector

__all__ = ["ClassifierSelector", "LassoSelector", "PValueSelector"]

# Public paths in reprs, pickles and saved model files (thyronet.model_io.TRUSTED_TYPES).
LassoSelector.__module__ = __name__
PValueSelector.__module__ = __name__
ClassifierSelector.__module__ = "thyronet.classifier_selection"
