"""The CNN step: a timm backbone fine-tuned as a scikit-learn estimator, and its features.

:class:`SkorchCNN` trains a registered backbone (:mod:`thyronet.backbones`) on the
fused ``(n, C, H, W)`` images with skorch; :class:`DeepFeatureExtractor` turns a
(fine-tuned) CNN into penultimate features. The modules of this package, one concern
each:

- ``_data``: input validation, :class:`ImageBatches` and :func:`batch_loader`;
- ``_augment``: :class:`ImageAugment`;
- ``_device``: :func:`resolve_device`, :func:`torch_threads`;
- ``_backbone``: :class:`BackboneNet`, the torch module a backbone is built into;
- ``_net``: the skorch net :class:`ThyroNet` and its LR-schedule/freezing callbacks;
- ``_accelerate``: :class:`AcceleratedThyroNet` (Hugging Face Accelerate);
- ``_training``: the datasets, callbacks and net of one fit;
- ``_weights``: weight files of a fitted CNN;
- ``_paths``: measure-and-pick of the fastest inference path (:class:`InferencePath`);
- ``_estimator``: :class:`SkorchCNN`;
- ``_features``: :class:`DeepFeatureExtractor`, :func:`fast_bf16_available`.
"""

from thyronet.cnn._accelerate import AcceleratedThyroNet
from thyronet.cnn._augment import ImageAugment
from thyronet.cnn._backbone import BackboneNet
from thyronet.cnn._data import ImageBatches, batch_loader, check_binary_target, check_images
from thyronet.cnn._device import resolve_device, torch_threads
from thyronet.cnn._estimator import SkorchCNN
from thyronet.cnn._features import DeepFeatureExtractor, fast_bf16_available
from thyronet.cnn._net import ThyroNet, warmup_cosine
from thyronet.cnn._paths import (
    InferencePath,
    candidate_paths,
    clear_path_cache,
    module_in_layout,
    path_cache,
)
from thyronet.cnn._weights import (
    WEIGHT_SUFFIXES,
    PretrainedWeightsError,
    WeightsMismatchError,
    compare_state_dicts,
    describe_mismatch,
)

__all__ = [
    "WEIGHT_SUFFIXES",
    "AcceleratedThyroNet",
    "BackboneNet",
    "DeepFeatureExtractor",
    "ImageAugment",
    "ImageBatches",
    "InferencePath",
    "PretrainedWeightsError",
    "SkorchCNN",
    "ThyroNet",
    "WeightsMismatchError",
    "batch_loader",
    "candidate_paths",
    "check_binary_target",
    "check_images",
    "clear_path_cache",
    "compare_state_dicts",
    "describe_mismatch",
    "fast_bf16_available",
    "module_in_layout",
    "path_cache",
    "resolve_device",
    "torch_threads",
    "warmup_cosine",
]

# Pickles and model files name a class by its module: give the estimators and the
# objects a fitted model holds their public path, not the private module's.
for _cls in (SkorchCNN, ThyroNet, ImageAugment, ImageBatches, InferencePath):
    _cls.__module__ = __name__
DeepFeatureExtractor.__module__ = "thyronet.features"
del _cls
