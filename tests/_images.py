"""Test helpers shared by the CNN and feature-extractor tests."""

import numpy as np

from thyronet import SkorchCNN


def make_images(n=32, channels=2, size=32, seed=0):
    """Random images; positives carry a bright square in channel 0 (learnable)."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, channels, size, size), dtype=np.float32) * 0.5
    y = np.arange(n) % 2
    X[y == 1, 0, 8:20, 8:20] += 0.5
    return X, y


def tiny_cnn(**params):
    """A fast SkorchCNN on the tiny registered backbone; ``params`` override the defaults."""
    defaults = dict(backbone="test_resnet", max_epochs=1, batch_size=8, random_state=0, verbose=0)
    return SkorchCNN(**{**defaults, **params})
