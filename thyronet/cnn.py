"""``SkorchCNN``: a timm backbone fine-tuned as a scikit-learn binary classifier.

The estimator wraps a skorch :class:`~skorch.NeuralNetBinaryClassifier` whose
module is a registered backbone (:mod:`thyronet.backbones`) with one output logit.
It takes the ``(n, C, H, W)`` float32 images of :class:`thyronet.DualChannelFuser`
(arrays or ``numpy.memmap``; batches are read from the array one at a time, so a
memmap is never loaded whole).
"""

from __future__ import annotations

import json
import math
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    assert_all_finite,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)
from skorch import NeuralNetBinaryClassifier
from skorch.callbacks import Callback, EarlyStopping, EpochScoring, LRScheduler, ProgressBar
from skorch.hf import AccelerateMixin  # skorch's accelerate glue; does not import accelerate
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from thyronet.backbones import (
    Backbone,
    WeightsMismatchError,
    _build_net,
    compare_state_dicts,
    get_backbone,
)

__all__ = ["ImageAugment", "SkorchCNN"]

_OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}
_OPTIMIZER_DEFAULTS = {"sgd": {"momentum": 0.9, "nesterov": True}}
_NESTED = {"optimizer": "optimizer_kwargs", "backbone": "backbone_kwargs"}
_FINITE_CHUNK_BYTES = 64 * 2**20


# ---------------------------------------------------------------------------------------
# input validation
# ---------------------------------------------------------------------------------------
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


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; check explicit CUDA."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available; use device='auto' or 'cpu'")
    return device


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with torch's intra-op CPU thread count set to ``n`` (``None``: as is).

    The previous count is restored afterwards. The count is process-wide: do not
    change it from concurrently running threads.

    Examples
    --------
    >>> import torch
    >>> from thyronet.cnn import torch_threads
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------
def _memmap_spec(X: np.ndarray) -> dict | None:
    """File location of a C-contiguous memmap (or a row slice of one), to reopen it."""
    if not isinstance(X, np.memmap) or getattr(X, "_mmap", None) is None:
        return None
    if not X.flags["C_CONTIGUOUS"] or X.filename is None:
        return None
    import mmap

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


