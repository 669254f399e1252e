"""The skorch net that trains a backbone: :class:`ThyroNet` and its training callbacks.

:class:`ThyroNet` is a :class:`skorch.NeuralNetBinaryClassifier` with train-time
augmentation, autocast and channels-last inputs. The callbacks that
:class:`~thyronet.SkorchCNN` adds are skorch's own: :func:`lr_schedule` gives
skorch's :class:`~skorch.callbacks.LRScheduler` torch's linear warm-up and cosine
schedulers, and :func:`freeze_body_callbacks` skorch's
:class:`~skorch.callbacks.Freezer`/:class:`~skorch.callbacks.Unfreezer` over the
body of the network (every parameter but the classifier head's).
"""

from __future__ import annotations

import torch
from skorch import NeuralNetBinaryClassifier
from skorch.callbacks import EarlyStopping, Freezer, LRScheduler, Unfreezer
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

__all__ = ["ThyroNet", "freeze_body_callbacks", "lr_schedule", "warmup_cosine"]


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    *,
    warmup_steps: int,
    total_steps: int,
    cosine: bool = True,
    last_epoch: int = -1,
) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up over ``warmup_steps`` steps, then cosine annealing to 0 (or flat).

    The learning-rate factor of step ``t`` is ``(t + 1) / warmup_steps`` during the
    warm-up, then ``(1 + cos(pi * s / (total_steps - warmup_steps))) / 2`` with
    ``s = t - warmup_steps`` (``1`` with ``cosine=False``): torch's
    :class:`~torch.optim.lr_scheduler.LinearLR` followed by
    :class:`~torch.optim.lr_scheduler.CosineAnnealingLR`
    (:class:`~torch.optim.lr_scheduler.SequentialLR`). A module-level factory, the
    ``policy`` of skorch's :class:`~skorch.callbacks.LRScheduler` (fitted nets pickle).

    Examples
    --------
    >>> import torch
    >>> from thyronet.cnn import warmup_cosine
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = warmup_cosine(opt, warmup_steps=2, total_steps=10)
    >>> lrs = []
    >>> for _ in range(10):
    ...     lrs.append(round(opt.param_groups[0]["lr"], 3))
    ...     opt.step()
    ...     sched.step()
    >>> lrs[:3], lrs[6], lrs[9]
    ([0.5, 1.0, 1.0], 0.5, 0.038)
    """
    if warmup_steps <= 0 and not cosine:
        raise ValueError("warmup_cosine needs warmup_steps > 0 or cosine=True")
    cosine_steps = max(1, total_steps - max(warmup_steps, 0))
    if warmup_steps <= 0:
        return CosineAnnealingLR(optimizer, T_max=cosine_steps, last_epoch=last_epoch)
    warmup = LinearLR(
        optimizer,
        start_factor=1.0 / warmup_steps,
        end_factor=1.0,
        total_iters=max(warmup_steps - 1, 1),
        last_epoch=last_epoch,
    )
    if not cosine:
        return warmup  # the factor stays at end_factor=1 after the warm-up
    anneal = CosineAnnealingLR(optimizer, T_max=cosine_steps, last_epoch=last_epoch)
    return SequentialLR(
        optimizer, schedulers=[warmup, anneal], milestones=[warmup_steps], last_epoch=last_epoch
    )


def lr_schedule(warmup_steps: int, total_steps: int, cosine: bool) -> LRScheduler:
    """skorch's per-batch :class:`~skorch.callbacks.LRScheduler` with :func:`warmup_cosine`."""
    return LRScheduler(
        policy=warmup_cosine,
        step_every="batch",
        warmup_steps=int(warmup_steps),
        total_steps=max(int(total_steps), 1),
        cosine=bool(cosine),
    )


class _BodyFreezer(Freezer):
    """skorch's :class:`~skorch.callbacks.Freezer` over every parameter but the head's."""

    def named_parameters(self, net):
        head = {id(p) for p in net.module_.head_parameters()}
        return [(n, p) for n, p in super().named_parameters(net) if id(p) not in head]


def freeze_body_callbacks(epochs: int) -> list[tuple[str, Freezer]]:
    """Train only the classifier head for the first ``epochs`` epochs, then everything.

    skorch's :class:`~skorch.callbacks.Freezer` (on the body, at epoch 1) and
    :class:`~skorch.callbacks.Unfreezer` (every parameter, at epoch ``epochs + 1``).
    """
    return [
        ("freeze_body", _BodyFreezer("*", at=1)),
        ("unfreeze_body", Unfreezer("*", at=int(epochs) + 1)),
    ]


class EarlyStopped(KeyboardInterrupt):
    """skorch's way of ending training when patience runs out: not a user's interrupt."""


class StopWhenStale(EarlyStopping):
    """skorch's :class:`~skorch.callbacks.EarlyStopping`, whose stop is told apart from Ctrl-C.

    skorch ends training by raising ``KeyboardInterrupt`` from this callback, the same
    exception as a user's Ctrl-C. :class:`ThyroNet` raises a real interrupt again (a
    half-trained net must never pass for a fitted one), so the planned stop is raised
    as :class:`EarlyStopped` instead, which it lets end training normally.
    """

    def on_epoch_end(self, net, **kwargs):
        try:
            super().on_epoch_end(net, **kwargs)
        except KeyboardInterrupt as interrupt:
            if self.misses_ != self.patience:  # Ctrl-C during this callback
                raise
            raise EarlyStopped(*interrupt.args) from None


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

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # skorch's partial_fit swallows KeyboardInterrupt and returns a net that looks
        # trained; remember the interrupt so that partial_fit raises it again
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except EarlyStopped:
            raise  # patience ran out: skorch ends training normally
        except KeyboardInterrupt as interrupt:
            self.__dict__["_thyronet_interrupt"] = interrupt
            raise

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """skorch's ``partial_fit``, except that an interrupt of training is raised again.

        skorch stops training on :class:`KeyboardInterrupt` and returns as if it had
        finished; a half-trained net must never pass for a fitted one.
        """
        self.__dict__.pop("_thyronet_interrupt", None)
        super().partial_fit(X, y, classes=classes, **fit_params)
        interrupt = self.__dict__.pop("_thyronet_interrupt", None)
        if interrupt is not None:
            raise interrupt
        return self

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
