"""Hugging Face Accelerate for the CNN step: multi-GPU data parallelism through skorch.

:class:`AcceleratedThyroNet` is :class:`~thyronet.cnn.ThyroNet` with skorch's
:class:`~skorch.hf.AccelerateMixin`; the helpers check an accelerator against
:class:`~thyronet.SkorchCNN`'s parameters and turn the trained net back into a
plain one. ``accelerate`` itself is imported only when an accelerator is used.
"""

from __future__ import annotations

import torch
from skorch.hf import AccelerateMixin  # skorch's accelerate glue; does not import accelerate
from torch.utils.data import DataLoader

from thyronet.cnn._net import ThyroNet

__all__ = [
    "AcceleratedThyroNet",
    "accelerated_net_kwargs",
    "accelerator_device",
    "broadcast_seed",
    "check_accelerator",
    "check_same_data",
    "without_accelerator",
]

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


def check_accelerator(accelerator, *, device: str, precision: str, freeze_epochs: int):
    """``accelerator`` (``None`` without one), checked against SkorchCNN's other parameters."""
    if accelerator is None:
        return None
    accelerate = _import_accelerate()
    if not isinstance(accelerator, accelerate.Accelerator):
        raise TypeError(
            f"accelerator must be an accelerate.Accelerator, got {type(accelerator).__name__}"
        )
    if device != "auto":
        raise ValueError(
            f"device={device!r} cannot be combined with an accelerator, "
            f"which places the model itself (on {accelerator.device}); leave "
            "device='auto'"
        )
    mixed = str(accelerator.mixed_precision)
    if precision not in ("auto", {"no": "fp32", "bf16": "bf16"}.get(mixed)):
        raise ValueError(
            f"precision={precision!r} conflicts with the accelerator's "
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
    if accelerator.num_processes > 1 and freeze_epochs > 0:
        raise ValueError(
            f"freeze_epochs={freeze_epochs} is not supported with "
            f"{accelerator.num_processes} processes: DistributedDataParallel "
            "needs a gradient for every parameter at every step; use "
            "freeze_epochs=0"
        )
    return accelerator


def accelerator_device(accelerator) -> str:
    """The torch device string of the accelerator's process."""
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


def without_accelerator(net: AcceleratedThyroNet, device: str, datasets) -> ThyroNet:
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


def broadcast_seed(accelerator, seed: int) -> int:
    """Process 0's ``seed`` on every process (``random_state=None`` differs per process)."""
    from accelerate.utils import broadcast

    value = torch.tensor([seed], dtype=torch.int64, device=accelerator.device)
    return int(broadcast(value, from_process=0).item())


def check_same_data(accelerator, X, y01, n_train: int, n_valid: int) -> None:
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


def accelerated_net_kwargs(accelerator, device: str) -> dict:
    """The :class:`AcceleratedThyroNet` arguments that hand the net to ``accelerator``."""
    return {
        "accelerator": accelerator,
        "device": None if accelerator.device_placement else device,
        # fit unwraps after the callbacks' on_train_end, so that EarlyStopping
        # restores its best weights into the module they were taken from (DDP)
        "unwrap_after_train": False,
        "callbacks__print_log__sink": print if accelerator.is_main_process else _discard,
    }