# ---------------------------------------------------------------------------------------
# augmentation
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageAugment:
    """Random train-time augmentation of a batch of images, with torch ops on its device.

    Each image gets its own draw of: horizontal/vertical flip, a small affine
    transform (rotation, scale, translation), gamma, contrast and brightness changes
    (relative to the image's own intensity range) and multiplicative speckle noise.

    Parameters
    ----------
    hflip, vflip : float
        Flip probabilities (ultrasound depth runs top to bottom: ``vflip=0``).
    rotate : float
        Maximum rotation in degrees.
    scale : float
        Maximum relative zoom in or out.
    translate : float
        Maximum shift as a fraction of the image size.
    gamma : float
        Gamma drawn log-uniformly in ``[1/(1+gamma), 1+gamma]``.
    contrast, brightness : float
        Maximum relative contrast change; maximum shift as a fraction of the range.
    speckle : float
        Standard deviation of the multiplicative noise ``x * (1 + speckle * N(0, 1))``.

    Examples
    --------
    >>> import torch
    >>> from thyronet.cnn import ImageAugment
    >>> _ = torch.manual_seed(0)
    >>> ImageAugment()(torch.rand(4, 2, 16, 16)).shape
    torch.Size([4, 2, 16, 16])
    """

    hflip: float = 0.5
    vflip: float = 0.0
    rotate: float = 10.0
    scale: float = 0.1
    translate: float = 0.05
    gamma: float = 0.2
    contrast: float = 0.1
    brightness: float = 0.1
    speckle: float = 0.05

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        dev = x.device
        x = x.float()

        def uniform(bound: float) -> torch.Tensor:
            return torch.empty(n, device=dev).uniform_(-bound, bound)

        def per_image(v: torch.Tensor) -> torch.Tensor:
            return v.view(n, 1, 1, 1)

        for p, dim in ((self.hflip, -1), (self.vflip, -2)):
            if p > 0:
                flip = per_image(torch.rand(n, device=dev) < p)
                x = torch.where(flip, x.flip(dim), x)
        if self.rotate > 0 or self.scale > 0 or self.translate > 0:
            angle = uniform(self.rotate) * (math.pi / 180.0)
            zoom = 1.0 + uniform(self.scale)
            cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
            tx, ty = 2.0 * uniform(self.translate), 2.0 * uniform(self.translate)
            theta = torch.stack(
                [torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1
            )
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if self.gamma > 0 or self.contrast > 0 or self.brightness > 0 or self.speckle > 0:
            lo = x.amin(dim=(1, 2, 3), keepdim=True)
            span = (x.amax(dim=(1, 2, 3), keepdim=True) - lo).clamp_min(1e-6)
            z = (x - lo) / span
            if self.gamma > 0:
                g = torch.exp(uniform(math.log1p(self.gamma)))
                z = z.clamp(0.0, 1.0) ** per_image(g)
            if self.contrast > 0:
                mean = z.mean(dim=(1, 2, 3), keepdim=True)
                z = (z - mean) * per_image(1.0 + uniform(self.contrast)) + mean
            if self.brightness > 0:
                z = z + per_image(uniform(self.brightness))
            if self.speckle > 0:
                z = z * (1.0 + self.speckle * torch.randn_like(z))
            x = z * span + lo
        return x


# ---------------------------------------------------------------------------------------
# skorch pieces
# ---------------------------------------------------------------------------------------
class WarmupCosine:
    """``LambdaLR`` factor: linear warm-up over ``warmup`` steps, then cosine to 0 (or flat).

    Examples
    --------
    >>> from thyronet.cnn import WarmupCosine
    >>> f = WarmupCosine(warmup=2, total=10)
    >>> [round(f(s), 3) for s in (0, 1, 2, 6, 9)]
    [0.5, 1.0, 1.0, 0.5, 0.038]
    """

    def __init__(self, warmup: int, total: int, cosine: bool = True) -> None:
        self.warmup = int(warmup)
        self.total = max(int(total), 1)
        self.cosine = cosine

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if not self.cosine:
            return 1.0
        progress = (step - self.warmup) / max(1, self.total - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class FreezeBody(Callback):
    """Train only the classifier head for the first ``epochs`` epochs, then everything."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def _set(self, net, body_trainable: bool) -> None:
        head = {id(p) for p in net.module_.head_parameters()}
        for p in net.module_.parameters():
            p.requires_grad_(body_trainable or id(p) in head)

    def on_train_begin(self, net, **kwargs) -> None:
        if self.epochs > 0:
            self._set(net, False)

    def on_epoch_begin(self, net, **kwargs) -> None:
        if self.epochs > 0 and len(net.history) == self.epochs + 1:
            self._set(net, True)

    def on_train_end(self, net, **kwargs) -> None:
        self._set(net, True)


class FixedValidation:
    """skorch ``train_split`` returning a given validation dataset."""

    def __init__(self, valid: Dataset) -> None:
        self.valid = valid

    def __call__(self, dataset, y=None, **fit_params):
        return dataset, self.valid


class ThyroNet(NeuralNetBinaryClassifier):
    """skorch binary classifier with train-time augmentation, autocast and channels-last.

    Parameters
    ----------
    augment : callable or None
        Applied to each training batch on the device (never to validation or
        prediction batches).
    autocast : bool or torch.dtype
        Run the forward pass under autocast: ``True`` in bf16, or in the given
        dtype (``torch.float16`` for a model trained with fp16 mixed precision).
    channels_last : bool
        Use the channels-last memory format for the module and inputs.
    *args, **kwargs
        Those of :class:`skorch.NeuralNetBinaryClassifier`.
    """

    def __init__(
        self,
        module,
        *args,
        augment=None,
        autocast: bool | torch.dtype = False,
        channels_last: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(module, *args, **kwargs)
        self.augment = augment
        self.autocast = autocast
        self.channels_last = channels_last

    def initialize_module(self):
        super().initialize_module()
        if self.channels_last:
            self.module_ = self.module_.to(memory_format=torch.channels_last)
        return self

    def _prepare(self, x) -> torch.Tensor:
        x = torch.as_tensor(x).to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _autocast(self):
        dtype = self.autocast if isinstance(self.autocast, torch.dtype) else torch.bfloat16
        return torch.autocast(
            device_type=torch.device(self.device).type, dtype=dtype, enabled=bool(self.autocast)
        )

    def _backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def infer(self, x, **fit_params):
        x = self._prepare(x)
        with self._autocast():
            y = super().infer(x, **fit_params)
        return y.float()

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = batch
        Xi = self._prepare(Xi)
        if self.augment is not None:
            Xi = self.augment(Xi)
            if self.channels_last:
                Xi = Xi.contiguous(memory_format=torch.channels_last)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self._backward(loss)
        return {"loss": loss, "y_pred": y_pred}


# ---------------------------------------------------------------------------------------
# Hugging Face Accelerate (multi-GPU data parallelism); accelerate is imported lazily
# ---------------------------------------------------------------------------------------
_ACCELERATE_HINT = 'install it with: pip install "thyronet[accelerate]"'


def _import_accelerate():
    """The ``accelerate`` package, or an ImportError that names thyronet's extra."""
    try:
        import accelerate
    except ImportError as exc:
        raise ImportError(
            f"SkorchCNN(accelerator=...) needs the accelerate package; {_ACCELERATE_HINT}"
        ) from exc
    return accelerate


def _whole_batch(batch):
    """``collate_fn`` of a loader whose dataset serves whole batches (``__getitems__``)."""
    return batch


def _discard(*args, **kwargs) -> None:
    """Print sink of the processes other than the main one: one epoch table per launch."""


def _accelerator_device(accelerator) -> str:
    device = torch.device(accelerator.device)
    return "cpu" if device.type == "cpu" else str(device)


class AcceleratedThyroNet(AccelerateMixin, ThyroNet):
    """:class:`ThyroNet` trained through a Hugging Face ``accelerate.Accelerator``.

    skorch's :class:`~skorch.hf.AccelerateMixin` prepares the module, criterion,
    optimizer and data loaders with the accelerator (DistributedDataParallel and one
    shard of every epoch's batches per process), steps inside
    ``accelerator.accumulate`` and back-propagates with ``accelerator.backward``. On
    top of it this class keeps ThyroNet's augmentation and channels-last inputs, runs
    the forward pass under ``accelerator.autocast()`` (the accelerator's
    ``mixed_precision``), and, with several processes, makes every process record the
    same history: the training loss is averaged over the processes, and validation
    predictions and labels are gathered from all of them (``gather_for_metrics``, which
    drops the padding of the last round) before the validation loss and AUC are
    computed. Otherwise each process would score only its own shard and early stopping
    could stop one process and not another (skorch issue #952).

    :class:`SkorchCNN` builds it when given an ``accelerator`` and turns it back into
    a plain :class:`ThyroNet` after training.
    """

    def _initialize_accelerator(self):
        # A criterion without parameters (BCEWithLogitsLoss) only needs to be on the
        # device: accelerate's multi-CPU path wraps every prepared module in DDP, which
        # refuses one without parameters (its multi-GPU path leaves such modules alone).
        if self._wrapped_with_accelerator:
            return self
        criteria = list(self._criteria)
        plain = [
            name
            for name in criteria
            if isinstance(getattr(self, name + "_"), torch.nn.Module)
            and not any(p.requires_grad for p in getattr(self, name + "_").parameters())
        ]
        self._criteria = [name for name in criteria if name not in plain]
        try:
            super()._initialize_accelerator()
        finally:
            self._criteria = criteria
        if self.accelerator.device_placement:
            for name in plain:
                setattr(self, name + "_", getattr(self, name + "_").to(self.accelerator.device))
        return self

    def get_iterator(self, dataset, training=False):
        # accelerate shards the batch_sampler of a DataLoader; the BatchSampler-as-sampler
        # of batch_loader is only handled on its multi-process path (accelerate 1.15)
        loader = ThyroNet.get_iterator(self, dataset, training=training)
        loader = DataLoader(
            loader.dataset,
            batch_sampler=loader.sampler,
            collate_fn=_whole_batch,
            num_workers=loader.num_workers,
            pin_memory=loader.pin_memory,
        )
        return self.accelerator.prepare(loader)

    def _prepare(self, x) -> torch.Tensor:
        x = torch.as_tensor(x).to(self.accelerator.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _autocast(self):
        return self.accelerator.autocast()

    def _backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def train_step_single(self, batch, **fit_params):
        # ThyroNet's step (augmentation, _backward), not AccelerateMixin's (first in the MRO)
        return ThyroNet.train_step_single(self, batch, **fit_params)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        accelerator = self.accelerator
        if iterator is None or accelerator.num_processes == 1:
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        batch_count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            Xi, yi = batch
            if training:
                local = torch.tensor(
                    [step["loss"].item() * len(yi), len(yi)],
                    dtype=torch.float64,
                    device=accelerator.device,
                )
                total = accelerator.reduce(local, reduction="sum")
                loss, size = float(total[0] / total[1]), int(total[1])
            else:
                y_pred, y_true = accelerator.gather_for_metrics(
                    (step["y_pred"].detach(), yi.to(accelerator.device))
                )
                with torch.no_grad():
                    all_loss = self.get_loss(y_pred, y_true, training=False)
                step = {**step, "loss": all_loss, "y_pred": y_pred}
                batch = (Xi, y_true)  # the scoring callbacks read the labels from the batch
                loss, size = float(all_loss), len(y_true)
            self.history.record_batch(prefix + "_loss", loss)
            self.history.record_batch(prefix + "_batch_size", size)
            self.notify("on_batch_end", batch=batch, training=training, **step)
            batch_count += 1
        self.history.record(prefix + "_batch_count", batch_count)
        return None


def _without_accelerator(net: AcceleratedThyroNet, device: str, datasets) -> ThyroNet:
    """The trained ``net`` as a plain :class:`ThyroNet` that no longer refers to the accelerator.

    Its module and criterion are unwrapped (no DistributedDataParallel, no autocast
    wrapper), its optimizer is the torch one, inference runs under the autocast of the
    accelerator's mixed precision, and the accelerator forgets the model, optimizer and
    data loaders of this fit (it keeps a reference to everything it prepared, which would
    otherwise pile up over repeated fits and keep the training data alive).
    """
    accelerator = net.accelerator
    prepared = [net.module_, net.criterion_, net.optimizer_]
    datasets = [d for d in datasets if d is not None]
    net.module_ = accelerator.unwrap_model(net.module_, keep_fp32_wrapper=False)
    net.criterion_ = accelerator.unwrap_model(net.criterion_, keep_fp32_wrapper=False)
    net.optimizer_ = getattr(net.optimizer_, "optimizer", net.optimizer_)
    for module in (net.module_, net.criterion_):
        vars(module).pop("_is_accelerate_prepared", None)  # accelerate's mark
    for name in ("_models", "_optimizers", "_dataloaders"):
        held = getattr(accelerator, name, None)
        if isinstance(held, list):
            held[:] = [
                obj
                for obj in held
                if not any(obj is p for p in prepared)
                and not any(getattr(obj, "dataset", None) is d for d in datasets)
            ]
    mixed = str(accelerator.mixed_precision) if accelerator.native_amp else "no"
    plain = ThyroNet.__new__(ThyroNet)
    plain.__dict__.update(
        {
            k: v
            for k, v in vars(net).items()
            if k not in ("accelerator", "unwrap_after_train", "_wrapped_with_accelerator")
        }
    )
    plain.device = device
    plain.autocast = {"bf16": True, "fp16": torch.float16}.get(mixed, False)
    return plain


def _broadcast_seed(accelerator, seed: int) -> int:
    """Process 0's ``seed`` on every process (``random_state=None`` differs per process)."""
    from accelerate.utils import broadcast

    value = torch.tensor([seed], dtype=torch.int64, device=accelerator.device)
    return int(broadcast(value, from_process=0).item())


def _check_same_data(accelerator, X, y01, n_train: int, n_valid: int) -> None:
    """Fail on every process (instead of hanging) when the processes got different data."""
    mine = torch.tensor(
        [[len(X), *X.shape[1:], int(y01.sum()), n_train, n_valid]],
        dtype=torch.int64,
        device=accelerator.device,
    )
    every = accelerator.gather(mine).cpu()
    if not bool((every == every[0]).all()):
        raise ValueError(
            "every process must call SkorchCNN.fit with the same data; "
            "(n_samples, channels, height, width, positives, n_train, n_valid) "
            f"per process: {every.tolist()}"
        )


# ---------------------------------------------------------------------------------------
# the estimator
# ---------------------------------------------------------------------------------------
class SkorchCNN(ClassifierMixin, BaseEstimator):
    """A timm CNN fine-tuned as a scikit-learn binary classifier, built on skorch.

    ``fit`` builds a :class:`skorch.NeuralNetBinaryClassifier` around a registered
    backbone (ResNet101 by default, as in the paper) with one output logit, and
    trains it on ``(n, C, H, W)`` images — the output of
    :class:`thyronet.DualChannelFuser` — with AdamW, a warm-up + cosine learning-rate
    schedule and early stopping on the validation AUC (the best epoch is restored).

    Parameters
    ----------
    backbone : str or Backbone, default="resnet101"
        Registered backbone name or any timm model name
        (:func:`thyronet.backbones.get_backbone`).
    pretrained : bool or path, default=False
        ``False`` (random init), ``True`` (timm's ImageNet weights from the Hugging
        Face hub or its local cache; the paper's setting) or a path to a local
        ``.pth``/``.safetensors`` weights file. RGB weights are adapted by timm to
        the image's channel count.
    lr : float, default=3e-4
        Peak learning rate.
    weight_decay : float, default=1e-2
        Weight decay (decoupled for AdamW).
    max_epochs : int, default=30
    batch_size : int, default=32
        Training and inference batch size.
    optimizer : {"adamw", "adam", "sgd"} or torch optimizer class, default="adamw"
        ``"sgd"`` uses Nesterov momentum 0.9 unless ``optimizer_kwargs`` says otherwise.
    optimizer_kwargs : dict or None
        More optimizer arguments; also set as ``optimizer__<name>`` in
        :meth:`set_params` / grid searches.
    lr_schedule : {"cosine", "constant"}, default="cosine"
        Per-batch schedule after the warm-up.
    warmup_epochs : int, default=1
        Linear learning-rate warm-up length.
    freeze_epochs : int, default=0
        Train only the classifier head for this many epochs, then the whole network.
    class_weight : {"balanced"}, dict or None, default=None
        ``"balanced"`` weighs positives by ``n_negative / n_positive`` in the loss;
        ``{label: weight}`` by ``weight[positive] / weight[negative]``.
    augment : bool or ImageAugment, default=True
        Train-time augmentation (flips, small affine, gamma/contrast/brightness,
        speckle noise); ``True`` uses :class:`ImageAugment` defaults.
    early_stopping : bool, default=True
        Stop when the validation AUC has not improved for ``patience`` epochs and
        restore the weights of the best epoch. Needs a validation set.
    patience : int, default=5
    validation_fraction : float or None, default=0.2
        Stratified internal validation split of ``X``; ignored when ``fit`` gets
        ``X_val``/``y_val``; ``None`` trains on everything (no validation).
    device : str, default="auto"
        ``"auto"`` picks CUDA when present; any torch device string otherwise.
    precision : {"auto", "fp32", "bf16"}, default="auto"
        ``"auto"``: bf16 autocast on CUDA, fp32 on CPU.
    channels_last : bool, default=True
        Channels-last memory format (faster convolutions on CPU and GPU).
    num_workers : int, default=0
        DataLoader worker processes.
    num_threads : int or None, default=None
        Torch intra-op CPU threads while training (restored after ``fit``);
        ``None`` keeps the process's setting. CPU training results depend on the
        thread count (it changes the summation order of batch-norm statistics and
        convolution gradients), and job launchers change it: joblib's loky workers
        start with ``cpu_count // n_jobs`` threads, Dask workers with one. Set it
        (e.g. ``1``) to get the same model from a local fit, a
        ``GridSearchCV(n_jobs=...)`` worker and a Dask cluster (see the Scaling
        guide). Inference is not affected (eval-mode outputs are bit-identical
        across thread counts).
    backbone_kwargs : dict or None
        Extra ``timm.create_model`` arguments (``drop_rate``, ``drop_path_rate``...);
        also set as ``backbone__<name>``.
    random_state : int, RandomState or None
        Seeds weights, shuffling, the validation split and augmentation; fits on
        CPU are reproducible for a fixed value.
    verbose : int, default=1
        ``>= 1``: skorch's epoch table and a progress bar over batches; ``0``: silent.
    accelerator : accelerate.Accelerator or None, default=None
        Train through Hugging Face Accelerate (skorch's
        :class:`~skorch.hf.AccelerateMixin`): data-parallel over the processes of
        an ``accelerate launch`` (DistributedDataParallel, one GPU per process),
        with the accelerator's mixed precision (``Accelerator(mixed_precision=
        "bf16")``) and gradient accumulation. Every process calls ``fit`` with the
        same data; each trains on its share of every epoch's batches
        (``batch_size`` is per process) and all record the same history. The
        accelerator places the model: leave ``device="auto"`` and ``precision`` at
        ``"auto"`` (or equal to the accelerator's). ``freeze_epochs`` must be 0
        with several processes. The fitted model is a plain one on
        ``accelerator.device``: each process predicts on its own (no collective
        calls), and ``clone`` shares the accelerator, while pickling, copying and
        :func:`thyronet.model_io.save_model` store ``accelerator=None`` (an
        accelerator belongs to one launch). Needs ``pip install
        "thyronet[accelerate]"``; the multi-GPU guide (``docs/multi-gpu.md``) has
        the launch command.

    Attributes
    ----------
    net_ : ThyroNet
        The fitted skorch net (``net_.module_`` is a :class:`~thyronet.backbones.BackboneNet`;
        ``net_.history`` has the per-epoch losses and AUCs).
    classes_ : ndarray of shape (2,)
    n_features_in_ : int
        Number of image channels seen in ``fit``.
    backbone_ : Backbone
    feature_dim_ : int
        Size of the penultimate features.
    device_ : str
        Device the model lives on.
    best_epoch_ : int or None
        Epoch whose weights were kept (early stopping), ``None`` without validation.
    n_epochs_ : int
        Epochs actually run.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet import SkorchCNN
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((16, 2, 32, 32), dtype=np.float32)
    >>> y = np.arange(16) % 2
    >>> cnn = SkorchCNN(backbone="test_resnet", max_epochs=2, batch_size=8,
    ...                 random_state=0, verbose=0).fit(X, y)
    >>> cnn.predict_proba(X).shape
    (16, 2)
    >>> cnn.classes_
    array([0, 1])
    """

    _parameter_constraints: ClassVar[dict] = {
        "backbone": [str, Backbone],
        "pretrained": ["boolean", str, os.PathLike],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "optimizer": [StrOptions(set(_OPTIMIZERS)), type],
        "optimizer_kwargs": [dict, None],
        "lr_schedule": [StrOptions({"cosine", "constant"})],
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "freeze_epochs": [Interval(Integral, 0, None, closed="left")],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "augment": ["boolean", ImageAugment],
        "early_stopping": ["boolean"],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "device": [str],
        "precision": [StrOptions({"auto", "fp32", "bf16"})],
        "channels_last": ["boolean"],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "num_threads": [Interval(Integral, 1, None, closed="left"), None],
        "backbone_kwargs": [dict, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "accelerator": [None, HasMethods(["prepare", "gather_for_metrics", "autocast"])],
    }

    def __init__(
        self,
        backbone: str | Backbone = "resnet101",
        *,
        pretrained: bool | str | os.PathLike = False,
        lr: float = 3e-4,
        weight_decay: float = 1e-2,
        max_epochs: int = 30,
        batch_size: int = 32,
        optimizer: str | type = "adamw",
        optimizer_kwargs: dict | None = None,
        lr_schedule: str = "cosine",
        warmup_epochs: int = 1,
        freeze_epochs: int = 0,
        class_weight: str | None = None,
        augment: bool | ImageAugment = True,
        early_stopping: bool = True,
        patience: int = 5,
        validation_fraction: float | None = 0.2,
        device: str = "auto",
        precision: str = "auto",
        channels_last: bool = True,
        num_workers: int = 0,
        num_threads: int | None = None,
        backbone_kwargs: dict | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 1,
        accelerator: Any = None,
    ) -> None:
        self.backbone = backbone
        self.pretrained = pretrained
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.optimizer_kwargs = optimizer_kwargs
        self.lr_schedule = lr_schedule
        self.warmup_epochs = warmup_epochs
        self.freeze_epochs = freeze_epochs
        self.class_weight = class_weight
        self.augment = augment
        self.early_stopping = early_stopping
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        self.num_workers = num_workers
        self.num_threads = num_threads
        self.backbone_kwargs = backbone_kwargs
        self.random_state = random_state
        self.verbose = verbose
        self.accelerator = accelerator

    # -- nested parameters ------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters; with ``deep=True`` also ``optimizer__*`` and ``backbone__*`` entries."""
        params = super().get_params(deep=deep)
        if deep:
            for prefix, attr in _NESTED.items():
                values = getattr(self, attr, None)
                for key, value in values.items() if isinstance(values, dict) else ():
                    params[f"{prefix}__{key}"] = value
        return params

    def set_params(self, **params: Any) -> SkorchCNN:
        """Set parameters; ``optimizer__x`` / ``backbone__x`` update the kwargs dicts."""
        nested: dict[str, dict] = {}
        for key in list(params):
            prefix, sep, sub = key.partition("__")
            if sep and prefix in _NESTED and sub:
                nested.setdefault(_NESTED[prefix], {})[sub] = params.pop(key)
        super().set_params(**params)
        for attr, values in nested.items():
            current = getattr(self, attr)
            setattr(self, attr, {**(current if isinstance(current, dict) else {}), **values})
        return self

    def __sklearn_clone__(self) -> SkorchCNN:
        """``clone`` shares the accelerator (the handle of this launch) instead of copying it."""
        if self.accelerator is None:
            return super().__sklearn_clone__()
        params = self.get_params(deep=False)
        accelerator = params.pop("accelerator")
        return type(self)(
            **{k: clone(v, safe=False) for k, v in params.items()}, accelerator=accelerator
        )

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        if state.get("accelerator") is not None:
            # An Accelerator is one launch's process group, device and mixed-precision
            # policy, not part of the model (and not a type model files may contain).
            state = {**state, "accelerator": None}
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        net = self.__dict__.get("net_")
        if net is not None and str(net.device) != str(self.__dict__.get("device_")):
            # skorch mapped the tensors to another device (a CUDA model loaded on a
            # machine without CUDA): follow it, and re-resolve precision="auto".
            self.device_ = str(net.device)
            net.autocast = self._autocast(self.device_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.three_d_array = False
        tags.non_deterministic = torch.cuda.is_available()
        return tags

    # -- building the net -------------------------------------------------------------
    def _autocast(self, device: str) -> bool:
        if self.precision == "bf16":
            return True
        if self.precision == "fp32":
            return False
        return torch.device(device).type == "cuda"

    def _check_accelerator(self):
        """The accelerator (``None`` without one), checked against the other parameters."""
        accelerator = self.accelerator
        if accelerator is None:
            return None
        accelerate = _import_accelerate()
        if not isinstance(accelerator, accelerate.Accelerator):
            raise TypeError(
                f"accelerator must be an accelerate.Accelerator, got {type(accelerator).__name__}"
            )
        if self.device != "auto":
            raise ValueError(
                f"device={self.device!r} cannot be combined with an accelerator, "
                f"which places the model itself (on {accelerator.device}); leave "
                "device='auto'"
            )
        mixed = str(accelerator.mixed_precision)
        if self.precision not in ("auto", {"no": "fp32", "bf16": "bf16"}.get(mixed)):
            raise ValueError(
                f"precision={self.precision!r} conflicts with the accelerator's "
                f"mixed_precision={mixed!r}; with an accelerator, mixed precision "
                "comes from Accelerator(mixed_precision=...): leave "
                "precision='auto'"
            )
        config = getattr(accelerator, "dataloader_config", None)
        if getattr(config, "split_batches", False) or not getattr(config, "even_batches", True):
            raise ValueError(
                "SkorchCNN needs the accelerator's default data loader settings "
                "(split_batches=False, even_batches=True): batch_size is per "
                "process and every process must run the same number of steps"
            )
        if accelerator.num_processes > 1 and self.freeze_epochs > 0:
            raise ValueError(
                f"freeze_epochs={self.freeze_epochs} is not supported with "
                f"{accelerator.num_processes} processes: DistributedDataParallel "
                "needs a gradient for every parameter at every step; use "
                "freeze_epochs=0"
            )
        return accelerator

    def _resolve_device(self) -> str:
        accelerator = self._check_accelerator()
        if accelerator is None:
            return resolve_device(self.device)
        return _accelerator_device(accelerator)

    def _make_net(
        self,
        in_chans: int,
        device: str,
        *,
        callbacks=(),
        train_split=None,
        pos_weight: float | None = None,
        pretrained=None,
        accelerator=None,
    ) -> ThyroNet:
        name = self.optimizer if isinstance(self.optimizer, str) else None
        optimizer = _OPTIMIZERS[name] if name else self.optimizer
        opt_kwargs = {
            **_OPTIMIZER_DEFAULTS.get(name or "", {}),
            "weight_decay": self.weight_decay,
            **(self.optimizer_kwargs or {}),
        }
        loader = {
            "num_workers": self.num_workers,
            "pin_memory": torch.device(device).type == "cuda",
        }
        augment = None
        if self.augment is True:
            augment = ImageAugment()
        elif isinstance(self.augment, ImageAugment):
            augment = self.augment
        kwargs = {f"optimizer__{k}": v for k, v in opt_kwargs.items()}
        kwargs.update({f"iterator_train__{k}": v for k, v in loader.items()})
        kwargs.update({f"iterator_valid__{k}": v for k, v in loader.items()})
        if pos_weight is not None:
            kwargs["criterion__pos_weight"] = torch.tensor([pos_weight], dtype=torch.float32)
        net_class, kwargs["device"] = ThyroNet, device
        if accelerator is not None:
            net_class = AcceleratedThyroNet
            kwargs.update(
                accelerator=accelerator,
                device=None if accelerator.device_placement else device,
                # fit unwraps after the callbacks' on_train_end, so that EarlyStopping
                # restores its best weights into the module they were taken from (DDP)
                unwrap_after_train=False,
                callbacks__print_log__sink=print if accelerator.is_main_process else _discard,
            )
        return net_class(
            module=_build_net,
            module__backbone=self.backbone,
            module__in_chans=int(in_chans),
            module__num_classes=1,
            module__pretrained=self.pretrained if pretrained is None else pretrained,
            module__backbone_kwargs=dict(self.backbone_kwargs or {}),
            optimizer=optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train=batch_loader,
            iterator_train__shuffle=True,
            iterator_train__drop_singleton=True,
            iterator_valid=batch_loader,
            train_split=train_split,
            callbacks=list(callbacks),
            verbose=int(self.verbose),
            augment=augment,
            autocast=self._autocast(device),
            channels_last=bool(self.channels_last),
            **kwargs,
        )

    def _set_fitted(self, net: ThyroNet, n_channels: int, device: str) -> None:
        self.net_ = net
        self.n_features_in_ = int(n_channels)
        self.backbone_ = get_backbone(self.backbone)
        self.feature_dim_ = int(net.module_.model.num_features)
        self.device_ = device

    def _seed(self) -> int:
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    # -- fit / predict ----------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, X_val=None, y_val=None) -> SkorchCNN:
        """Fine-tune the backbone on images ``X`` and binary labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, height, width)
            Float images (a ``numpy.memmap`` is read batch by batch).
        y : array-like of shape (n_samples,)
            Binary labels.
        X_val, y_val : array-like or None
            A validation set for the epoch table and early stopping; by default a
            stratified ``validation_fraction`` of ``X`` is held out.

        Returns
        -------
        self : SkorchCNN
        """
        get_backbone(self.backbone)  # an unknown name fails before any work
        classes, y01 = check_binary_target(y)
        X = check_images(X)
        check_consistent_length(X, y01)
        n_channels = X.shape[1]
        accelerator = self._check_accelerator()
        device = self._resolve_device()
        seed = self._seed()
        distributed = accelerator is not None and accelerator.num_processes > 1
        if distributed:
            seed = _broadcast_seed(accelerator, seed)
        # distributed validation pads its last round with repeated rows that are cut off
        # after gathering: batches must keep their order
        keep_order = distributed

        train_idx = np.arange(len(X))
        valid = None
        if X_val is not None or y_val is not None:
            if X_val is None or y_val is None:
                raise ValueError("pass both X_val and y_val, or neither")
            X_val = check_images(X_val, name="X_val", n_channels=n_channels)
            check_consistent_length(X_val, y_val)
            y_val = column_or_1d(y_val, warn=False)
            unknown = sorted(set(np.unique(y_val).tolist()) - set(classes.tolist()))
            if unknown:
                raise ValueError(f"y_val has labels {unknown} not seen in y ({list(classes)})")
            y_val01 = (y_val == classes[1]).astype(np.float32)
            if len(np.unique(y_val01)) < 2:
                raise ValueError("y_val has a single class; the validation AUC needs both")
            valid = ImageBatches(X_val, y_val01, keep_order=keep_order)
        elif self.validation_fraction is not None:
            try:
                train_idx, valid_idx = train_test_split(
                    np.arange(len(X)),
                    test_size=self.validation_fraction,
                    stratify=y01,
                    random_state=seed,
                )
            except ValueError as exc:
                raise ValueError(
                    f"cannot hold out a stratified validation_fraction="
                    f"{self.validation_fraction} of {len(X)} samples ({exc}); pass X_val and "
                    "y_val, or validation_fraction=None with early_stopping=False"
                ) from exc
            valid = ImageBatches(X, y01, valid_idx, keep_order=keep_order)
        if valid is None and self.early_stopping:
            raise ValueError(
                "early_stopping=True needs a validation set: set "
                "validation_fraction or pass X_val and y_val (or set "
                "early_stopping=False)"
            )
        if len(np.unique(y01[train_idx])) < 2:
            raise ValueError("the training part of y has a single class")
        if len(train_idx) < 2:
            raise ValueError(f"SkorchCNN needs at least 2 training samples, got {len(train_idx)}")
        train = ImageBatches(X, y01, train_idx)
        if distributed:
            _check_same_data(
                accelerator, X, y01, len(train_idx), 0 if valid is None else len(valid)
            )

        n_train = len(train_idx)
        n_batches = math.ceil(n_train / self.batch_size) - int(n_train % self.batch_size == 1)
        if distributed:  # each process runs its shard of the batches (BatchSamplerShard)
            n_proc = accelerator.num_processes
            dropped = n_train > 1 and n_train % self.batch_size == 1
            n_batches = n_batches // n_proc + int(n_batches % n_proc > 0 and not dropped)
        callbacks: list = []
        if self.warmup_epochs > 0 or self.lr_schedule == "cosine":
            callbacks.append(
                (
                    "lr_schedule",
                    LRScheduler(
                        policy=LambdaLR,
                        step_every="batch",
                        lr_lambda=WarmupCosine(
                            self.warmup_epochs * n_batches,
                            self.max_epochs * n_batches,
                            cosine=self.lr_schedule == "cosine",
                        ),
                    ),
                )
            )
        if self.freeze_epochs > 0:
            callbacks.append(("freeze_body", FreezeBody(self.freeze_epochs)))
        if valid is not None:
            callbacks.append(
                ("valid_auc", EpochScoring("roc_auc", lower_is_better=False, name="valid_auc"))
            )
        if valid is not None and self.early_stopping:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor="valid_auc",
                        lower_is_better=False,
                        patience=self.patience,
                        threshold=0.0,
                        load_best=True,
                    ),
                )
            )
        if self.verbose and (accelerator is None or accelerator.is_main_process):
            # several processes: the bar counts this process's batches (known from epoch 2)
            callbacks.append(
                (
                    "progress",
                    ProgressBar(
                        batches_per_epoch="count" if distributed else "auto",
                        postfix_keys=["train_loss"],
                    ),
                )
            )
        pos_weight = None
        if self.class_weight == "balanced":
            n_pos = float(y01[train_idx].sum())
            pos_weight = (len(train_idx) - n_pos) / n_pos
        elif isinstance(self.class_weight, dict):
            unknown = sorted(set(self.class_weight) - set(classes.tolist()), key=str)
            if unknown:
                raise ValueError(
                    f"class_weight has labels {unknown} that are not in y ({classes.tolist()})"
                )
            w0, w1 = (float(self.class_weight.get(c, 1.0)) for c in classes.tolist())
            if w0 <= 0 or w1 <= 0:
                raise ValueError(f"class_weight values must be > 0, got {self.class_weight}")
            pos_weight = w1 / w0  # the loss up to a constant factor

        devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices), torch_threads(self.num_threads):
            torch.manual_seed(seed)
            net = self._make_net(
                n_channels,
                device,
                callbacks=callbacks,
                train_split=None if valid is None else FixedValidation(valid),
                pos_weight=pos_weight,
                accelerator=accelerator,
            )
            if distributed:
                # DDP gives every process the initial weights of process 0; each then
                # draws its own augmentation (accelerate synchronises the shuffling)
                net.initialize()
                torch.manual_seed(seed + accelerator.process_index)
                net.partial_fit(train, y=None)
            else:
                net.fit(train, y=None)
        # A fitted model carries its weights only: not the training data (validation
        # split), not the optimizer's moment estimates (fit always starts afresh) and not
        # the LR scheduler's second reference to the optimizer.
        net.train_split = None
        net.optimizer_.state.clear()
        for _, callback in net.callbacks_:
            if isinstance(callback, LRScheduler):
                callback.lr_scheduler_ = None
        if accelerator is not None:
            net = _without_accelerator(net, device, (train, valid))
        self.classes_ = classes
        self._set_fitted(net, n_channels, device)
        self.n_epochs_ = len(net.history)
        stopper = dict(net.callbacks_).get("early_stopping")
        if stopper is not None:
            self.best_epoch_ = int(stopper.best_epoch_)
        elif valid is not None:
            self.best_epoch_ = len(net.history)
        else:
            self.best_epoch_ = None
        return self

    def _initialize_untrained(self, n_channels: int, classes=(0, 1), pretrained=None) -> SkorchCNN:
        """Build the (pretrained) model without training, as a fitted estimator."""
        net, device = self._untrained_net(n_channels, pretrained)
        self._set_untrained(net, n_channels, device, classes)
        return self

    def _untrained_net(self, n_channels: int, pretrained=None) -> tuple[ThyroNet, str]:
        device = self._resolve_device()
        devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self._seed())
            net = self._make_net(n_channels, device, pretrained=pretrained).initialize()
        return net, device

    def _set_untrained(self, net: ThyroNet, n_channels: int, device: str, classes) -> None:
        self.classes_ = np.asarray(classes)
        self._set_fitted(net, n_channels, device)
        self.n_epochs_ = 0
        self.best_epoch_ = None

    def _dataset(self, X) -> ImageBatches:
        check_is_fitted(self, "net_")
        return ImageBatches(check_images(X, n_channels=self.n_features_in_))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n_samples, 2)``; column 1 is ``classes_[1]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, height, width)

        Returns
        -------
        ndarray of shape (n_samples, 2)
        """
        data = self._dataset(X)
        with torch.inference_mode():
            return self.net_.predict_proba(data)

    def decision_function(self, X) -> np.ndarray:
        """The logit of ``classes_[1]`` for each sample, shape ``(n_samples,)``."""
        data = self._dataset(X)
        with torch.inference_mode():
            logits = [y.float().cpu() for y in self.net_.forward_iter(data, training=False)]
        return torch.cat(logits).numpy()

    def predict(self, X) -> np.ndarray:
        """Predicted class labels (probability of ``classes_[1]`` above 0.5)."""
        proba = self.predict_proba(X)
        return self.classes_[(proba[:, 1] > 0.5).astype(int)]

    # -- persistence ------------------------------------------------------------------
    def save_weights(self, path: str | os.PathLike) -> Path:
        """Save the fitted model's weights (timm keys) with their metadata.

        ``.safetensors`` writes a safetensors file (metadata in its header); any
        other suffix a ``torch.save`` checkpoint ``{"state_dict": ..., "thyronet": ...}``.
        Both load with :meth:`load_weights` and work as ``pretrained=<path>``.

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        pathlib.Path
        """
        check_is_fitted(self, "net_")
        path = Path(path)
        state = {
            k: v.detach().cpu().contiguous()
            for k, v in self.net_.module_.model.state_dict().items()
        }
        meta = {
            "thyronet.backbone": self.backbone_.name,
            "thyronet.in_chans": str(self.n_features_in_),
            "thyronet.classes": json.dumps(np.asarray(self.classes_).tolist()),
        }
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import save_file

            save_file(state, str(path), metadata={"format": "pt", **meta})
        else:
            torch.save({"state_dict": state, "thyronet": meta}, path)
        return path

    def load_weights(self, path: str | os.PathLike) -> SkorchCNN:
        """Make this estimator a fitted model from weights saved by :meth:`save_weights`.

        The estimator's parameters (``backbone``, ``device``, ``precision``...) are
        used; the channel count and classes come from the file.

        Parameters
        ----------
        path : str or path-like
            A ``.safetensors`` or ``torch.save`` file.

        Returns
        -------
        self : SkorchCNN

        Raises
        ------
        WeightsMismatchError
            The file was saved from another backbone or its keys do not match.
        """
        self._validate_params()
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
        if path.suffix.lower() == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                meta = dict(handle.metadata() or {})
                state = {k: handle.get_tensor(k) for k in handle.keys()}
        else:
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
            except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
                raise ValueError(f"cannot read weights file {str(path)!r}: {exc}") from exc
            if isinstance(payload, dict) and "state_dict" in payload:
                meta, state = dict(payload.get("thyronet") or {}), payload["state_dict"]
            else:
                meta, state = {}, payload
        backbone = get_backbone(self.backbone)
        saved = meta.get("thyronet.backbone")
        if saved is not None and saved != backbone.name:
            raise WeightsMismatchError(
                f"weights file {str(path)!r} was saved from backbone "
                f"{saved!r}, but backbone={backbone.name!r}"
            )
        if "thyronet.in_chans" in meta:
            n_channels = int(meta["thyronet.in_chans"])
        else:
            first = next((v for v in state.values() if getattr(v, "ndim", 0) == 4), None)
            if first is None:
                raise WeightsMismatchError(f"weights file {str(path)!r} has no convolution")
            n_channels = int(first.shape[1])
        classes = json.loads(meta.get("thyronet.classes", "[0, 1]"))
        net, device = self._untrained_net(n_channels, pretrained=False)
        model = net.module_.model
        problems = compare_state_dicts(state, model.state_dict())
        if problems:
            raise WeightsMismatchError(
                f"weights file {str(path)!r} does not match backbone {backbone.name!r}; {problems}"
            )
        model.load_state_dict(state)
        self._set_untrained(net, n_channels, device, classes)
        return self
