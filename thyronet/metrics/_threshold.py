"""Decision thresholds chosen by a rule: Youden's J, a fixed sensitivity or specificity.

:func:`parse_threshold_rule` reads the study's ``threshold`` setting
(``"youden"``, ``"youden:train"``, ``"sensitivity:0.90"``, ``"specificity:0.90"``,
each optionally ending in ``:train`` or ``:validation``, or a number);
:func:`choose_threshold` applies one rule to labelled predictions and refuses a
rule that only the trivial "everybody positive" (or "nobody positive") cut-off meets.
"""

from __future__ import annotations

from numbers import Real
from typing import NamedTuple

import numpy as np
from sklearn.metrics import roc_curve

from thyronet.metrics._roc import youden_threshold
from thyronet.metrics._validation import check_labels, check_scores

__all__ = ["ChosenThreshold", "ThresholdRule", "choose_threshold", "parse_threshold_rule"]

_KINDS = ("youden", "sensitivity", "specificity")
_COHORTS = ("validation", "train")


class ThresholdRule(NamedTuple):
    """A parsed threshold rule.

    Attributes
    ----------
    kind : {"youden", "sensitivity", "specificity", "fixed"}
    target : float or None
        The sensitivity or specificity to reach, or the fixed threshold.
    cohort : {"validation", "train"} or None
        Whose predictions choose the threshold (``None`` for a fixed one).
    """

    kind: str
    target: float | None
    cohort: str | None

    def describe(self) -> str:
        """Words for ``study.json`` and ``thyronet predict``.

        Examples
        --------
        >>> from thyronet.metrics import parse_threshold_rule
        >>> parse_threshold_rule("sensitivity:0.9").describe()
        'sensitivity >= 0.90 on the validation (tuning) cohort predictions'
        """
        where = {
            "validation": "the validation (tuning) cohort predictions",
            "train": "the training cohort predictions (apparent)",
        }.get(self.cohort or "", "")
        if self.kind == "fixed":
            return f"fixed probability {self.target:g}"
        if self.kind == "youden":
            return f"Youden's J on {where}"
        return f"{self.kind} >= {self.target:.2f} on {where}"


def parse_threshold_rule(rule: str | float) -> ThresholdRule:
    """Read a threshold setting.

    Parameters
    ----------
    rule : str or float
        ``"youden"`` (on the validation cohort), ``"sensitivity:P"`` or
        ``"specificity:P"`` with ``0 < P <= 1``, each optionally followed by
        ``":train"`` or ``":validation"``; or a probability in (0, 1).

    Returns
    -------
    ThresholdRule

    Raises
    ------
    ValueError
        Anything else, naming the valid forms.

    Examples
    --------
    >>> from thyronet.metrics import parse_threshold_rule
    >>> parse_threshold_rule("youden:train")
    ThresholdRule(kind='youden', target=None, cohort='train')
    >>> parse_threshold_rule(0.3).kind
    'fixed'
    """
    forms = (
        '"youden", "youden:train", "sensitivity:0.90", "specificity:0.90" (optionally '
        'ending ":train" or ":validation"), or a probability in (0, 1)'
    )
    if isinstance(rule, Real) and not isinstance(rule, bool):
        if not 0 < float(rule) < 1:
            raise ValueError(f"a fixed threshold must lie in (0, 1); got {rule!r}")
        return ThresholdRule("fixed", float(rule), None)
    if not isinstance(rule, str):
        raise ValueError(f"threshold must be one of {forms}; got {rule!r}")
    parts = rule.strip().lower().split(":")
    cohort = "validation"
    if len(parts) > 1 and parts[-1] in _COHORTS:
        cohort = parts.pop()
    kind = parts[0]
    if kind == "youden" and len(parts) == 1:
        return ThresholdRule("youden", None, cohort)
    if kind in ("sensitivity", "specificity") and len(parts) == 2:
        try:
            target = float(parts[1])
        except ValueError:
            target = float("nan")
        if not 0 < target <= 1:
            raise ValueError(f"threshold {rule!r}: the {kind} must lie in (0, 1]")
        return ThresholdRule(kind, target, cohort)
    raise ValueError(f"threshold must be one of {forms}; got {rule!r}")


