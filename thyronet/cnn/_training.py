"""The pieces of one CNN fit: its datasets, its skorch callbacks and its net.

:class:`~thyronet.SkorchCNN` turns its parameters into these: the training and
validation :class:`~thyronet.cnn.ImageBatches`, the callbacks (LR schedule,
freezing, validation AUC, early stopping, progress bar), the positive-class loss
weight and the :class:`~thyronet.cnn.ThyroNet` (or, with an accelerator,
:class:`~thyronet.cnn.AcceleratedThyroNet`) to train.
"""

from __future__ import annotations

import math
import re
import sys

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_consistent_length, column_or_1d
from skorch.callbacks import EpochScoring, ProgressBar

from thyronet.backbones import build_backbone_net, resolve_pretrained
from thyronet.cnn._accelerate import AcceleratedThyroNet, accelerated_net_kwargs
from thyronet.cnn._augment import ImageAugment
from thyronet.cnn._data import ImageBatches, batch_loader, check_images
from thyronet.cnn._net import StopWhenStale, ThyroNet, freeze_body_callbacks, lr_schedule

__all__ = [
    "OPTIMIZERS",
    "autocast_setting",
    "fit_callbacks",
    "make_net",
    "positive_weight",
    "print_epoch_row",
    "split_datasets",
    "validation_set",
]

OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}
_OPTIMIZER_DEFAULTS = {"sgd": {"momentum": 0.9, "nesterov": True}}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def print_epoch_row(text: str) -> None:
    """skorch's epoch-table sink: ``print``, without its colour codes when stdout is no TTY.

    skorch colours the best scores with ANSI escapes; in a log file they are noise.
    """
    if not sys.stdout.isatty():
        text = _ANSI.sub("", text)
    print(text, flush=True)


def autocast_setting(precision: str, device: str) -> bool:
    """Whether to run under bf16 autocast: ``precision`` resolved for ``device``."""
    if precision == "bf16":
        return True
    if precision == "fp32":
        return False
    return torch.device(device).type == "cuda"


def validation_set(X_val, y_val, n_channels: int, classes, keep_order: bool):
    """The ``X_val``/``y_val`` of ``fit`` as a dataset of 0/1 labels."""
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
    return ImageBatches(X_val, y_val01, keep_order=keep_order)


def split_datasets(cnn, X, y01, classes, X_val, y_val, seed: int, keep_order: bool):
    """``(train, valid)`` datasets: ``X_val`` or a stratified part of ``X`` (or none)."""
    train_idx, valid = np.arange(len(X)), None
    if X_val is not None or y_val is not None:
        valid = validation_set(X_val, y_val, X.shape[1], classes, keep_order)
    elif cnn.validation_fraction is not None:
        try:
            train_idx, valid_idx = train_test_split(
                np.arange(len(X)),
                test_size=cnn.validation_fraction,
                stratify=y01,
                random_state=seed,
            )
        except ValueError as exc:
            raise ValueError(
                f"cannot hold out a stratified validation_fraction="
                f"{cnn.validation_fraction} of {len(X)} samples ({exc}); pass X_val and "
                "y_val, or validation_fraction=None with early_stopping=False"
            ) from exc
        valid = ImageBatches(X, y01, valid_idx, keep_order=keep_order)
    if valid is None and cnn.early_stopping:
        raise ValueError(
            "early_stopping=True needs a validation set: set "
            "validation_fraction or pass X_val and y_val (or set "
            "early_stopping=False)"
        )
    if len(np.unique(y01[train_idx])) < 2:
        raise ValueError("the training part of y has a single class")
    if len(train_idx) < 2:
        raise ValueError(f"SkorchCNN needs at least 2 training samples, got {len(train_idx)}")
    return ImageBatches(X, y01, train_idx), valid


def fit_callbacks(cnn, n_train: int, validate: bool, accelerator) -> list:
    """The skorch callbacks of a fit: LR schedule, freezing, AUC, early stopping, bar."""
    distributed = accelerator is not None and accelerator.num_processes > 1
    n_batches = math.ceil(n_train / cnn.batch_size) - int(n_train % cnn.batch_size == 1)
    if distributed:  # each process runs its shard of the batches (BatchSamplerShard)
        n_proc = accelerator.num_processes
        dropped = n_train > 1 and n_train % cnn.batch_size == 1
        n_batches = n_batches // n_proc + int(n_batches % n_proc > 0 and not dropped)
    callbacks: list = []
    if cnn.warmup_epochs > 0 or cnn.lr_schedule == "cosine":
        schedule = lr_schedule(
            cnn.warmup_epochs * n_batches,
            cnn.max_epochs * n_batches,
            cosine=cnn.lr_schedule == "cosine",
        )
        callbacks.append(("lr_schedule", schedule))
    if cnn.freeze_epochs > 0:
        callbacks.extend(freeze_body_callbacks(cnn.freeze_epochs))
    if validate:
        auc = EpochScoring("roc_auc", lower_is_better=False, name="valid_auc")
        callbacks.append(("valid_auc", auc))
    if validate and cnn.early_stopping:
        stopper = StopWhenStale(
            monitor="valid_auc",
            lower_is_better=False,
            patience=cnn.patience,
            threshold=0.0,
            load_best=True,
        )
        callbacks.append(("early_stopping", stopper))
    if (
        cnn.verbose
        and sys.stderr.isatty()  # a log file gets the epoch table, not bar redraws
        and (accelerator is None or accelerator.is_main_process)
    ):
        # several processes: the bar counts this process's batches (known from epoch 2)
        bar = ProgressBar(
            batches_per_epoch="count" if distributed else "auto",
            postfix_keys=["train_loss"],
        )
        callbacks.append(("progress", bar))
    return callbacks


