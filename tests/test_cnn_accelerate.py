"""SkorchCNN trained through Hugging Face Accelerate (skorch's ``AccelerateMixin``).

The single-process tests use ``Accelerator(cpu=True)``; the ``slow`` test launches two
real processes that train data-parallel on the CPU (DistributedDataParallel over gloo).
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import socket
import subprocess
import sys
import textwrap
import zipfile

import accelerate  # in the test extra: a missing one is an error, not a skip
import numpy as np
import pytest
import torch
from _images import make_images, tiny_cnn
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import InvalidParameterError

from thyronet.cnn import ImageBatches, ThyroNet
from thyronet.explain import gradcam
from thyronet.features import DeepFeatureExtractor
from thyronet.model_io import load_model, save_model


@pytest.fixture
def make_accelerator():
    """``Accelerator`` factory; accelerate's process-wide state is reset around each test."""
    from accelerate.state import AcceleratorState, GradientState

    def reset():
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()

    reset()
    yield lambda **kwargs: accelerate.Accelerator(cpu=True, **kwargs)
    reset()


@pytest.fixture(scope="module")
def data():
    return make_images(n=40)


def tiny(**params):
    return tiny_cnn(**{"max_epochs": 2, **params})


class CountingAdamW(torch.optim.AdamW):
    """AdamW that counts the optimizer steps actually taken."""

    steps = 0

    def step(self, closure=None):
        type(self).steps += 1
        return super().step(closure)


# -- one process --------------------------------------------------------------------------
def test_single_process_fit_equals_the_plain_fit(make_accelerator, data):
    X, y = data
    accelerator = make_accelerator()
    plain = tiny().fit(X, y)
    cnn = tiny(accelerator=accelerator).fit(X, y)
    # same seed, same batches, same augmentation draws: the same model, bit for bit
    np.testing.assert_array_equal(cnn.predict_proba(X), plain.predict_proba(X))
    for key in ("train_loss", "valid_loss", "valid_auc"):
        assert cnn.net_.history[:, key] == plain.net_.history[:, key]
    # the fitted net is a plain one, detached from the accelerator
    assert type(cnn.net_) is ThyroNet
    assert not hasattr(cnn.net_, "accelerator")
    assert type(cnn.net_.module_).__name__ == "BackboneNet"
    assert type(cnn.net_.optimizer_) is torch.optim.AdamW
    assert cnn.device_ == "cpu" and cnn.net_.autocast is False
    assert cnn.accelerator is accelerator
    # the accelerator forgot the model, optimizer and loaders of the fit
    assert accelerator._models == accelerator._optimizers == accelerator._dataloaders == []
    # the warm-up + cosine schedule ran to its end
    assert cnn.net_.optimizer_.param_groups[0]["lr"] < 1e-12


def test_bf16_mixed_precision_comes_from_the_accelerator(make_accelerator, data):
    X, y = data
    fp32 = tiny().fit(X, y)
    cnn = tiny(accelerator=make_accelerator(mixed_precision="bf16")).fit(X, y)
    assert cnn.net_.autocast is True  # inference in bf16 as well
    proba = cnn.predict_proba(X)
    assert np.isfinite(proba).all()
    # bf16 changed the training (and inference) numerics
    assert np.abs(proba - fp32.predict_proba(X)).max() > 1e-4
    with pytest.raises(
        ValueError, match="precision='fp32' conflicts with the accelerator's mixed_precision='bf16'"
    ):
        tiny(precision="fp32", accelerator=cnn.accelerator).fit(X, y)


@pytest.mark.parametrize("accumulation, steps", [(1, 8), (2, 4)])
def test_gradient_accumulation_steps_less_often(make_accelerator, data, accumulation, steps):
    X, y = data
    CountingAdamW.steps = 0
    accelerator = make_accelerator(gradient_accumulation_steps=accumulation)
    tiny(
        optimizer=CountingAdamW,
        validation_fraction=None,
        early_stopping=False,
        accelerator=accelerator,
    ).fit(X[:32], y[:32])
    assert CountingAdamW.steps == steps  # 2 epochs x 4 batches of 8


