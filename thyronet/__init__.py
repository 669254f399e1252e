"""thyronet: dual-channel ultrasound deep learning for occult CLNM in PTMC.

Every step of the method of Li et al. (Radiol Oncol 2026;60(1):49-58) is a
scikit-learn estimator; see ``docs/`` for the user guide.
"""

from thyronet.fusion import DualChannelFuser

__version__ = "0.1.0.dev0"

__all__ = ["DualChannelFuser", "__version__"]
