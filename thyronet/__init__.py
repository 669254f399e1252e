"""thyronet: dual-channel ultrasound deep learning for occult CLNM in PTMC.

Every step of the method of Li et al. (Radiol Oncol 2026;60(1):49-58) is a
scikit-learn estimator; see ``docs/`` for the user guide.

The estimators are imported on first use (PEP 562), so ``from thyronet import
DualChannelFuser`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from thyronet._threads import prefer_passive_wait

prefer_passive_wait()  # before torch loads OpenMP: no spin-waiting on a busy machine

__version__ = "0.1.0.dev0"

_LAZY = {
    "ClassifierSelector": "thyronet.classifier_selection",
    "ClinicalEncoder": "thyronet.clinical",
    "DeepFeatureExtractor": "thyronet.features",
    "DualChannelFuser": "thyronet.fusion",
    "LassoSelector": "thyronet.selection",
    "PValueSelector": "thyronet.selection",
    "SkorchCNN": "thyronet.cnn",
}

__all__ = [
    "ClassifierSelector",
    "ClinicalEncoder",
    "DeepFeatureExtractor",
    "DualChannelFuser",
    "LassoSelector",
    "PValueSelector",
    "SkorchCNN",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover
    from thyronet.classifier_selection import ClassifierSelector
    from thyronet.clinical import ClinicalEncoder
    from thyronet.cnn import SkorchCNN
    from thyronet.features import DeepFeatureExtractor
    from thyronet.fusion import DualChannelFuser
    from thyronet.selection import LassoSelector, PValueSelector


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'thyronet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
