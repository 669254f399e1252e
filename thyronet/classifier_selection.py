"""Moved to :mod:`thyronet.selection`; ``thyronet.classifier_selection.ClassifierSelector``
stays its public path (and the type name in saved model files)."""

from thyronet.selection import ClassifierSelector

__all__ = ["ClassifierSelector"]
