"""``SkorchCNN``: a timm backbone fine-tuned as a scikit-learn binary classifier.

The estimator wraps a skorch :class:`~skorch.NeuralNetBinaryClassifier`
(:class:`~thyronet.cnn.ThyroNet`) whose module is a registered backbone
(:mod:`thyronet.backbones`) with one output logit. It takes the ``(n, C, H, W)``
float32 images of :class:`thyronet.DualChannelFuser` (arrays or ``numpy.memmap``;
batches are read from the array one at a time, so a memmap is never loaded whole).
"""

from __future__ import annotations

import json
import os
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_consistent_length, check_is_fitted
from skorch.callbacks import LRScheduler
from skorch.helper import predefined_split

from thyronet.backbones import Backbone, WeightsMismatchError, get_backbone
from thyronet.cnn._accelerate import (
    accelerator_device,
    broadcast_seed,
    check_accelerator,
    check_same_data,
    without_accelerator,
)
from thyronet.cnn._augment import ImageAugment
from thyronet.cnn._data import ImageBatches, check_binary_target, check_images
from thyronet.cnn._device import resolve_device, torch_threads
from thyronet.cnn._net import ThyroNet
from thyronet.cnn._training import (
    OPTIMIZERS,
    autocast_setting,
    fit_callbacks,
    make_net,
    positive_weight,
    split_datasets,
)
from thyronet.cnn._weights import compare_state_dicts, read_weights, weights_channels, write_weights

__all__ = ["SkorchCNN"]

