"""Fusion strategies: how one patient's views become one multi-channel image.

A :class:`FusionStrategy` is a registry entry (built-ins in
:mod:`thyronet._builtins.fusions`, more from plugins through
``thyronet_register_fusions``); :func:`get_fusion` looks one up by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from thyronet.plugins import get_registry

__all__ = ["FusionStrategy", "get_fusion"]


@dataclass(frozen=True)
class FusionStrategy:
    """A way to combine the views of one patient into one multi-channel image.

    Parameters
    ----------
    name : str
        Registry name, used as ``DualChannelFuser(strategy=name)``.
    fuse : callable
        ``fuse(views) -> fused`` where ``views`` is float32 ``(n, V, S, S)``
        (V views resized to S x S) and ``fused`` is ``(n, C, H, W)``. Must be a
        module-level function so that fitted fusers pickle.
    channels : int or None
        Declared channel count C; ``None`` means one channel per view.
    min_views, max_views : int, int or None
        How many views the strategy accepts.
    select : tuple of str or None
        Use only these named views (e.g. ``("longitudinal",)``); others are not read.
    description : str
        One line for ``thyronet plugins``.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.fusion import FusionStrategy
    >>> def difference(views):
    ...     return np.concatenate([views, views[:, :1] - views[:, 1:2]], axis=1)
    >>> strategy = FusionStrategy("stack_diff", difference, channels=3, min_views=2, max_views=2)
    >>> strategy.fuse(np.zeros((1, 2, 8, 8), np.float32)).shape
    (1, 3, 8, 8)
    """

    name: str
    fuse: Callable[[np.ndarray], np.ndarray]
    channels: int | None = None
    min_views: int = 1
    max_views: int | None = None
    select: tuple[str, ...] | None = None
    description: str = ""

    def n_channels(self, n_views: int) -> int:
        """Channel count for ``n_views`` input views."""
        return n_views if self.channels is None else self.channels


def get_fusion(name: str) -> FusionStrategy:
    """Look up a registered fusion strategy.

    Raises
    ------
    thyronet.plugins.UnknownEntryError
        ``name`` is not registered (the message lists the registered names); it is
        a ``KeyError`` and a ``ValueError``.

    Examples
    --------
    >>> from thyronet.fusion import get_fusion
    >>> get_fusion("stack3").channels
    3
    """
    return get_registry("fusions")[name]
