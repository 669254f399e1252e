"""Moved to :mod:`thyronet._builtins.fusions`; kept so old imports keep working."""

from thyronet._builtins.fusions import BUILTIN_FUSIONS

__all__ = ["BUILTIN_FUSIONS"]
