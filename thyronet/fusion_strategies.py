"""Moved to :mod:`thyronet._builtins.fusions`; kept so old imports keep working."""

from thyronet._builtins.fusions import BUILTIN_FUSIONS, thyronet_register_fusions
from thyronet.fusion import FusionStrategy

__all__ = ["BUILTIN_FUSIONS", "FusionStrategy", "thyronet_register_fusions"]
