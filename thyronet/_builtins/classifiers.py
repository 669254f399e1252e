"""Built-in candidate classifiers of :class:`thyronet.ClassifierSelector`.

The paper compares Logistic Regression, LightGBM and Naive Bayes. They are
registered through the same plugin hook as third-party candidates,
``thyronet_register_classifiers``: each entry is a factory (any callable, e.g. a
class or a :func:`functools.partial`) that returns an unfitted scikit-learn
classifier with ``predict_proba``.
"""

from __future__ import annotations

from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB

from thyronet.hookspecs import hookimpl

__all__ = ["lightgbm", "logistic_regression", "naive_bayes"]


def logistic_regression() -> LogisticRegression:
    """L2-regularised logistic regression (``C=1``), with room to converge.

    Examples
    --------
    >>> from thyronet._builtins.classifiers import logistic_regression
    >>> logistic_regression().max_iter
    1000
    """
    return LogisticRegression(max_iter=1000)


def lightgbm():
    """LightGBM gradient boosting: quiet (``verbose=-1``) and deterministic.

    One thread and a fixed seed make results repeatable and keep it from
    competing with the outer cross-validation's workers.

    Examples
    --------
    >>> from thyronet._builtins.classifiers import lightgbm
    >>> lightgbm().get_params()["deterministic"]
    True
    """
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        random_state=0, n_jobs=1, deterministic=True, force_col_wise=True, verbose=-1
    )


def naive_bayes() -> GaussianNB:
    """Gaussian naive Bayes.

    Examples
    --------
    >>> from thyronet._builtins.classifiers import naive_bayes
    >>> type(naive_bayes()).__name__
    'GaussianNB'
    """
    return GaussianNB()


@hookimpl
def thyronet_register_classifiers(register):
    """Register the paper's three classifiers."""
    register("logistic_regression", logistic_regression)
    register("lightgbm", lightgbm)
    register("naive_bayes", naive_bayes)