class ChosenThreshold(NamedTuple):
    """Result of :func:`choose_threshold`.

    Attributes
    ----------
    threshold : float
        Predict positive when ``score >= threshold``.
    sensitivity, specificity : float
        Reached on the predictions the threshold was chosen on (NaN for a fixed one).
    source : str
        How it was chosen, in words (``ThresholdRule.describe``).
    """

    threshold: float
    sensitivity: float
    specificity: float
    source: str


def choose_threshold(y_true, y_score, rule: str | float | ThresholdRule) -> ChosenThreshold:
    """The threshold ``rule`` picks on these labelled predictions.

    ``"sensitivity:P"`` gives the highest threshold whose sensitivity is at least
    ``P`` (the best specificity under that constraint); ``"specificity:P"`` the
    lowest whose specificity is at least ``P``. Candidates are the distinct scores.

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 labels.
    y_score : array-like of shape (n_subjects,)
        Scores; higher = more likely positive.
    rule : str, float or ThresholdRule
        See :func:`parse_threshold_rule` (its cohort part is ignored here: the caller
        passes that cohort's predictions).

    Returns
    -------
    ChosenThreshold

    Raises
    ------
    ValueError
        A rule only a trivial cut-off meets: e.g. ``"sensitivity:1.0"`` when the
        lowest-scored positive ties with the lowest scores, so that every patient
        would be called positive (specificity 0).

    Examples
    --------
    >>> from thyronet.metrics import choose_threshold
    >>> y, s = [0, 0, 0, 1, 0, 1, 1, 1], [.1, .2, .3, .35, .4, .6, .7, .8]
    >>> choose_threshold(y, s, "sensitivity:1.0").threshold
    0.35
    >>> choose_threshold(y, s, "specificity:1.0").threshold
    0.6
    """
    if not isinstance(rule, ThresholdRule):
        rule = parse_threshold_rule(rule)
    if rule.kind == "fixed":
        return ChosenThreshold(float(rule.target), float("nan"), float("nan"), rule.describe())
    labels = check_labels(y_true)
    score = check_scores(y_score, "y_score", n=labels.size)
    if rule.kind == "youden":
        best = youden_threshold(labels, score)
        return ChosenThreshold(best.threshold, best.sensitivity, best.specificity, rule.describe())
    fpr, tpr, thresholds = roc_curve(labels, score, drop_intermediate=False)
    m = int(labels.sum())
    n = labels.size - m
    # exact integer counts: a target of 0.9 is met by 9 of 10, not missed by rounding
    tp = np.rint(tpr * m).astype(np.int64)
    tn = n - np.rint(fpr * n).astype(np.int64)
    if rule.kind == "sensitivity":
        ok = np.flatnonzero(tp >= np.ceil(rule.target * m - 1e-9))
        index = int(ok[0])  # thresholds decrease: the first is the highest
        trivial = tn[index] == 0
        what = "calling every patient positive (specificity 0)"
    else:
        ok = np.flatnonzero(tn >= np.ceil(rule.target * n - 1e-9))
        index = int(ok[-1])  # the lowest threshold that keeps the specificity
        trivial = tp[index] == 0
        what = "calling no patient positive (sensitivity 0)"
    if trivial:
        raise ValueError(
            f"threshold rule {rule.kind} >= {rule.target:g} cannot be met by a useful cut-off "
            f"on these {labels.size} predictions: it is reached only by {what}, because of "
            "tied scores at the extreme; choose a lower target, 'youden', or a fixed threshold"
        )
    return ChosenThreshold(
        float(thresholds[index]), float(tpr[index]), float(1 - fpr[index]), rule.describe()
    )
