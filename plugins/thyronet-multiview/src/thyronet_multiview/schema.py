"""The cohort schema for more than two views per patient.

thyronet's cohort has two view columns, ``longitudinal`` and ``transverse``
(:data:`thyronet.datasets.VIEW_COLUMNS`). This plugin adds *extra view columns*,
named with the prefix ``view_``:

- numbered views ``view_1``, ``view_2``, ... ``view_k`` (e.g. more sections of the
  nodule or the frames of a cine loop, in order). The numbers must run from 1
  without gaps;
- named views ``view_<name>`` (e.g. ``view_oblique``), ordered by name after the
  numbered ones.

Each view column holds image paths or 2-D arrays and may have a ROI column
``<view>_roi`` exactly like the two standard views; ``<view>_mask`` columns are
not views. Columns with other names can be used as views by naming them
(``extra=`` or ``views=``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from thyronet import DualChannelFuser
from thyronet.datasets import VIEW_COLUMNS, CohortError, validate_cohort

__all__ = [
    "VIEW_PREFIX",
    "add_view_columns",
    "find_view_columns",
    "multiview_fuser",
    "validate_multiview_cohort",
]

VIEW_PREFIX = "view_"
"""Prefix of the extra view columns."""

_NOT_VIEWS = ("_roi", "_mask")


def _check_frame(frame: Any) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise CohortError(f"a cohort must be a pandas DataFrame, got {type(frame).__name__}")
    return frame


def find_view_columns(
    frame: pd.DataFrame,
    *,
    prefix: str = VIEW_PREFIX,
    standard: Sequence[str] = VIEW_COLUMNS,
    extra: Sequence[str] = (),
) -> tuple[str, ...]:
    """The view columns of a cohort, in order.

    Order: the standard views that are present (``longitudinal``, ``transverse``),
    the numbered views ``view_1 .. view_k``, the named views ``view_<name>`` by
    name, then ``extra`` in the given order.

    Parameters
    ----------
    frame : DataFrame
        The cohort.
    prefix : str, default="view_"
        Prefix of extra view columns; ``<view>_roi`` and ``<view>_mask`` columns
        are never views.
    standard : sequence of str, default=("longitudinal", "transverse")
        Standard view columns included when present; ``()`` leaves them out.
    extra : sequence of str
        More view columns with other names; each must be present.

    Returns
    -------
    tuple of str

    Raises
    ------
    CohortError
        A numbered view is missing (``view_1`` and ``view_3`` but no ``view_2``), a
        column of ``extra`` is absent, or the cohort has no view column at all.

    Examples
    --------
    >>> import pandas as pd
    >>> from thyronet_multiview import find_view_columns
    >>> frame = pd.DataFrame(columns=["longitudinal", "view_2", "view_1", "view_1_roi",
    ...                               "view_oblique", "age"])
    >>> find_view_columns(frame)
    ('longitudinal', 'view_1', 'view_2', 'view_oblique')
    """
    frame = _check_frame(frame)
    columns = [c for c in frame.columns if isinstance(c, str)]
    found = [c for c in standard if c in columns]
    numbered: dict[int, str] = {}
    named: list[str] = []
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)$")
    for column in columns:
        if not column.startswith(prefix) or column in found or column.endswith(_NOT_VIEWS):
            continue
        match = pattern.match(column)
        if match:
            number = int(match.group(1))
            if number in numbered:
                raise CohortError(f"view columns {numbered[number]!r} and {column!r} both have "
                                  f"number {number}")
            numbered[number] = column
        elif len(column) > len(prefix):
            named.append(column)
    if numbered:
        expected = set(range(1, max(numbered) + 1))
        gaps = sorted(expected - set(numbered))
        if gaps:
            missing = ", ".join(f"{prefix}{k}" for k in gaps)
            raise CohortError(f"numbered view columns must run from {prefix}1 without gaps; "
                              f"found {[numbered[k] for k in sorted(numbered)]}, missing "
                              f"{missing}")
    found += [numbered[k] for k in sorted(numbered)] + sorted(named)
    absent = [c for c in extra if c not in frame.columns]
    if absent:
        raise CohortError(f"extra view column(s) {absent} are not in the cohort; it has "
                          f"{list(frame.columns)}")
    found += [c for c in extra if c not in found]
    if not found:
        raise CohortError(f"the cohort has no view column: none of {list(standard)} and no "
                          f"{prefix}* column among {list(frame.columns)}")
    return tuple(found)


def validate_multiview_cohort(
    frame: pd.DataFrame,
    views: Iterable[str] | None = None,
    *,
    min_views: int = 1,
    clinical: bool = True,
    label: bool = True,
    **find_params: Any,
) -> pd.DataFrame:
    """Check a cohort with extra view columns and return it normalised (a copy).

    Every view column must be present and filled in every row, and its ROI
    column (when present) must hold valid boxes; the clinical indicators and
    the label are checked as by :func:`thyronet.datasets.validate_cohort`.

    Parameters
    ----------
    frame : DataFrame
        The cohort; it is not modified.
    views : iterable of str or None
        The view columns; ``None`` finds them with :func:`find_view_columns`.
    min_views : int, default=1
        Fewest views required.
    clinical, label : bool
        Require the 13 clinical indicators / the label column.
    **find_params
        Passed to :func:`find_view_columns` when ``views`` is ``None``.

    Returns
    -------
    DataFrame
        A normalised copy; ``frame.attrs["views"]`` holds the view columns.

    Raises
    ------
    CohortError
        Naming the column and rows at fault.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from thyronet_multiview import validate_multiview_cohort
    >>> image = np.zeros((8, 8), np.float32)
    >>> frame = pd.DataFrame({"view_1": [image], "view_2": [image], "view_3": [image]})
    >>> validate_multiview_cohort(frame, clinical=False, label=False).attrs["views"]
    ('view_1', 'view_2', 'view_3')
    """
    frame = _check_frame(frame)
    views = find_view_columns(frame, **find_params) if views is None else tuple(views)
    if not views or not all(isinstance(v, str) for v in views):
        raise CohortError(f"views must be a non-empty sequence of column names, got {views!r}")
    repeated = sorted({v for v in views if views.count(v) > 1})
    if repeated:
        raise CohortError(f"view column(s) {repeated} are listed more than once")
    if len(views) < min_views:
        raise CohortError(f"the cohort needs at least {min_views} view columns; found "
                          f"{len(views)}: {list(views)}")
    out = validate_cohort(frame, views=views, clinical=clinical, label=label)
    out.attrs["views"] = views
    return out


def add_view_columns(
    frame: pd.DataFrame,
    images: Mapping[str, Sequence[Any]] | Sequence[Sequence[Any]],
    *,
    rois: Mapping[str, Sequence[Any]] | Sequence[Sequence[Any]] | None = None,
    prefix: str = VIEW_PREFIX,
) -> pd.DataFrame:
    """A copy of ``frame`` with extra view columns (and their ROI columns).

    Parameters
    ----------
    frame : DataFrame
        The cohort; it is not modified.
    images : mapping or sequence
        A sequence of views numbers them after the cohort's last numbered view
        (``view_1``, ``view_2``, ...); a mapping names them (``{"oblique": ...}``
        gives ``view_oblique``). Each view is one image (path or 2-D array) per row.
    rois : mapping or sequence, optional
        ROI boxes ``(x0, y0, x1, y1)`` per view, in the same layout as ``images``.
    prefix : str, default="view_"

    Returns
    -------
    DataFrame

    Raises
    ------
    CohortError
        A view has the wrong number of images, or its column already exists.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from thyronet_multiview import add_view_columns
    >>> frame = pd.DataFrame({"longitudinal": ["a.png"], "transverse": ["b.png"]})
    >>> add_view_columns(frame, [["c.png"], ["d.png"]]).columns.tolist()
    ['longitudinal', 'transverse', 'view_1', 'view_2']
    """
    frame = _check_frame(frame)
    if isinstance(images, Mapping):
        names = [k if str(k).startswith(prefix) else f"{prefix}{k}" for k in images]
        columns = list(images.values())
        roi_values = None
        if rois is not None:
            if not isinstance(rois, Mapping):
                raise TypeError("rois must be a mapping when images is a mapping")
            unknown = sorted(set(rois) - set(images))
            if unknown:
                raise CohortError(f"rois given for views {unknown} that are not in images")
            roi_values = [rois.get(k) for k in images]
    else:
        pattern = re.compile(rf"^{re.escape(prefix)}(\d+)$")
        numbers = [int(m.group(1)) for c in frame.columns
                   if isinstance(c, str) and (m := pattern.match(c))]
        start = max(numbers, default=0) + 1
        columns = list(images)
        names = [f"{prefix}{start + k}" for k in range(len(columns))]
        roi_values = None
        if rois is not None:
            roi_values = list(rois)
            if len(roi_values) != len(columns):
                raise CohortError(f"got ROI boxes for {len(roi_values)} view(s) but images for "
                                  f"{len(columns)}")
    out = frame.copy()
    for k, (name, values) in enumerate(zip(names, columns, strict=True)):
        if name in out.columns:
            raise CohortError(f"view column {name!r} already exists in the cohort")
        values = list(values)
        if len(values) != len(out):
            raise CohortError(f"view {name!r} has {len(values)} image(s) but the cohort has "
                              f"{len(out)} row(s)")
        out[name] = pd.Series(values, index=out.index, dtype=object)
        boxes = None if roi_values is None else roi_values[k]
        if boxes is not None:
            boxes = list(boxes)
            if len(boxes) != len(out):
                raise CohortError(f"ROI column of view {name!r} has {len(boxes)} box(es) but "
                                  f"the cohort has {len(out)} row(s)")
            out[f"{name}_roi"] = pd.Series(boxes, index=out.index, dtype=object)
    return out


def multiview_fuser(
    frame: pd.DataFrame | None = None,
    *,
    views: Sequence[str] | None = None,
    strategy: str = "view_pool",
    **params: Any,
) -> DualChannelFuser:
    """A :class:`thyronet.DualChannelFuser` over every view column of a cohort.

    Parameters
    ----------
    frame : DataFrame or None
        Cohort whose view columns are found with :func:`find_view_columns`;
        not needed when ``views`` is given.
    views : sequence of str or None
        The view columns to fuse, in order.
    strategy : str, default="view_pool"
        A registered fusion strategy (this plugin's ``nview_stack``,
        ``nview_stack3``, ``view_max``, ``view_pool``, or any other).
    **params
        Other :class:`~thyronet.DualChannelFuser` parameters (``image_size``...).

    Returns
    -------
    DualChannelFuser
        Unfitted.

    Raises
    ------
    ValueError
        The strategy does not take that many views (checked now, not at ``fit``).

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from thyronet_multiview import multiview_fuser
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({f"view_{k}": list(rng.random((4, 16, 16), np.float32))
    ...                       for k in (1, 2, 3, 4, 5)})
    >>> fuser = multiview_fuser(frame, strategy="view_pool", image_size=16)
    >>> fuser.views
    ('view_1', 'view_2', 'view_3', 'view_4', 'view_5')
    >>> fuser.fit_transform(frame).shape
    (4, 3, 16, 16)
    """
    from thyronet.fusion import get_fusion

    if views is None:
        if frame is None:
            raise ValueError("pass a cohort frame or views=")
        views = find_view_columns(frame)
    views = tuple(views)
    fusion = get_fusion(strategy)
    n = len(fusion.select) if fusion.select is not None else len(views)
    if n < fusion.min_views or (fusion.max_views is not None and n > fusion.max_views):
        most = "any number of" if fusion.max_views is None else f"{fusion.max_views}"
        raise ValueError(f"fusion strategy {strategy!r} takes {fusion.min_views} to {most} "
                         f"views; the cohort has {len(views)}: {list(views)}")
    return DualChannelFuser(views=views, strategy=strategy, **params)
