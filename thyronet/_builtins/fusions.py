"""Built-in fusion strategies, registered through the plugin manager like any plugin.

==============  ========  ====================================================
name            channels  what it does
==============  ========  ====================================================
``stack``       V         one channel per view (V=2: the paper's dual-channel image)
``stack3``      3         two views plus their mean, so RGB weights apply unchanged
``longitudinal`` 1        the longitudinal view only (the paper's DL_L)
``transverse``  1         the transverse view only (the paper's DL_C)
``mean``        1         the pixel-wise mean of the views
``mosaic``      1         the views side by side in one channel (width V x size)
==============  ========  ====================================================
"""

from __future__ import annotations

import numpy as np

from thyronet.fusion import FusionStrategy
from thyronet.hookspecs import hookimpl


def _stack(views: np.ndarray) -> np.ndarray:
    return views


def _stack3(views: np.ndarray) -> np.ndarray:
    return np.concatenate([views, views.mean(axis=1, keepdims=True)], axis=1)


def _mean(views: np.ndarray) -> np.ndarray:
    return views.mean(axis=1, keepdims=True)


def _mosaic(views: np.ndarray) -> np.ndarray:
    n, v, h, w = views.shape
    return views.transpose(0, 2, 1, 3).reshape(n, 1, h, v * w)


BUILTIN_FUSIONS: tuple[FusionStrategy, ...] = (
    FusionStrategy(
        "stack",
        _stack,
        channels=None,
        description="one channel per view (the paper's dual-channel image)",
    ),
    FusionStrategy(
        "stack3",
        _stack3,
        channels=3,
        min_views=2,
        max_views=2,
        description="two views plus their mean: 3 channels for RGB weights",
    ),
    FusionStrategy(
        "longitudinal",
        _stack,
        channels=1,
        select=("longitudinal",),
        description="the longitudinal view only (DL_L)",
    ),
    FusionStrategy(
        "transverse",
        _stack,
        channels=1,
        select=("transverse",),
        description="the transverse view only (DL_C)",
    ),
    FusionStrategy("mean", _mean, channels=1, description="pixel-wise mean of the views"),
    FusionStrategy(
        "mosaic",
        _mosaic,
        channels=1,
        description="views side by side in one channel (width = views x size)",
    ),
)


@hookimpl
def thyronet_register_fusions(register):
    """Register the built-in fusion strategies."""
    for strategy in BUILTIN_FUSIONS:
        register(strategy.name, strategy)