_NESTED = {"optimizer": "optimizer_kwargs", "backbone": "backbone_kwargs"}


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
    pretrained : bool, "auto" or path, default=False
        ``False`` (random init), ``True`` (timm's ImageNet weights from the Hugging
        Face hub or its local cache; the paper's setting), ``"auto"`` (``True`` when
        those weights are in the local cache, else ``False``; never downloads;
        resolved by :func:`thyronet.backbones.resolve_pretrained` when the net is
        built) or a path to a local ``.pth``/``.safetensors`` weights file. RGB
        weights are adapted by timm to the image's channel count.
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
        ``{label: weight}`` by ``weight[positive] / weight[negative]``. A loss weight
        ``w`` shifts the learned logit by ``log w``; :meth:`predict_proba` and
        :meth:`decision_function` subtract it (``logit_offset_``), so probabilities
        stay calibrated to the training prevalence.
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
        ``"auto"``: training in bf16 autocast on CUDA, fp32 on CPU; prediction in
        whichever of fp32 and bf16 autocast is measured to be faster on this
        machine (timed once per process on the first images of an input of at
        least 64 images; smaller inputs take the cached choice, else the training
        precision). The two agree up to rounding.
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
    verbose : int, default=0
        ``0``: silent; ``>= 1``: skorch's epoch table and a progress bar over batches.
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
    logit_offset_ : float
        ``log w`` of the positive-class loss weight ``w`` of ``class_weight`` (0 without
        one), subtracted from the logits at prediction.
    n_epochs_ : int
        Epochs actually run.

    Examples
    --------
    Training is shown in the CNN guide (``docs/cnn.md``); nested optimizer and
    backbone arguments route with double underscores:

    >>> from thyronet import SkorchCNN
    >>> cnn = SkorchCNN("test_resnet", max_epochs=2).set_params(optimizer__betas=(0.9, 0.99))
    >>> cnn.optimizer_kwargs
    {'betas': (0.9, 0.99)}
    >>> cnn.get_params()["optimizer__betas"]
    (0.9, 0.99)
    """

    _parameter_constraints: ClassVar[dict] = {
        "backbone": [str, Backbone],
        "pretrained": ["boolean", StrOptions({"auto"}), str, os.PathLike],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
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
        verbose: int = 0,
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
            net.autocast = autocast_setting(self.precision, self.device_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.three_d_array = False
        tags.non_deterministic = torch.cuda.is_available()
        return tags

    # -- building the net -------------------------------------------------------------
    def _check_accelerator(self):
        """The accelerator (``None`` without one), checked against the other parameters."""
        return check_accelerator(
            self.accelerator,
            device=self.device,
            precision=self.precision,
            freeze_epochs=self.freeze_epochs,
        )

    def _resolve_device(self) -> str:
        accelerator = self._check_accelerator()
        if accelerator is None:
            return resolve_device(self.device)
        return accelerator_device(accelerator)

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
        accelerator = self._check_accelerator()
        device = self._resolve_device()
        seed = self._seed()
        distributed = accelerator is not None and accelerator.num_processes > 1
        if distributed:
            seed = broadcast_seed(accelerator, seed)
        # distributed validation pads its last round with repeated rows that are cut off
        # after gathering: batches must keep their order
        train, valid = split_datasets(self, X, y01, classes, X_val, y_val, seed, distributed)
        if distributed:
            n_valid = 0 if valid is None else len(valid)
            check_same_data(accelerator, X, y01, len(train), n_valid)
        callbacks = fit_callbacks(self, len(train), valid is not None, accelerator)
        pos_weight = positive_weight(self.class_weight, y01[train.indices], classes)
        net = self._train(X.shape[1], device, seed, (train, valid), callbacks, pos_weight)
        self._finish_fit(net, X.shape[1], device, classes, validated=valid is not None)
        self.logit_offset_ = 0.0 if pos_weight is None else float(np.log(pos_weight))
        return self

    def _train(self, n_channels: int, device: str, seed: int, data, callbacks, pos_weight):
        """Build the net and train it on ``data = (train, valid)``, seeded."""
        train, valid = data
        accelerator = self._check_accelerator()
        distributed = accelerator is not None and accelerator.num_processes > 1
        devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices), torch_threads(self.num_threads):
            torch.manual_seed(seed)
            net = make_net(
                self,
                n_channels,
                device,
                callbacks=callbacks,
                train_split=None if valid is None else predefined_split(valid),
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
        if self.freeze_epochs > 0:
            net.module_.requires_grad_(True)  # everything trainable again (Grad-CAM)
        if accelerator is not None:
            net = without_accelerator(net, device, (train, valid))
        return net

    def _finish_fit(self, net, n_channels: int, device: str, classes, validated: bool) -> None:
        """Keep the trained net, without what only training needed; set the attributes.

        A fitted model carries its weights only: not the training data (validation
        split), not the optimizer's moment estimates (fit always starts afresh) and not
        the LR scheduler's second reference to the optimizer.
        """
        net.train_split = None
        net.optimizer_.state.clear()
        for _, callback in net.callbacks_:
            if isinstance(callback, LRScheduler):
                callback.lr_scheduler_ = None
        self.classes_ = classes
        self._set_fitted(net, n_channels, device)
        self.n_epochs_ = len(net.history)
        stopper = dict(net.callbacks_).get("early_stopping")
        if stopper is not None:
            self.best_epoch_ = int(stopper.best_epoch_)
        elif validated:
            self.best_epoch_ = len(net.history)
        else:
            self.best_epoch_ = None

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
            net = make_net(self, n_channels, device, pretrained=pretrained).initialize()
        return net, device

    def _set_untrained(self, net: ThyroNet, n_channels: int, device: str, classes) -> None:
        self.classes_ = np.asarray(classes)
        self._set_fitted(net, n_channels, device)
        self.n_epochs_ = 0
        self.best_epoch_ = None
        self.logit_offset_ = 0.0

    def _dataset(self, X) -> ImageBatches:
        check_is_fitted(self, "net_")
        return ImageBatches(check_images(X, n_channels=self.n_features_in_))

    def _logit_batches(self, X):
        """The corrected fp32 logits of ``classes_[1]``, batch by batch, on the device.

        Inference runs in fp32 whatever the training precision: bf16 logits have
        8 bits of mantissa and tie patients whose risks differ (artificial ties in
        AUCs and thresholds).
        """
        data = self._dataset(X)
        offset = float(getattr(self, "logit_offset_", None) or 0.0)  # saved before it: 0
        net = self.net_
        autocast, net.autocast = net.autocast, False
        try:
            with torch.inference_mode():
                for logits in net.forward_iter(data, training=False):
                    logits = logits.float()
                    yield logits - offset if offset else logits
        finally:
            net.autocast = autocast

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n_samples, 2)``; column 1 is ``classes_[1]``.

        Computed in fp32; with ``class_weight`` the loss weight's logit shift is
        removed (``logit_offset_``), so they match the training prevalence.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, height, width)

        Returns
        -------
        ndarray of shape (n_samples, 2)
        """
        probas = []
        for logits in self._logit_batches(X):
            p = torch.sigmoid(logits)
            probas.append(torch.stack((1 - p, p), dim=1).cpu().numpy())
        return np.concatenate(probas, 0)

    def decision_function(self, X) -> np.ndarray:
        """The (fp32, class-weight corrected) logit of ``classes_[1]``, shape ``(n_samples,)``."""
        return torch.cat([y.cpu() for y in self._logit_batches(X)]).numpy()

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
        model = self.net_.module_.model
        return write_weights(path, model, self.backbone_.name, self.n_features_in_, self.classes_)

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
        meta, state = read_weights(path)
        backbone = get_backbone(self.backbone)
        saved = meta.get("thyronet.backbone")
        if saved is not None and saved != backbone.name:
            raise WeightsMismatchError(
                f"weights file {str(path)!r} was saved from backbone "
                f"{saved!r}, but backbone={backbone.name!r}"
            )
        n_channels = weights_channels(meta, state, path)
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
