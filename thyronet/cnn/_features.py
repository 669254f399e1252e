"""``DeepFeatureExtractor``: penultimate CNN features as a scikit-learn transformer.

The paper's combined model takes the 2048 penultimate features of the fine-tuned
fused ResNet101 (DL_F). :class:`DeepFeatureExtractor` fine-tunes (a clone of) its
:class:`~thyronet.SkorchCNN` in ``fit`` — or uses one already fitted, passed as
``FrozenEstimator(cnn)`` (:class:`sklearn.frozen.FrozenEstimator`), or the
pretrained backbone as is (``fine_tune=False``) — and
``transform`` returns float32 ``(n_samples, feature_dim)`` features named
``dl_0000``, ``dl_0001``, ...

Inference is batched, in :func:`torch.inference_mode`, on the fastest path of this
machine: with ``precision="auto"`` and ``channels_last="auto"`` the candidate paths
(fp32 NCHW, fp32 channels-last, bf16-autocast channels-last) are timed on the first
images of the input and the fastest is kept for the process
(:mod:`thyronet.cnn._paths`).
"""

from __future__ import annotations

import functools
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from thyronet.cnn._crossfit import check_feature_cv, out_of_fold_features
from thyronet.cnn._data import ImageBatches, batch_loader, check_images
from thyronet.cnn._estimator import SkorchCNN
from thyronet.cnn._paths import (
    InferencePath,
    candidate_paths,
    default_path,
    module_in_layout,
    pick_path,
)

