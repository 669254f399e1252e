"""The fusion transformer: a cohort table (or per-view images) to ``(n, C, H, W)`` float32.

:class:`DualChannelFuser` reads, crops, resizes and normalises each view and combines
the views with a registered :class:`~thyronet.fusion.FusionStrategy`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from thyronet.fusion._strategy import FusionStrategy, get_fusion
from thyronet.imaging import NORMALIZATIONS, ImageError, load_view
from thyronet.schema import VIEW_COLUMNS, CohortError, parse_roi, roi_column


class DualChannelFuser(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Fuse each patient's ultrasound views into one ``(C, H, W)`` float32 image.

    Each view is read (lazily, in batches), cropped to its ROI box enlarged by
    ``roi_margin``, resized to ``image_size`` (padded to a square first when
    ``keep_aspect``), normalised, and the views are combined by ``strategy``.

    Parameters
    ----------
    strategy : str, default="stack"
        A registered fusion strategy: ``stack`` (C = number of views), ``stack3``,
        ``longitudinal``, ``transverse``, ``mean``, ``mosaic`` or a plugin's. An
        unknown name raises :class:`thyronet.plugins.UnknownEntryError` in :meth:`fit`.
    views : tuple of str, default=("longitudinal", "transverse")
        View columns of the cohort table (``<view>_roi`` columns are used when present).
    image_size : int, default=224
        Side of each resized view, in pixels.
    roi_margin : float, default=0.0
        Fraction of the ROI box's width/height added on each side before cropping
        (``0.0``: the ROI box itself, the study's default).
    keep_aspect : bool, default=True
        Pad each crop to a square before resizing (``False`` stretches it).
    normalize : {"minmax", "percentile", "zscore", "none"}, default="minmax"
        Per-image intensity normalisation.
    output : {"array", "memmap"}, default="array"
        ``"memmap"`` writes the result batch by batch to a new ``.npy`` file in
        ``memmap_dir`` and returns it opened read-only, so very large cohorts never
        sit in memory. Files are never overwritten; removing them is up to you. A
        transform that fails (bad image, interrupt) removes its partial file.
    memmap_dir : str or path-like, default=None
        Folder for memmap output (a new temporary folder when ``None``).
    batch_size : int, default=64
        Patients read and fused per batch.
    n_jobs : int, default=None
        Threads reading batches in parallel (joblib; ``-1`` = all cores).
    verbose : int, default=0
        ``> 0`` shows a progress bar over images.

    Attributes
    ----------
    views_ : tuple of str
        The views actually read (a single-view strategy reads one).
    n_channels_ : int
        Channel count C of the output.
    output_shape_ : tuple of int
        ``(C, H, W)`` of each fused image.

    Examples
    --------
    >>> from thyronet import DualChannelFuser
    >>> from thyronet.datasets import make_ptmc_cohort
    >>> cohort = make_ptmc_cohort(n_patients=6, image_size=32, random_state=0)
    >>> DualChannelFuser(image_size=32).fit_transform(cohort).shape
    (6, 2, 32, 32)
    >>> DualChannelFuser("stack3", image_size=32).fit_transform(cohort).shape
    (6, 3, 32, 32)
    """

    _parameter_constraints: ClassVar[dict] = {
        "strategy": [str],
        "views": [tuple, list],
        "image_size": [Interval(Integral, 4, None, closed="left")],
        "roi_margin": [Interval(Real, 0, None, closed="left")],
        "keep_aspect": ["boolean"],
        "normalize": [StrOptions(set(NORMALIZATIONS)), None],
        "output": [StrOptions({"array", "memmap"})],
        "memmap_dir": [str, os.PathLike, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        strategy: str = "stack",
        *,
        views: Sequence[str] = VIEW_COLUMNS,
        image_size: int = 224,
        roi_margin: float = 0.0,
        keep_aspect: bool = True,
        normalize: str | None = "minmax",
        output: str = "array",
        memmap_dir: str | os.PathLike | None = None,
        batch_size: int = 64,
        n_jobs: int | None = None,
        verbose: int = 0,
    ):
        self.strategy = strategy
        self.views = views
        self.image_size = image_size
        self.roi_margin = roi_margin
        self.keep_aspect = keep_aspect
        self.normalize = normalize
        self.output = output
        self.memmap_dir = memmap_dir
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the parameters and the input's layout; no image is read.

        Parameters
        ----------
        X : DataFrame or sequence of per-view images
            A cohort table with the view columns, a ``(n, V, H, W)`` array, or a
            list with one entry per view (each an ``(n, H, W)`` array or a list of
            n paths/2-D arrays).
        y : ignored

        Returns
        -------
        self
        """
        views = tuple(self.views)
        if not views or not all(isinstance(v, str) for v in views):
            raise ValueError(f"views must be a non-empty sequence of column names, got {views!r}")
        strategy = get_fusion(self.strategy)
        selected = self._selected_views(strategy, views)
        n = len(selected)
        if n < strategy.min_views or (strategy.max_views is not None and n > strategy.max_views):
            most = "any" if strategy.max_views is None else strategy.max_views
            raise ValueError(
                f"fusion strategy {strategy.name!r} takes {strategy.min_views} to "
                f"{most} views; got {n}: {list(selected)}"
            )
        sources = self._sources(X, views)  # validates layout
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            self.n_features_in_ = X.shape[1]
        self.views_ = selected
        probe = strategy.fuse(np.zeros((1, n, self.image_size, self.image_size), np.float32))
        if probe.ndim != 4 or probe.shape[0] != 1:
            raise ValueError(
                f"fusion strategy {strategy.name!r} returned shape {probe.shape}; "
                "expected (n, C, H, W)"
            )
        declared = strategy.n_channels(n)
        if probe.shape[1] != declared:
            raise ValueError(
                f"fusion strategy {strategy.name!r} declares {declared} channels "
                f"but produced {probe.shape[1]}"
            )
        self.n_channels_ = int(probe.shape[1])
        self.output_shape_ = tuple(int(s) for s in probe.shape[1:])
        del sources
        return self

    @staticmethod
    def _selected_views(strategy: FusionStrategy, views: tuple[str, ...]) -> tuple[str, ...]:
        if strategy.select is None:
            return views
        missing = [v for v in strategy.select if v not in views]
        if missing:
            raise ValueError(
                f"fusion strategy {strategy.name!r} needs view(s) {missing}, "
                f"which are not among views={list(views)}"
            )
        return tuple(strategy.select)

    def _sources(self, X, views: tuple[str, ...]) -> dict[str, tuple[list, list, list]]:
        """Per view: (row labels, image sources, ROI boxes or None)."""
        if isinstance(X, pd.DataFrame):
            missing = [v for v in views if v not in X.columns]
            if missing:
                raise CohortError(
                    f"DualChannelFuser needs view column(s) {missing}; the input "
                    f"has columns {list(X.columns)}"
                )
            rows = list(X.index)
            out = {}
            for view in views:
                roi_col = roi_column(view)
                if roi_col in X.columns:
                    rois = [
                        parse_roi(v, column=roi_col, row=r)
                        for r, v in zip(rows, X[roi_col], strict=True)
                    ]
                else:
                    rois = [None] * len(rows)
                out[view] = (rows, list(X[view]), rois)
            return out
        if isinstance(X, np.ndarray):
            if X.ndim != 4:
                raise ValueError(
                    f"DualChannelFuser expects a cohort DataFrame with view columns {list(views)},"
                    f" a (n, views, H, W) array or one image sequence per view; got an array of "
                    f"shape {X.shape}"
                )
            per_view = [X[:, i] for i in range(X.shape[1])]
        elif isinstance(X, (list, tuple)):
            per_view = list(X)
        else:
            raise ValueError(
                f"DualChannelFuser expects a cohort DataFrame or per-view images, "
                f"got {type(X).__name__}"
            )
        if len(per_view) != len(views):
            raise ValueError(
                f"got {len(per_view)} view(s) of images but views={list(views)} names {len(views)}"
            )
        counts = {v: len(images) for v, images in zip(views, per_view, strict=True)}
        if len(set(counts.values())) > 1:
            raise ValueError(f"views have different numbers of images: {counts}")
        n = next(iter(counts.values()))
        return {
            v: (list(range(n)), list(images), [None] * n)
            for v, images in zip(views, per_view, strict=True)
        }

    def transform(self, X):
        """Read, crop, resize, normalise and fuse every patient's views.

        Parameters
        ----------
        X : DataFrame or sequence of per-view images
            As in :meth:`fit`.

        Returns
        -------
        ndarray or numpy.memmap of shape (n, C, H, W), float32
        """
        check_is_fitted(self, "n_channels_")
        strategy = get_fusion(self.strategy)
        if isinstance(X, pd.DataFrame):  # a table needs only the views actually read
            sources = self._sources(X, self.views_)
        else:
            sources = self._sources(X, tuple(self.views))
            sources = {v: sources[v] for v in self.views_}
        n = len(next(iter(sources.values()))[0])
        shape = (n, *self.output_shape_)
        starts = range(0, n, self.batch_size)
        jobs = (
            delayed(self._fuse_batch)(strategy, sources, s, min(s + self.batch_size, n))
            for s in starts
        )
        bar = tqdm(
            total=n * len(self.views_),
            desc="fusing views",
            unit="img",
            disable=not self.verbose or None,  # None: only on a TTY
        )
        runner = Parallel(n_jobs=self.n_jobs, prefer="threads", return_as="generator")
        if self.output == "array":
            out = np.empty(shape, dtype=np.float32)
            with bar:
                for start, block in zip(starts, runner(jobs), strict=True):
                    out[start : start + len(block)] = block
                    bar.update(len(block) * len(self.views_))
            return out
        # Memmap output: batches are appended to a new .npy file with plain writes (so the
        # written pages never count in this process's memory), then the file is opened
        # read-only as a memory map. Whatever stops the writing (a bad image, an
        # interrupt, a full disk) removes the partial file, and the temporary folder
        # when this call made it.
        path, made_folder = self._new_memmap_path()
        finished = False
        try:
            with open(path, "xb") as fh, bar:
                np.lib.format.write_array_header_2_0(
                    fh,
                    {
                        "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                        "fortran_order": False,
                        "shape": shape,
                    },
                )
                for block in runner(jobs):
                    fh.write(block.tobytes())
                    bar.update(len(block) * len(self.views_))
            result = np.load(path, mmap_mode="r")
            finished = True
        finally:
            if not finished:
                path.unlink(missing_ok=True)
                if made_folder:
                    shutil.rmtree(path.parent, ignore_errors=True)
        return result

    def _new_memmap_path(self) -> tuple[Path, bool]:
        """A new ``.npy`` path, and whether its folder is a temporary one made here."""
        if self.memmap_dir is None:
            return Path(tempfile.mkdtemp(prefix="thyronet-fused-")) / self._memmap_name(), True
        folder = Path(self.memmap_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / self._memmap_name(), False

    @staticmethod
    def _memmap_name() -> str:
        return f"fused-{uuid.uuid4().hex}.npy"

    def _fuse_batch(self, strategy: FusionStrategy, sources, start: int, stop: int) -> np.ndarray:
        size = self.image_size
        stack = np.empty((stop - start, len(self.views_), size, size), dtype=np.float32)
        for j, view in enumerate(self.views_):
            rows, images, rois = sources[view]
            for i in range(start, stop):
                image = images[i]
                if (
                    image is None
                    or (isinstance(image, float) and np.isnan(image))
                    or (isinstance(image, str) and not image.strip())
                ):
                    raise ImageError(f"view {view!r} is missing (NaN/empty) in row {rows[i]!r}")
                stack[i - start, j] = load_view(
                    image,
                    rois[i],
                    size=size,
                    margin=self.roi_margin,
                    keep_aspect=self.keep_aspect,
                    normalize=self.normalize,
                    row=rows[i],
                    column=view,
                )
        return np.ascontiguousarray(strategy.fuse(stack), dtype=np.float32)

    def get_feature_names_out(self, input_features=None):
        """Names of the output channels: the view names for one-channel-per-view
        strategies (``stack``, ``longitudinal``, ...), otherwise ``<strategy>_<k>``."""
        check_is_fitted(self, "n_channels_")
        strategy = get_fusion(self.strategy)
        if strategy.channels is None or (
            strategy.select is not None and self.n_channels_ == len(self.views_)
        ):
            return np.asarray(self.views_, dtype=object)
        return np.asarray([f"{self.strategy}_{k}" for k in range(self.n_channels_)], dtype=object)

    def set_output(self, *, transform=None):
        """Accepted for pipeline compatibility; the fused images stay a 4-D array.

        ``Pipeline.set_output(transform="pandas")`` reaches every step; a 4-D image
        array has no table form, so this step keeps returning arrays and the steps
        after it (e.g. :class:`thyronet.DeepFeatureExtractor`) return tables.
        """
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
