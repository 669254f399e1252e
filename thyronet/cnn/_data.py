"""Images in, batches out: input validation and the batch-at-a-time dataset and loader.

:func:`check_images` and :func:`check_binary_target` validate what the CNN step is
given; :class:`ImageBatches` serves ``(n, C, H, W)`` arrays (``numpy.memmap``
included, never loaded whole) a batch at a time, and :func:`batch_loader` is the
``DataLoader`` that asks it for whole batches.
"""

from __future__ import annotations

import mmap

import numpy as np
import scipy.sparse
import torch
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import assert_all_finite, column_or_1d
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

__all__ = ["ImageBatches", "batch_loader", "check_binary_target", "check_images"]

_FINITE_CHUNK_BYTES = 64 * 2**20


def check_images(
    X,
    *,
    name: str = "X",
    n_channels: int | None = None,
    owner: str = "SkorchCNN",
    check_finite: bool = True,
) -> np.ndarray:
    """Validate a batch of images ``(n_samples, n_channels, height, width)``.

    Arrays (``numpy.memmap`` included) are returned as they are, never copied or
    loaded into memory at once; other array-likes go through ``numpy.asarray``.
    Finiteness is checked chunk by chunk.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_channels, height, width)
    name : str
        Name used in error messages.
    n_channels : int or None
        Channel count the model was fitted with.
    owner : str
        Estimator named in error messages.
    check_finite : bool
        Scan the pixels for NaN/inf (one pass over the data).

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Not 4-D, empty, non-numeric, wrong channel count, NaN or infinite pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.cnn import check_images
    >>> check_images(np.zeros((2, 2, 8, 8), np.float32)).shape
    (2, 2, 8, 8)
    """
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    if scipy.sparse.issparse(X):
        raise TypeError(
            f"{owner}: sparse input is not supported; {name} must be a dense "
            "array of images (n_samples, n_channels, height, width)"
        )
    if hasattr(X, "iloc") or hasattr(X, "columns"):
        raise ValueError(
            f"{owner} needs images shaped (n_samples, n_channels, height, width), "
            f"e.g. the output of DualChannelFuser; {name} is a "
            f"{type(X).__name__}"
        )
    if not isinstance(X, np.ndarray):
        try:
            X = np.asarray(X)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{owner}: {name} cannot be read as an array of images: {exc}"
            ) from exc
    if X.dtype.kind == "c":
        raise ValueError(f"{owner}: Complex data not supported ({name} has dtype {X.dtype})")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{owner}: {name} must hold real numbers, got dtype {X.dtype}")
    if X.ndim != 4:
        raise ValueError(
            f"{owner} needs images shaped (n_samples, n_channels, height, width), "
            f"e.g. the output of DualChannelFuser; {name} has shape {X.shape} "
            f"({X.ndim}-D)"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{owner}: {name} has 0 samples (shape {X.shape}); at least 1 is required")
    if min(X.shape[1:]) == 0:
        raise ValueError(f"{owner}: {name} has an empty channel or spatial axis (shape {X.shape})")
    if n_channels is not None and X.shape[1] != n_channels:
        raise ValueError(
            f"{name} has {X.shape[1]} channel(s) but this {owner} was fitted "
            f"with {n_channels}; fuse the views with the same strategy as in fit"
        )
    if check_finite and X.dtype.kind == "f":
        per_sample = max(1, int(np.prod(X.shape[1:])) * X.dtype.itemsize)
        step = max(1, _FINITE_CHUNK_BYTES // per_sample)
        bad: list[int] = []
        for start in range(0, X.shape[0], step):
            chunk = np.asarray(X[start : start + step])
            ok = np.isfinite(chunk).reshape(len(chunk), -1).all(axis=1)
            if not ok.all():
                bad.extend((start + np.flatnonzero(~ok)).tolist())
                if len(bad) >= 10:
                    break
        if bad:
            raise ValueError(
                f"{owner}: {name} contains NaN or infinite pixels in sample(s) "
                f"{bad[:10]}" + (" (first 10 shown)" if len(bad) >= 10 else "")
            )
    return X


def check_binary_target(
    y, name: str = "y", owner: str = "SkorchCNN"
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a binary target; return ``(classes, y as float32 0/1)``.

    Raises
    ------
    ValueError
        ``y`` is None, not 1-D, continuous, single-class or has more than two classes.
    """
    if y is None:
        raise ValueError(f"{owner} requires y to be passed, but the target y is None")
    y = column_or_1d(y, warn=False)
    if y.size == 0:
        raise ValueError(f"{owner}: {name} has 0 samples; at least 2 are required")
    if y.dtype.kind in "fc":
        assert_all_finite(y, input_name=name)
    check_classification_targets(y)
    kind = type_of_target(y, input_name=name, raise_unknown=True)
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(
            f"{name} has a single class ({classes[0]!r}); {owner} needs both "
            "classes of a binary target (only one class is present)"
        )
    if kind != "binary":
        raise ValueError(
            f"Only binary classification is supported. The type of the target is "
            f"{kind}: {name} has {len(classes)} classes ({list(classes)[:10]})"
        )
    return classes, (y == classes[1]).astype(np.float32)


def _memmap_spec(X: np.ndarray) -> dict | None:
    """File location of a C-contiguous memmap (or a row slice of one), to reopen it."""
    if not isinstance(X, np.memmap) or getattr(X, "_mmap", None) is None:
        return None
    if not X.flags["C_CONTIGUOUS"] or X.filename is None:
        return None
    base = np.frombuffer(X._mmap, dtype=np.uint8).ctypes.data
    start = X.offset - X.offset % mmap.ALLOCATIONGRANULARITY
    return {
        "filename": X.filename,
        "dtype": X.dtype.str,
        "shape": X.shape,
        "offset": int(X.ctypes.data - base + start),
    }


class ImageBatches(Dataset):
    """Images (and labels) served a batch at a time: ``dataset[list_of_indices]``.

    Indexing the array once per batch keeps memmaps on disk and avoids per-sample
    collation; pickling a memmap-backed dataset (worker processes) reopens the file
    instead of copying the data.

    Parameters
    ----------
    X : ndarray of shape (n_samples, C, H, W)
    y : ndarray of shape (n_samples,) or None
    indices : ndarray of int or None
        Rows of ``X`` this dataset covers (a split), all when ``None``.
    keep_order : bool, default=False
        Return a batch's rows in the order asked for. By default they come back
        sorted (the order they are read in), which is all training needs; a
        distributed evaluation, whose last batch is padded with repeated rows that
        are cut off after gathering, needs the order kept.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.cnn import ImageBatches
    >>> data = ImageBatches(np.ones((5, 2, 4, 4), np.float32), np.arange(5) % 2)
    >>> xb, yb = data[[0, 3]]
    >>> tuple(xb.shape), yb.tolist()
    ((2, 2, 4, 4), [0.0, 1.0])
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray | None = None,
        indices: np.ndarray | None = None,
        keep_order: bool = False,
    ) -> None:
        self.X = X
        self.y = None if y is None else np.asarray(y, dtype=np.float32)
        self.indices = None if indices is None else np.asarray(indices, dtype=np.int64)
        self.keep_order = keep_order

    def __len__(self) -> int:
        return len(self.X) if self.indices is None else len(self.indices)

    def __getitem__(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.atleast_1d(np.asarray(batch, dtype=np.int64))
        if self.indices is not None:
            rows = self.indices[rows]
        order = np.argsort(rows, kind="stable")
        rows = rows[order]  # ascending reads are kind to memmaps; labels follow the same order
        xb = np.ascontiguousarray(self.X[rows], dtype=np.float32)
        if self.y is None:
            yb = np.zeros(len(rows), dtype=np.float32)
        else:
            yb = self.y[rows]
        if self.keep_order:
            inverse = np.empty_like(order)
            inverse[order] = np.arange(len(order))
            xb, yb = xb[inverse], yb[inverse]
        return torch.from_numpy(xb), torch.from_numpy(np.ascontiguousarray(yb))

    def __getitems__(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch, for a ``DataLoader`` with a ``batch_sampler`` (see ``_whole_batch``)."""
        return self[batch]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        spec = _memmap_spec(self.X)
        if spec is not None:
            state["X"] = None
            state["_memmap"] = spec
        return state

    def __setstate__(self, state: dict) -> None:
        spec = state.pop("_memmap", None)
        self.__dict__.update(state)
        if spec is not None:
            self.X = np.memmap(
                spec["filename"],
                dtype=np.dtype(spec["dtype"]),
                mode="r",
                shape=tuple(spec["shape"]),
                offset=spec["offset"],
            )


def batch_loader(
    dataset: Dataset,
    batch_size: int = 32,
    shuffle: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    drop_singleton: bool = False,
) -> DataLoader:
    """A DataLoader that asks ``dataset`` for whole batches (``dataset[indices]``).

    ``drop_singleton`` drops a last batch of one sample (BatchNorm cannot train on it).
    """
    sampler = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
    drop_last = bool(drop_singleton and len(dataset) > 1 and len(dataset) % batch_size == 1)
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=BatchSampler(sampler, batch_size, drop_last=drop_last),
        num_workers=num_workers,
        pin_memory=pin_memory,
    )