__all__ = ["DeepFeatureExtractor", "fast_bf16_available"]


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def fast_bf16_available(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` has native bf16 instructions (a hint, not a speed guarantee).

    ``precision="auto"`` does not use this: whether bf16 autocast is faster is
    measured (:class:`DeepFeatureExtractor`), because CPUs that report AVX512-BF16
    without AMX (Intel Xeon, family 6 model 207) run bf16 convolutions slower than
    fp32. CUDA: :func:`torch.cuda.is_bf16_supported`. CPU: oneDNN is available and the
    processor has AVX512-BF16 or AMX-BF16 instructions (read from ``/proc/cpuinfo``;
    ``False`` where that cannot be read). Other devices: ``False``.

    Parameters
    ----------
    device : str or torch.device

    Returns
    -------
    bool

    Examples
    --------
    >>> from thyronet.features import fast_bf16_available
    >>> isinstance(fast_bf16_available("cpu"), bool)
    True
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if dev.type == "cpu":
        if not torch.backends.mkldnn.is_available():
            return False
        return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())
    return False


class _Features(torch.nn.Module):
    """The feature path of a :class:`~thyronet.backbones.BackboneNet` as a module."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x)


class DeepFeatureExtractor(TransformerMixin, BaseEstimator):
    """Penultimate features of a (fine-tuned) :class:`~thyronet.SkorchCNN`.

    Parameters
    ----------
    cnn : SkorchCNN, FrozenEstimator or None
        The CNN; ``None`` means ``SkorchCNN()`` (ResNet101). A fitted SkorchCNN
        wrapped in :class:`sklearn.frozen.FrozenEstimator` is used as it is (the
        paper's protocol: the features come from the fitted DL_F model): ``fit``
        only checks it and the input, the extractor refers to it (no copy, to save
        memory), and ``clone`` keeps it fitted, so the extractor works inside
        cross-validation. Otherwise a clone is fitted, so the given estimator is
        left untouched.
    fine_tune : bool, default=True
        ``True``: ``fit`` fine-tunes a clone of ``cnn`` on ``(X, y)``. ``False``: the
        backbone is used as built, i.e. with its pretrained weights (set
        ``cnn=SkorchCNN(pretrained=True)``) and no training; ``y`` is not needed.
        Ignored for a frozen ``cnn``.
    cv : int, cross-validation splitter or None, default=None
        Cross-fitting, as in :class:`~sklearn.preprocessing.TargetEncoder`:
        ``fit_transform(X, y)`` returns out-of-fold features, each row's from a clone
        of the CNN fine-tuned on the other folds (an int: that many stratified folds,
        shuffled with the cnn's ``random_state``), while ``fit`` still fine-tunes (or,
        frozen, keeps) the CNN of all rows, which serves ``transform``. So
        ``fit_transform(X, y)`` differs from ``fit(X, y).transform(X)``, and a
        :class:`~sklearn.pipeline.Pipeline` (which calls ``fit_transform`` on its
        intermediate steps) trains its later steps on out-of-fold features. With a
        frozen ``cnn`` the fold CNNs are clones of its (unfitted) settings. ``None``:
        no cross-fitting. Ignored with ``fine_tune=False`` (no labels involved).
    batch_size : int or None, default=64
        Images per inference batch; ``None`` uses the cnn's ``batch_size``.
    precision : {"auto", "fp32", "bf16"}, default="auto"
        ``"auto"``: whichever of fp32 and bf16 autocast is measured to be faster on
        this machine, for this backbone and image shape: the candidate paths are
        timed on the first 8 images of the input (3 forwards each) once per process,
        when the input has at least 64 images; smaller inputs take the choice
        cached in this process, else fp32 on CPUs and bf16 on CUDA. The paths agree
        up to rounding (bf16: cosine similarity to fp32 >= 0.999).
    channels_last : bool or "auto", default="auto"
        Channels-last (``True``) or NCHW (``False``) memory format for the model and
        the batches while extracting (the cnn's own layout is restored after);
        ``"auto"`` is measured with ``precision``.
    compile : bool, default=False
        Run the features through ``torch.compile`` (inductor, with weight freezing):
        on a 2-core CPU 1.1-1.3x the throughput of the eager fast path (ResNet101:
        3.1-3.4x a plain fp32 forward), after a one-time compilation of 15-40 s per
        image shape, so worth it for thousands of images. Needs a C++ compiler on CPUs.
        The last batch is padded to the batch size, so one shape is compiled. The
        compiled model is cached on the extractor (not pickled) and assumes the
        CNN's weights no longer change.
    verbose : int, default=0
        ``> 0`` shows a progress bar over batches.

    Attributes
    ----------
    cnn_ : SkorchCNN
        The fitted CNN the features come from.
    n_features_in_ : int
        Number of image channels.
    feature_dim_ : int
        Number of output features (2048 for ResNet101).
    path_ : InferencePath
        The path chosen in ``fit`` for images like ``X`` (``str(path_)`` is e.g.
        ``"bf16 channels-last (measured)"``; ``path_.images_per_s`` the timings).
        ``transform`` looks the path up again for its input in this process's
        cache, so a model loaded elsewhere picks that machine's fastest path.
    precision_ : str
        ``"bf16"`` or ``"fp32"``: ``path_.precision``.

    Examples
    --------
    The features of a randomly initialised tiny backbone (``fine_tune=False``: no
    training; fine-tuning is shown in the CNN guide, ``docs/cnn.md``):

    >>> import numpy as np
    >>> from thyronet import DeepFeatureExtractor, SkorchCNN
    >>> X = np.random.default_rng(0).random((4, 2, 32, 32), dtype=np.float32)
    >>> cnn = SkorchCNN("test_resnet", random_state=0)
    >>> extractor = DeepFeatureExtractor(cnn, fine_tune=False, precision="fp32").fit(X)
    >>> extractor.transform(X).shape
    (4, 96)
    >>> extractor.get_feature_names_out()[:2].tolist()
    ['dl_0000', 'dl_0001']

    A CNN fitted beforehand is used as it is when frozen:

    >>> from sklearn.frozen import FrozenEstimator
    >>> prefit = DeepFeatureExtractor(FrozenEstimator(extractor.cnn_), precision="fp32")
    >>> np.allclose(prefit.fit(X).transform(X), extractor.transform(X))
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        "cnn": [HasMethods(["fit", "predict_proba"]), None],
        "fine_tune": ["boolean"],
        "cv": ["cv_object", None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "precision": [StrOptions({"auto", "fp32", "bf16"})],
        "channels_last": ["boolean", StrOptions({"auto"})],
        "compile": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        cnn: SkorchCNN | FrozenEstimator | None = None,
        *,
        fine_tune: bool = True,
        cv=None,
        batch_size: int | None = 64,
        precision: str = "auto",
        channels_last: bool | str = "auto",
        compile: bool = False,
        verbose: int = 0,
    ) -> None:
        self.cnn = cnn
        self.fine_tune = fine_tune
        self.cv = cv
        self.batch_size = batch_size
        self.precision = precision
        self.channels_last = channels_last
        self.compile = compile
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, **fit_params: Any) -> DeepFeatureExtractor:
        """Fine-tune (or check) the CNN the features come from.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, height, width)
        y : array-like of shape (n_samples,) or None
            Binary labels; needed when the CNN is fine-tuned.
        **fit_params
            Passed to :meth:`SkorchCNN.fit` (``X_val``, ``y_val``).

        Returns
        -------
        self : DeepFeatureExtractor
        """
        frozen = isinstance(self.cnn, FrozenEstimator)
        cnn = self.cnn.estimator if frozen else self.cnn
        cnn = cnn if cnn is not None else SkorchCNN()
        if not isinstance(cnn, SkorchCNN):
            raise TypeError(f"cnn must be a SkorchCNN, got {type(cnn).__name__}")
        if frozen:
            try:
                check_is_fitted(cnn, "net_")
            except NotFittedError as exc:
                raise NotFittedError(
                    "cnn=FrozenEstimator(cnn) but the cnn is not fitted; fit it first "
                    "or pass it unwrapped to fit a clone"
                ) from exc
            X = check_images(X, n_channels=cnn.n_features_in_, owner="DeepFeatureExtractor")
            self.cnn_ = cnn
        elif not self.fine_tune:
            X = check_images(X, owner="DeepFeatureExtractor")
            self.cnn_ = clone(cnn)._initialize_untrained(X.shape[1])
        else:
            if y is None:
                raise ValueError(
                    "DeepFeatureExtractor requires y to be passed, but the target y "
                    "is None (fine_tune=True trains the CNN; pass a fitted CNN as "
                    "FrozenEstimator(cnn), or use fine_tune=False, to extract without labels)"
                )
            # structure only here: SkorchCNN.fit scans the pixels for NaN/inf
            X = check_images(X, owner="DeepFeatureExtractor", check_finite=False)
            self.cnn_ = clone(cnn).fit(X, y, **fit_params)
        self.n_features_in_ = int(self.cnn_.n_features_in_)
        self.feature_dim_ = int(self.cnn_.feature_dim_)
        self.path_ = self._pick_path(X)
        self.precision_ = self.path_.precision
        return self

    def fit_transform(self, X, y=None, **fit_params: Any) -> np.ndarray:
        """Fit, and return the training rows' features (out-of-fold with ``cv`` set).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, height, width)
        y : array-like of shape (n_samples,) or None
        **fit_params
            Passed to :meth:`SkorchCNN.fit` (``X_val``, ``y_val``), for every fold.

        Returns
        -------
        ndarray of shape (n_samples, feature_dim_), float32
            With ``cv=None`` (or ``fine_tune=False``) the same as
            ``fit(X, y).transform(X)``; otherwise each row's features come from a
            CNN fine-tuned without that row.

        Raises
        ------
        ValueError
            ``cv`` with more folds than patients in the smallest class.
        """
        if self.cv is None or (not self.fine_tune and not isinstance(self.cnn, FrozenEstimator)):
            return self.fit(X, y, **fit_params).transform(X)
        if y is None:
            raise ValueError("DeepFeatureExtractor with cv set needs y for cross-fitting")
        frozen = isinstance(self.cnn, FrozenEstimator)
        base = self.cnn.estimator if frozen else self.cnn
        base = base if base is not None else SkorchCNN()
        check_feature_cv(self.cv, y, getattr(base, "random_state", None))
        X = check_images(X, owner="DeepFeatureExtractor", check_finite=False)
        self.fit(X, y, **fit_params)
        return out_of_fold_features(self, base, X, y, fit_params)

    def _candidates(self, device: str) -> list[InferencePath]:
        return candidate_paths(self.precision, self.channels_last, device)

    def _resolve_precision(self, device: str) -> str:
        """The precision of an input too small to measure (also used on load)."""
        return default_path(self._candidates(device), device).precision

    def _pick_path(self, X) -> InferencePath:
        """The fastest path for images like ``X`` (measured once per process)."""
        module = self.cnn_.net_.module_
        return pick_path(
            module,
            module.forward_features,
            X,
            candidates=self._candidates(self.cnn_.device_),
            device=self.cnn_.device_,
            key=("features", self.cnn_.backbone_.name),
        )

    def transform(self, X) -> np.ndarray:
        """Penultimate features of the CNN, float32 ``(n_samples, feature_dim_)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, height, width)
            Images with the channel count seen in ``fit`` (memmaps are read batch by
            batch).

        Returns
        -------
        ndarray of shape (n_samples, feature_dim_), float32
        """
        check_is_fitted(self, "cnn_")
        X = check_images(X, n_channels=self.n_features_in_, owner="DeepFeatureExtractor")
        device = torch.device(self.cnn_.device_)
        path = self._pick_path(X)
        module = self.cnn_.net_.module_
        module.eval()
        batch_size = min(self.batch_size or self.cnn_.batch_size, len(X))
        loader = batch_loader(
            ImageBatches(X),
            batch_size=batch_size,
            num_workers=self.cnn_.num_workers,
            pin_memory=device.type == "cuda",
        )
        forward = self._compiled(module, path) if self.compile else module.forward_features
        out = np.empty((len(X), self.feature_dim_), dtype=np.float32)
        start = 0
        bar = tqdm(loader, desc="deep features", unit="batch", disable=not self.verbose or None)
        with (
            module_in_layout(module, path.channels_last),
            torch.inference_mode(),
            torch.autocast(
                device_type=device.type, dtype=torch.bfloat16, enabled=path.precision == "bf16"
            ),
        ):
            for xb, _ in bar:
                n = len(xb)
                if self.compile and n < batch_size:  # one shape: no recompilation
                    xb = torch.cat([xb, xb.new_zeros((batch_size - n, *xb.shape[1:]))])
                xb = xb.to(device, non_blocking=True)
                if path.channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                features = forward(xb)[:n]
                out[start : start + n] = features.float().cpu().numpy()
                start += n
        return out

    def _compiled(self, module: torch.nn.Module, path: InferencePath):
        """``torch.compile`` of the feature path, cached per module and path."""
        key = (id(module), path.name)
        cache = self.__dict__.setdefault("_compiled_cache", {})
        if key not in cache:
            cache.clear()
            cache[key] = torch.compile(_Features(module), dynamic=False, options={"freezing": True})
        return cache[key]

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_compiled_cache", None)  # compiled code does not pickle
        return state

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``dl_0000``, ``dl_0001``, ... one per feature."""
        check_is_fitted(self, "cnn_")
        return np.asarray([f"dl_{i:04d}" for i in range(self.feature_dim_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.target_tags.required = bool(
            self.fine_tune and not isinstance(self.cnn, FrozenEstimator)
        )
        tags.non_deterministic = torch.cuda.is_available()
        return tags
