"""thyronet plugin: fusion of more than two ultrasound views per nodule.

Installed, it registers four fusion strategies with thyronet's plugin manager
(entry point ``multiview`` in the group ``thyronet``):

- ``nview_stack``: N-view channel stacking, one channel per view (3 to 16 views);
- ``nview_stack3``: ordered views averaged in three groups (3 channels);
- ``view_max``: maximum over the views (1 channel);
- ``view_pool``: mean, maximum and standard deviation over the views (3 channels).

:mod:`thyronet_multiview.schema` extends the cohort schema with extra view
columns (``view_1 .. view_k`` and ``view_<name>``).

Examples
--------
>>> import numpy as np
>>> from thyronet import DualChannelFuser
>>> views = np.random.default_rng(0).random((4, 5, 16, 16), dtype=np.float32)
>>> fuser = DualChannelFuser(views=[f"view_{k}" for k in range(1, 6)], strategy="view_pool",
...                          image_size=16)
>>> fuser.fit_transform(views).shape
(4, 3, 16, 16)
"""

from __future__ import annotations

from importlib import metadata

from thyronet.hookspecs import hookimpl

from thyronet_multiview.fusions import MULTIVIEW_FUSIONS, group_views, pool_views
from thyronet_multiview.schema import (
    VIEW_PREFIX,
    add_view_columns,
    find_view_columns,
    multiview_fuser,
    validate_multiview_cohort,
)

try:
    __version__ = metadata.version("thyronet-multiview")
except metadata.PackageNotFoundError:  # pragma: no cover - used from a source tree
    __version__ = "0.0.0"

__all__ = [
    "MULTIVIEW_FUSIONS",
    "VIEW_PREFIX",
    "__version__",
    "add_view_columns",
    "find_view_columns",
    "group_views",
    "multiview_fuser",
    "pool_views",
    "thyronet_register_fusions",
    "validate_multiview_cohort",
]


@hookimpl
def thyronet_register_fusions(register):
    """Register the multi-view fusion strategies."""
    for strategy in MULTIVIEW_FUSIONS:
        register(strategy.name, strategy)
