"""``DeepFeatureExtractor``: penultimate CNN features as a scikit-learn transformer.

The public home of :class:`DeepFeatureExtractor` and :func:`fast_bf16_available`;
they live in :mod:`thyronet.cnn` (``thyronet/cnn/_features.py``).
"""

from thyronet.cnn._features import DeepFeatureExtractor, fast_bf16_available

__all__ = ["DeepFeatureExtractor", "fast_bf16_available"]
