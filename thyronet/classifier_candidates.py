"""Moved to :mod:`thyronet._builtins.classifiers`; kept so old imports keep working."""

from thyronet._builtins.classifiers import lightgbm, logistic_regression, naive_bayes

__all__ = ["lightgbm", "logistic_regression", "naive_bayes"]
