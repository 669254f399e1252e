"""Grid search over the combined model on a Dask cluster, through joblib's Dask backend.

CPU training results depend on torch's intra-op thread count, and worker processes
(loky, Dask) start with ``OMP_NUM_THREADS=1``; ``SkorchCNN(num_threads=...)`` pins it
so a local search and a cluster search train the same networks.
"""

import numpy as np
import pytest
import torch
from _images import make_images, tiny_cnn
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from thyronet import SkorchCNN
from thyronet.cnn import ThyroNet, torch_threads
from thyronet.datasets import load_cohort, make_ptmc_cohort
from thyronet.pipelines import make_combined_model

TINY = {
    "image_size": 32,
    "backbone": "test_resnet",
    "max_epochs": 1,
    "batch_size": 16,
    "verbose": 0,
    "random_state": 0,
    "device": "cpu",
    "augment": False,
    "early_stopping": False,
    "validation_fraction": None,
    "num_threads": 1,
}
GRID = {"features__dl__extract__cnn__lr": [1e-3, 3e-3], "lasso__min_features": [1, 8]}
CV = 3


class _ThreadSpy:
    """Records torch's thread count at each training step (the real step still runs)."""

    def __init__(self, monkeypatch):
        self.seen = []
        original = ThyroNet.train_step_single

        def step(net, batch, **fit_params):
            self.seen.append(torch.get_num_threads())
            return original(net, batch, **fit_params)

        monkeypatch.setattr(ThyroNet, "train_step_single", step)


def _weights(cnn):
    return {k: v.detach().clone() for k, v in cnn.net_.module_.state_dict().items()}


def test_num_threads_pins_torch_threads_while_training(monkeypatch):
    X, y = make_images(n=32)
    spy = _ThreadSpy(monkeypatch)
    with torch_threads(2):
        pinned = tiny_cnn(num_threads=1, augment=False).fit(X, y)
        assert torch.get_num_threads() == 2  # restored after fit
    assert spy.seen and set(spy.seen) == {1}
    spy.seen.clear()
    with torch_threads(1):
        one_thread = tiny_cnn(augment=False).fit(X, y)  # num_threads=None: the process's 1
    assert set(spy.seen) == {1}
    # the same training as a process running on one thread, bit for bit
    a, b = _weights(pinned), _weights(one_thread)
    assert all(torch.equal(a[k], b[k]) for k in a)
    np.testing.assert_array_equal(pinned.predict_proba(X), one_thread.predict_proba(X))
    with pytest.raises(InvalidParameterError, match="num_threads"):
        tiny_cnn(num_threads=0).fit(X, y)


def test_torch_threads_restores_the_count_after_an_error():
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with pytest.raises(RuntimeError, match="boom"), torch_threads(target):
        assert torch.get_num_threads() == target
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


# ---------------------------------------------------------------------------------------
# the cluster
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def manifest_cohort(tmp_path_factory):
    """A tiny cohort on disk: the view columns are PNG paths, which is what workers get."""
    folder = tmp_path_factory.mktemp("cohort")
    make_ptmc_cohort(n_patients=72, image_size=32, out_dir=folder, random_state=0)
    return load_cohort(folder / "manifest.csv")


@pytest.fixture
def dask_client():
    """Two single-threaded worker processes; closed (workers ended) after the test."""
    import distributed  # in the test extra: a missing one is an error, not a skip

    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, memory_limit=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def _search():
    model = make_combined_model(n_components=8, **TINY)
    model.set_params(lasso__alphas=10, classify__cv=3, pvalue__min_features=10)
    # precision="auto" measures the fastest feature path, and each process may pick
    # another (bf16 or fp32): pin it where scores must be equal across processes
    model.set_params(features__dl__extract__precision="fp32")
    model.set_params(features__dl__extract__channels_last=False)
    return GridSearchCV(model, GRID, cv=CV, scoring="roc_auc", refit=True, n_jobs=-1)


def _split_scores(search):
    return np.array([search.cv_results_[f"split{i}_test_score"] for i in range(CV)])


@pytest.mark.slow
def test_grid_search_on_a_dask_cluster_equals_the_local_search(
    manifest_cohort, dask_client, monkeypatch
):
    from distributed import get_task_stream
    from joblib import parallel_config

    X, y = manifest_cohort, manifest_cohort["clnm"]
    fits = []
    original_fit = SkorchCNN.fit

    def counting_fit(cnn, *args, **kwargs):  # counts CNN trainings in this process only
        fits.append(cnn.lr)
        return original_fit(cnn, *args, **kwargs)

    monkeypatch.setattr(SkorchCNN, "fit", counting_fit)

    local = _search().set_params(n_jobs=1).fit(X, y)
    n_candidates = len(local.cv_results_["params"])
    assert len(fits) == n_candidates * CV + 1  # every fold here, plus the refit

    fits.clear()
    with get_task_stream(dask_client) as stream, parallel_config(backend="dask"):
        remote = _search().fit(X, y)
    # Nothing trained in this process: the folds ran on the workers, and so did the
    # refit's ColumnTransformer branches (its n_jobs=None follows parallel_config).
    assert fits == []
    workers_used = {task["worker"] for task in stream.data}
    assert workers_used == set(dask_client.scheduler_info()["workers"])
    assert len(stream.data) >= 2

    scores = _split_scores(local)
    assert np.all(np.isfinite(scores)) and len(np.unique(scores)) > 2
    np.testing.assert_array_equal(_split_scores(remote), scores)
    np.testing.assert_array_equal(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert remote.best_params_ == local.best_params_
    # The refit ran on a worker: its probabilities agree to 1e-6, not bit for bit
    # (fold scores above are exact); the refit's feature extraction ran at the
    # worker's thread count, which changes fp32 summation order (seen: 1.5e-7).
    np.testing.assert_allclose(
        remote.best_estimator_.predict_proba(X),
        local.best_estimator_.predict_proba(X),
        rtol=0,
        atol=1e-6,
    )