def positive_weight(class_weight, y01_train: np.ndarray, classes) -> float | None:
    """The loss weight of the positive class from ``class_weight`` (``None``: none)."""
    if class_weight == "balanced":
        n_pos = float(y01_train.sum())
        return (len(y01_train) - n_pos) / n_pos
    if isinstance(class_weight, dict):
        unknown = sorted(set(class_weight) - set(classes.tolist()), key=str)
        if unknown:
            raise ValueError(
                f"class_weight has labels {unknown} that are not in y ({classes.tolist()})"
            )
        w0, w1 = (float(class_weight.get(c, 1.0)) for c in classes.tolist())
        if w0 <= 0 or w1 <= 0:
            raise ValueError(f"class_weight values must be > 0, got {class_weight}")
        return w1 / w0  # the loss up to a constant factor
    return None


def make_net(
    cnn,
    in_chans: int,
    device: str,
    *,
    callbacks=(),
    train_split=None,
    pos_weight: float | None = None,
    pretrained=None,
    accelerator=None,
) -> ThyroNet:
    """The (untrained) skorch net of SkorchCNN ``cnn`` for ``in_chans`` channels on ``device``.

    ``pretrained`` overrides ``cnn.pretrained``; ``"auto"`` is resolved here
    (:func:`thyronet.backbones.resolve_pretrained`). With an ``accelerator`` the net
    is an :class:`AcceleratedThyroNet` handed to it.
    """
    name = cnn.optimizer if isinstance(cnn.optimizer, str) else None
    optimizer = OPTIMIZERS[name] if name else cnn.optimizer
    opt_kwargs = {
        **_OPTIMIZER_DEFAULTS.get(name or "", {}),
        "weight_decay": cnn.weight_decay,
        **(cnn.optimizer_kwargs or {}),
    }
    loader = {
        "num_workers": cnn.num_workers,
        "pin_memory": torch.device(device).type == "cuda",
    }
    augment = None
    if cnn.augment is True:
        augment = ImageAugment()
    elif isinstance(cnn.augment, ImageAugment):
        augment = cnn.augment
    kwargs = {f"optimizer__{k}": v for k, v in opt_kwargs.items()}
    kwargs.update({f"iterator_train__{k}": v for k, v in loader.items()})
    kwargs.update({f"iterator_valid__{k}": v for k, v in loader.items()})
    if pos_weight is not None:
        kwargs["criterion__pos_weight"] = torch.tensor([pos_weight], dtype=torch.float32)
    net_class, kwargs["device"] = ThyroNet, device
    if accelerator is not None:
        net_class = AcceleratedThyroNet
        kwargs.update(accelerated_net_kwargs(accelerator, device))
    if cnn.verbose and kwargs.get("callbacks__print_log__sink", print) is print:
        # (a sink other than print prints whatever net.verbose says: set it only when verbose)
        kwargs["callbacks__print_log__sink"] = print_epoch_row
    return net_class(
        module=build_backbone_net,
        module__backbone=cnn.backbone,
        module__in_chans=int(in_chans),
        module__num_classes=1,
        module__pretrained=resolve_pretrained(
            cnn.backbone, cnn.pretrained if pretrained is None else pretrained
        ),
        module__backbone_kwargs=dict(cnn.backbone_kwargs or {}),
        optimizer=optimizer,
        lr=cnn.lr,
        max_epochs=cnn.max_epochs,
        batch_size=cnn.batch_size,
        iterator_train=batch_loader,
        iterator_train__shuffle=True,
        iterator_train__drop_singleton=True,
        iterator_valid=batch_loader,
        train_split=train_split,
        callbacks=list(callbacks),
        verbose=int(cnn.verbose),
        augment=augment,
        autocast=autocast_setting(cnn.precision, device),
        channels_last=bool(cnn.channels_last),
        **kwargs,
    )
