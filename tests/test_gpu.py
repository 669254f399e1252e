"""On a CUDA device: training and inference run there, bf16 autocast stays close to
fp32, and memory is released. (A model saved on a GPU loading on a CPU-only machine is
tested without a GPU in tests/test_cnn.py.) Marked ``gpu``: skipped without CUDA
(``tests/conftest.py``); run them where a GPU is lent."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from _images import make_images, tiny_cnn
from sklearn.frozen import FrozenEstimator

from thyronet import DeepFeatureExtractor

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def data():
    return make_images(n=32, channels=2, size=32, seed=0)


def test_trains_and_predicts_on_cuda(data):
    X, y = data
    cnn = tiny_cnn(device="cuda", precision="fp32", max_epochs=2).fit(X, y)
    assert cnn.device_ == "cuda"
    assert next(cnn.net_.module_.parameters()).is_cuda
    proba = cnn.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    again = pickle.loads(pickle.dumps(cnn))  # on a CUDA machine it stays on CUDA
    np.testing.assert_allclose(again.predict_proba(X), proba, atol=1e-6)


def test_bf16_autocast_on_cuda_is_close_to_fp32(data):
    X, y = data
    cnn = tiny_cnn(device="cuda", precision="fp32").fit(X, y)
    fp32 = DeepFeatureExtractor(FrozenEstimator(cnn), precision="fp32").fit(X).transform(X)
    bf16 = DeepFeatureExtractor(FrozenEstimator(cnn), precision="bf16").fit(X).transform(X)
    cos = (fp32 * bf16).sum(1) / (np.linalg.norm(fp32, axis=1) * np.linalg.norm(bf16, axis=1))
    assert cos.min() > 0.99


def test_cuda_memory_is_released_after_predict(data):
    X, y = data
    cnn = tiny_cnn(device="cuda").fit(X, y)
    cnn.predict_proba(X)
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() < 512 * 2**20