def test_clone_shares_the_accelerator_and_params_round_trip(make_accelerator, data):
    X, y = data
    accelerator = make_accelerator()
    cnn = tiny(accelerator=accelerator)
    assert cnn.get_params()["accelerator"] is accelerator
    assert clone(cnn).accelerator is accelerator
    cnn.fit(X, y)
    twin = clone(cnn)
    assert twin.accelerator is accelerator and not hasattr(twin, "net_")
    assert twin.set_params(accelerator=None).accelerator is None
    assert cnn.accelerator is accelerator
    assert clone(tiny()).accelerator is None


def test_pickle_copy_and_saved_model_leave_the_accelerator_out(make_accelerator, data, tmp_path):
    X, y = data
    cnn = tiny(accelerator=make_accelerator()).fit(X, y)
    expected = cnn.predict_proba(X)
    blob = pickle.dumps(cnn)
    assert b"accelerate" not in blob  # no accelerate object travels with the model
    for again in (pickle.loads(blob), copy.deepcopy(cnn)):
        assert again.accelerator is None
        np.testing.assert_array_equal(again.predict_proba(X), expected)
    assert cnn.accelerator is not None
    save_model(cnn, tmp_path / "model")
    with zipfile.ZipFile(tmp_path / "model" / "model.skops") as archive:
        assert not any(b"accelerate" in archive.read(name) for name in archive.namelist())
    loaded, _ = load_model(tmp_path / "model")
    assert loaded.accelerator is None and loaded.device_ == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    path = cnn.save_weights(tmp_path / "cnn.safetensors")
    again = tiny().load_weights(path)
    np.testing.assert_array_equal(again.predict_proba(X), expected)


def test_features_and_gradcam_read_the_unwrapped_module(make_accelerator):
    X, y = make_images(n=16, size=64)
    params = dict(batch_size=8, validation_fraction=None, early_stopping=False)
    plain = tiny(**params).fit(X, y)
    cnn = tiny(**params, accelerator=make_accelerator()).fit(X, y)
    features = DeepFeatureExtractor(FrozenEstimator(cnn)).fit(X).transform(X)
    expected = DeepFeatureExtractor(FrozenEstimator(plain)).fit(X).transform(X)
    np.testing.assert_array_equal(features, expected)
    np.testing.assert_array_equal(gradcam(cnn, X[:4]), gradcam(plain, X[:4]))
    # fine-tuning inside the extractor trains a clone through the same accelerator
    extractor = DeepFeatureExtractor(cnn, verbose=0).fit(X, y)
    assert extractor.cnn_.accelerator is cnn.accelerator
    np.testing.assert_array_equal(extractor.transform(X), expected)


def test_parameters_that_conflict_with_an_accelerator(make_accelerator, data):
    X, y = data
    accelerator = make_accelerator()
    with pytest.raises(ValueError, match="device='cpu' cannot be combined with an accelerator"):
        tiny(device="cpu", accelerator=accelerator).fit(X, y)
    with pytest.raises(InvalidParameterError, match="'accelerator' parameter of SkorchCNN"):
        tiny(accelerator="auto").fit(X, y)

    class NotAnAccelerator:
        def prepare(self, *args): ...
        def gather_for_metrics(self, *args): ...
        def autocast(self): ...

    with pytest.raises(
        TypeError,
        match=r"must be an accelerate\.Accelerator, got "
        "NotAnAccelerator",
    ):
        tiny(accelerator=NotAnAccelerator()).fit(X, y)


def test_uneven_batches_are_refused(make_accelerator, data):
    X, y = data
    from accelerate import DataLoaderConfiguration

    accelerator = make_accelerator(dataloader_config=DataLoaderConfiguration(even_batches=False))
    with pytest.raises(ValueError, match="even_batches=True"):
        tiny(accelerator=accelerator).fit(X, y)


def test_missing_accelerate_names_the_extra(make_accelerator, data, monkeypatch):
    X, y = data
    cnn = tiny(accelerator=make_accelerator())
    monkeypatch.setitem(sys.modules, "accelerate", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r'pip install "thyronet\[accelerate\]"'):
        cnn.fit(X, y)


