"""Fusion strategies for more than two views of a nodule.

Each strategy receives the views of a batch of patients as float32
``(n, V, S, S)`` (V views resized to S x S by :class:`thyronet.DualChannelFuser`)
and returns float32 ``(n, C, S, S)``. Every patient is fused on its own: the result
for one patient never depends on the other patients of the batch.

================  ========  ==========  ==========================================
name              channels  views       what it does
================  ========  ==========  ==========================================
``nview_stack``   V         3 to 16     one channel per view, in the given order
``nview_stack3``  3         3 or more   ordered views split into 3 groups, each
                                        averaged (early / middle / late sections)
``view_max``      1         2 or more   maximum over the views at each pixel
``view_pool``     3         2 or more   mean, maximum and standard deviation over
                                        the views at each pixel
================  ========  ==========  ==========================================

``nview_stack`` keeps every view but its channel count grows with V; the other
three give a fixed channel count whatever the number of views, so one CNN serves
patients imaged with a different number of sections or cine frames. ``view_max``
and ``view_pool`` do not depend on the order of the views.
"""

from __future__ import annotations

import numpy as np
from thyronet.fusion import FusionStrategy

__all__ = ["MAX_STACKED_VIEWS", "MULTIVIEW_FUSIONS", "group_views", "pool_views"]

MAX_STACKED_VIEWS = 16
"""Most views ``nview_stack`` accepts (its channel count grows with the views)."""


def _nview_stack(views: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(views, dtype=np.float32)


def group_views(views: np.ndarray, groups: int = 3) -> np.ndarray:
    """Average ordered views in ``groups`` contiguous groups: ``(n, V, H, W) -> (n, groups, H, W)``.

    Groups are as equal as possible (:func:`numpy.array_split`): 5 views in 3
    groups are averaged as views 1-2, 3-4 and 5.

    Parameters
    ----------
    views : ndarray of shape (n, V, H, W)
        At least ``groups`` views.
    groups : int
        Number of output channels.

    Returns
    -------
    ndarray of shape (n, groups, H, W), float32

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet_multiview.fusions import group_views
    >>> views = np.arange(5, dtype=np.float32).reshape(1, 5, 1, 1)
    >>> group_views(views)[0, :, 0, 0].tolist()
    [0.5, 2.5, 4.0]
    """
    n_views = views.shape[1]
    if n_views < groups:
        raise ValueError(f"cannot split {n_views} view(s) into {groups} groups")
    parts = np.array_split(np.arange(n_views), groups)
    out = np.empty((views.shape[0], groups, *views.shape[2:]), dtype=np.float32)
    for k, idx in enumerate(parts):
        out[:, k] = views[:, idx[0]:idx[-1] + 1].mean(axis=1, dtype=np.float32)
    return out


def _nview_stack3(views: np.ndarray) -> np.ndarray:
    return group_views(views, 3)


def _view_max(views: np.ndarray) -> np.ndarray:
    return views.max(axis=1, keepdims=True).astype(np.float32, copy=False)


def pool_views(views: np.ndarray) -> np.ndarray:
    """Mean, maximum and standard deviation over the views: ``(n, V, H, W) -> (n, 3, H, W)``.

    Parameters
    ----------
    views : ndarray of shape (n, V, H, W)

    Returns
    -------
    ndarray of shape (n, 3, H, W), float32

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet_multiview.fusions import pool_views
    >>> views = np.stack([np.zeros((2, 2)), np.full((2, 2), 2.0)])[None].astype(np.float32)
    >>> pool_views(views)[0, :, 0, 0].tolist()
    [1.0, 2.0, 1.0]
    """
    out = np.empty((views.shape[0], 3, *views.shape[2:]), dtype=np.float32)
    out[:, 0] = views.mean(axis=1, dtype=np.float32)
    out[:, 1] = views.max(axis=1)
    out[:, 2] = views.std(axis=1, dtype=np.float32)
    return out


MULTIVIEW_FUSIONS: tuple[FusionStrategy, ...] = (
    FusionStrategy("nview_stack", _nview_stack, channels=None, min_views=3,
                   max_views=MAX_STACKED_VIEWS,
                   description="N-view channel stacking: one channel per view (3 to 16 views)"),
    FusionStrategy("nview_stack3", _nview_stack3, channels=3, min_views=3,
                   description="ordered views averaged in 3 groups: 3 channels for RGB weights"),
    FusionStrategy("view_max", _view_max, channels=1, min_views=2,
                   description="maximum over the views at each pixel (1 channel)"),
    FusionStrategy("view_pool", pool_views, channels=3, min_views=2,
                   description="mean, max and std over the views: 3 channels for any view count"),
)
"""The fusion strategies this plugin registers."""
