"""Fusing the ultrasound views of each patient into one multi-channel image.

:class:`DualChannelFuser` turns a cohort table (or per-view images) into the
float32 ``(n, C, H, W)`` array a CNN takes. How the views are combined is a
registered :class:`FusionStrategy` (built-ins in :mod:`thyronet._builtins.fusions`,
more from plugins through ``thyronet_register_fusions``). Importing this package
does not load torch.
"""

from thyronet.fusion._fuser import DualChannelFuser
from thyronet.fusion._strategy import FusionStrategy, get_fusion
from thyronet.imaging import NORMALIZATIONS, ImageError, load_view
from thyronet.schema import VIEW_COLUMNS, CohortError, parse_roi, roi_column

__all__ = [
    "NORMALIZATIONS",
    "VIEW_COLUMNS",
    "CohortError",
    "DualChannelFuser",
    "FusionStrategy",
    "ImageError",
    "get_fusion",
    "load_view",
    "parse_roi",
    "roi_column",
]

# Public path in reprs, pickles and saved model files (thyronet.model_io.TRUSTED_TYPES).
for _obj in (DualChannelFuser, FusionStrategy, get_fusion):
    _obj.__module__ = __name__
del _obj