def test_thyronet_does_not_import_accelerate():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import thyronet.cnn, thyronet.features, thyronet.model_io
        from thyronet import SkorchCNN
        X = np.random.default_rng(0).random((8, 2, 32, 32), dtype=np.float32)
        SkorchCNN("test_resnet", max_epochs=1, batch_size=4, validation_fraction=None,
                  early_stopping=False, verbose=0).fit(X, np.arange(8) % 2).predict(X)
        print(sorted(m for m in sys.modules if m.split(".")[0] == "accelerate"))
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.strip() == "[]"


def test_image_batches_keep_the_order_asked_for():
    X = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    rows = [8, 9, 0, 1]  # a padded last batch: real rows first, repeated ones after
    xb, yb = ImageBatches(X, np.arange(10), keep_order=True)[rows]
    assert xb.flatten().tolist() == yb.tolist() == rows
    xb, _ = ImageBatches(X)[rows]
    assert xb.flatten().tolist() == sorted(rows)  # the default reads (and returns) sorted


# -- two processes ------------------------------------------------------------------------
DDP_SCRIPT = '''
"""Train a tiny SkorchCNN data-parallel over the processes of ``accelerate launch``."""
import hashlib
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator

import thyronet.cnn
from thyronet import SkorchCNN
from thyronet.model_io import save_model

out = Path(sys.argv[1])
accelerator = Accelerator(cpu=True)
rank = accelerator.process_index

# record the rows each process is served (ImageBatches serves whole batches)
served = {"train": [], "valid": []}
getitems = thyronet.cnn.ImageBatches.__getitems__


def spy(self, batch):
    rows = np.asarray(batch) if self.indices is None else self.indices[np.asarray(batch)]
    served["valid" if len(self) == 10 else "train"].append(rows.tolist())  # 10 of 40
    return getitems(self, batch)


thyronet.cnn.ImageBatches.__getitems__ = spy

rng = np.random.default_rng(0)
X = rng.random((40, 2, 32, 32), dtype=np.float32) * 0.5
y = np.arange(40) % 2
X[y == 1, 0, 8:20, 8:20] += 0.5
# random_state=None: process 0's seed is broadcast, so all split the data the same way
params = dict(backbone="test_resnet", batch_size=8, validation_fraction=0.25,
              early_stopping=False, random_state=None, accelerator=accelerator)

errors = {}
for name, extra, n in (("freeze", {"freeze_epochs": 1}, 40),
                       ("data", {}, 40 if rank == 0 else 38)):
    try:
        SkorchCNN(**params, max_epochs=1, verbose=0, **extra).fit(X[:n], y[:n])
    except ValueError as exc:
        errors[name] = str(exc)
served = {"train": [], "valid": []}

cnn = SkorchCNN(**params, max_epochs=2, verbose=1).fit(X, y)
proba = cnn.predict_proba(X)[:, 1]
digest = hashlib.sha256()
for key, value in sorted(cnn.net_.module_.state_dict().items()):
    digest.update(key.encode())
    digest.update(value.detach().cpu().numpy().tobytes())
history = cnn.net_.history
report = {
    "process_index": rank, "num_processes": accelerator.num_processes,
    "distributed_type": str(accelerator.distributed_type),
    "backend": torch.distributed.get_backend(),
    "errors": errors, "served": served, "weights": digest.hexdigest(),
    "proba": proba.tolist(), "device": cnn.device_, "net": type(cnn.net_).__name__,
    "lr": cnn.net_.optimizer_.param_groups[0]["lr"],
    "history": {key: history[:, key] for key in ("train_loss", "valid_loss", "valid_auc",
                                                 "train_batch_count", "valid_batch_count")},
}
if accelerator.is_main_process:
    save_model(cnn, out / "model")
(out / f"rank{rank}.json").write_text(json.dumps(report))
accelerator.wait_for_everyone()
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_data_parallel(tmp_path):
    """``accelerate launch`` two CPU processes (DDP over gloo) and check what they did.

    ``accelerate launch --cpu`` runs a single process (several CPU processes need
    mpirun), so the test uses the launcher of the GPU guide (``--multi_gpu``, torchrun
    underneath) and the script asks for ``Accelerator(cpu=True)``: a genuine
    multi-process run on the CPU.
    """
    script = tmp_path / "train_ddp.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf"),  # no user accelerate config
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        str(script),
        str(out),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    ranks = [json.loads((out / f"rank{i}.json").read_text()) for i in (0, 1)]

    # two processes took part, data-parallel on the CPU over gloo
    assert [r["process_index"] for r in ranks] == [0, 1]
    assert {r["num_processes"] for r in ranks} == {2}
    assert {r["distributed_type"] for r in ranks} == {"DistributedType.MULTI_CPU"}
    assert {r["backend"] for r in ranks} == {"gloo"}
    # a mistake fails on every process instead of hanging one of them
    for r in ranks:
        assert "freeze_epochs=1 is not supported with 2 processes" in r["errors"]["freeze"]
        assert "every process must call SkorchCNN.fit with the same data" in r["errors"]["data"]

    # 30 training rows in 4 batches of 8: each process ran half of them every epoch,
    # together covering the training rows (the last batch is padded to 8 with repeats)
    train = [r["served"]["train"] for r in ranks]
    valid = [r["served"]["valid"] for r in ranks]
    assert [len(t) for t in train] == [4, 4]  # 2 batches x 2 epochs each
    assert all(r["history"]["train_batch_count"] == [2, 2] for r in ranks)
    valid_rows = {row for batch in valid[0] + valid[1] for row in batch}
    train_rows = set(range(40)) - valid_rows
    assert len(valid_rows) == 10 and len(train_rows) == 30
    for epoch in (0, 1):
        mine = [[row for batch in t[2 * epoch : 2 * epoch + 2] for row in batch] for t in train]
        assert len(mine[0]) == len(mine[1]) == 16
        assert set(mine[0]) | set(mine[1]) == train_rows
        assert not set(mine[0]) & set(mine[1][:14])  # disjoint shards; 2 padding repeats

    # every process recorded the same history and ends with the same weights
    assert ranks[0]["history"] == ranks[1]["history"]
    assert ranks[0]["weights"] == ranks[1]["weights"]
    assert ranks[0]["proba"] == ranks[1]["proba"]
    assert {r["net"] for r in ranks} == {"ThyroNet"} and {r["device"] for r in ranks} == {"cpu"}
    assert max(r["lr"] for r in ranks) < 1e-12  # the schedule counted this process's batches

    # the validation scores were computed on the gathered validation set, padding removed
    y = np.arange(40) % 2
    proba = np.asarray(ranks[0]["proba"])
    rows = sorted(valid_rows)
    # predict_proba and the sharded validation pass batch the rows differently: they may differ
    # in the last float bits; only a near-tie of a positive and a negative could then
    # swap one pair, moving the AUC by one pair's weight, 1 / (n_pos * n_neg)
    positives, negatives = proba[rows][y[rows] == 1], proba[rows][y[rows] == 0]
    near_tie = np.min(np.abs(positives[:, None] - negatives[None, :])) < 1e-5
    one_pair = 1 / (len(positives) * len(negatives))
    assert ranks[0]["history"]["valid_auc"][-1] == pytest.approx(
        roc_auc_score(y[rows], proba[rows]), abs=one_pair if near_tie else 1e-9
    )
    logits = torch.logit(torch.tensor(proba[rows], dtype=torch.float64))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.tensor(y[rows], dtype=torch.float64)
    ).item()
    assert ranks[0]["history"]["valid_loss"][-1] == pytest.approx(bce, rel=1e-5)
    # one epoch table (printed by the main process only)
    assert done.stdout.count("valid_auc") == 1

    # the main process saved a model that loads and predicts here, on a plain CPU
    model, _ = load_model(out / "model")
    assert model.accelerator is None
    rng = np.random.default_rng(0)
    X = rng.random((40, 2, 32, 32), dtype=np.float32) * 0.5
    X[y == 1, 0, 8:20, 8:20] += 0.5
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], proba, atol=1e-6)
