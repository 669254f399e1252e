"""SkorchCNN: training, scikit-learn behaviour, persistence and bad input."""

from __future__ import annotations

import io
import pickle
import sys

import joblib
import numpy as np
import pytest
import torch
from _images import make_images, tiny_cnn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from skorch.exceptions import DeviceWarning

from thyronet import SkorchCNN
from thyronet.backbones import Backbone, WeightsMismatchError
from thyronet.cnn import (
    ImageAugment,
    ImageBatches,
    _paths,
    batch_loader,
    check_images,
    clear_path_cache,
    path_cache,
    warmup_cosine,
)
from thyronet.plugins import UnknownEntryError


def tiny(**params):
    return tiny_cnn(**{"max_epochs": 2, **params})


@pytest.fixture(scope="module")
def data():
    return make_images()


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return tiny().fit(X, y)


# -- fitting ------------------------------------------------------------------------------
def test_fit_predict_proba_and_attributes(fitted, data):
    X, _ = data
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(fitted.classes_, [0, 1])
    assert fitted.n_features_in_ == 2
    assert fitted.feature_dim_ == 96
    assert fitted.device_ == ("cuda" if torch.cuda.is_available() else "cpu")
    assert set(fitted.predict(X)) <= {0, 1}
    logits = fitted.decision_function(X)
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), proba[:, 1], rtol=1e-5)
    assert "valid_auc" in fitted.net_.history[-1]
    assert fitted.n_epochs_ == len(fitted.net_.history) == 2


def test_learns_a_visible_signal():
    X, y = make_images(n=48, seed=1)
    X_val, y_val = make_images(n=32, seed=2)
    cnn = tiny(max_epochs=6, lr=3e-3, augment=False, early_stopping=False).fit(
        X, y, X_val=X_val, y_val=y_val
    )
    assert roc_auc_score(y_val, cnn.predict_proba(X_val)[:, 1]) > 0.9


def test_string_labels_are_kept_as_classes(data):
    X, y = data
    labels = np.where(y == 1, "N1", "N0")
    cnn = tiny(max_epochs=1).fit(X, labels)
    np.testing.assert_array_equal(cnn.classes_, ["N0", "N1"])
    assert set(cnn.predict(X)) <= {"N0", "N1"}


def test_reproducible_for_a_random_state(data):
    X, y = data
    a = tiny(max_epochs=1).fit(X, y).predict_proba(X)
    b = tiny(max_epochs=1).fit(X, y).predict_proba(X)
    c = tiny(max_epochs=1, random_state=1).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_leaves_the_global_torch_rng_alone(data):
    X, y = data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny(max_epochs=1).fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)


def test_early_stopping_restores_the_best_epoch():
    X, y = make_images(n=32, seed=3)
    X_val, y_val = make_images(n=16, seed=4)
    cnn = tiny(max_epochs=8, patience=2, lr=3e-3, augment=False).fit(X, y, X_val=X_val, y_val=y_val)
    aucs = cnn.net_.history[:, "valid_auc"]
    best = int(np.argmax(aucs))  # first epoch reaching the maximum
    assert cnn.best_epoch_ == best + 1
    # the kept weights are those of the best epoch, not of the last one
    auc_now = roc_auc_score(y_val, cnn.predict_proba(X_val)[:, 1])
    assert auc_now == pytest.approx(aucs[best], abs=1e-6)
    assert cnn.n_epochs_ <= best + 1 + 2  # stopped within `patience` epochs of the best


def test_internal_validation_split_is_stratified(data):
    X, y = data
    cnn = tiny(max_epochs=1, validation_fraction=0.25).fit(X, y)
    history = cnn.net_.history
    n_valid = sum(b["valid_batch_size"] for b in history[-1, "batches"] if "valid_batch_size" in b)
    n_train = sum(b["train_batch_size"] for b in history[-1, "batches"] if "train_batch_size" in b)
    assert (n_train, n_valid) == (24, 8)
    assert 0.0 <= history[-1, "valid_auc"] <= 1.0


def test_no_validation_needs_early_stopping_off(data):
    X, y = data
    with pytest.raises(ValueError, match="early_stopping=True needs a validation set"):
        tiny(validation_fraction=None).fit(X, y)
    cnn = tiny(max_epochs=1, validation_fraction=None, early_stopping=False).fit(X, y)
    assert "valid_auc" not in cnn.net_.history[-1]
    assert cnn.best_epoch_ is None


def test_cosine_schedule_with_warmup(data):
    X, y = data
    cnn = tiny(max_epochs=4, lr=1e-2, warmup_epochs=1, validation_fraction=0.25).fit(X, y)
    lrs = [b["event_lr"] for epoch in cnn.net_.history for b in epoch["batches"] if "event_lr" in b]
    steps = 3  # 24 training images / batch 8
    assert len(lrs) == 4 * steps
    np.testing.assert_allclose(lrs[:steps], [1e-2 * (k + 1) / steps for k in range(steps)])
    assert max(lrs) == pytest.approx(1e-2)
    assert all(a >= b for a, b in zip(lrs[steps:], lrs[steps + 1 :], strict=False))
    assert lrs[-1] < 0.05 * 1e-2
    np.testing.assert_allclose(lrs, [1e-2 * _warmup_cosine_factor(t, steps, 12) for t in range(12)])


def _warmup_cosine_factor(step, warmup, total, cosine=True):
    """The closed form of the schedule (thyronet <= 0.1's hand-written LambdaLR factor)."""
    if step < warmup:
        return (step + 1) / warmup
    if not cosine:
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + np.cos(np.pi * min(progress, 1.0)))


@pytest.mark.parametrize(
    ("warmup", "total", "cosine"),
    [(0, 10, True), (1, 10, True), (3, 12, True), (4, 4, True), (3, 12, False), (5, 3, True)],
)
def test_warmup_cosine_gives_the_same_lr_at_every_step(warmup, total, cosine):
    opt = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=1e-2)
    schedule = warmup_cosine(opt, warmup_steps=warmup, total_steps=total, cosine=cosine)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    expected = [1e-2 * _warmup_cosine_factor(t, warmup, total, cosine) for t in range(total)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12, atol=1e-18)


def test_freeze_epochs_train_only_the_head(data):
    X, y = data
    cnn = tiny(max_epochs=1, freeze_epochs=1, augment=False)
    start = clone(cnn)._initialize_untrained(2)  # same seed -> same initial weights
    cnn.fit(X, y)
    before = dict(start.net_.module_.named_parameters())
    after = dict(cnn.net_.module_.named_parameters())
    changed = {k for k in before if not torch.equal(before[k].cpu(), after[k].detach().cpu())}
    assert changed == {"model.fc.weight", "model.fc.bias"}
    # after training everything is trainable again (Grad-CAM needs gradients)
    assert all(p.requires_grad for p in cnn.net_.module_.parameters())

    unfrozen = tiny(max_epochs=2, freeze_epochs=1, augment=False).fit(X, y)
    moved = dict(unfrozen.net_.module_.named_parameters())
    assert not torch.equal(
        moved["model.conv1.0.weight"].detach().cpu(), before["model.conv1.0.weight"].cpu()
    )


def test_class_weighted_probabilities_are_corrected_to_the_training_prevalence():
    # 20% positives and no signal: a weighted loss pulls the raw logit up by log(4)
    X, _ = make_images(n=80, size=16, seed=1)
    y = (np.arange(80) % 5 == 0).astype(int)
    settings = dict(max_epochs=6, lr=3e-3, early_stopping=False, validation_fraction=None)
    settings["augment"] = False
    plain = tiny(**settings).fit(X, y)
    weighted = tiny(class_weight="balanced", **settings).fit(X, y)
    assert plain.logit_offset_ == 0.0
    assert weighted.logit_offset_ == pytest.approx(np.log(4.0))
    p = weighted.predict_proba(X)[:, 1]
    raw = 1 / (1 + np.exp(-(weighted.decision_function(X) + weighted.logit_offset_)))
    assert raw.mean() > 0.33  # uncorrected: far above the prevalence
    assert abs(p.mean() - y.mean()) < 0.06  # calibration-in-the-large restored
    assert abs(p.mean() - plain.predict_proba(X)[:, 1].mean()) < 0.05
    np.testing.assert_allclose(1 / (1 + np.exp(-weighted.decision_function(X))), p, rtol=1e-5)


def test_predict_proba_is_fp32_and_matches_skorch_without_weights(fitted, data):
    X, _ = data
    fitted.net_.autocast = True  # as a bf16-trained model on CUDA
    try:
        proba = fitted.predict_proba(X)
        assert fitted.net_.autocast is True  # restored after the fp32 pass
    finally:
        fitted.net_.autocast = False
    np.testing.assert_array_equal(proba, fitted.net_.predict_proba(X))


def test_balanced_class_weight_sets_the_positive_weight(data):
    X, _ = make_images(n=40)
    y = np.r_[np.ones(10, int), np.zeros(30, int)]
    X_val, y_val = data
    cnn = tiny(max_epochs=1, class_weight="balanced").fit(X, y, X_val=X_val, y_val=y_val)
    assert float(cnn.net_.criterion_.pos_weight) == pytest.approx(30 / 10)
    explicit = tiny(max_epochs=1, class_weight={0: 1.0, 1: 4.0}).fit(X, y)
    assert float(explicit.net_.criterion_.pos_weight) == pytest.approx(4.0)
    assert tiny(max_epochs=1).fit(X, y).net_.criterion_.pos_weight is None
    with pytest.raises(ValueError, match=r"class_weight has labels \[7\]"):
        tiny(class_weight={7: 1.0}).fit(X, y)


def test_augmentation_is_applied_to_training_batches_only(data):
    X, y = data
    seen = []

    class Recording(ImageAugment):
        def __call__(self, x):
            seen.append(len(x))
            return super().__call__(x)

    # 25 training images: batches of 8, 8, 8 (a last batch of 1 is dropped for BatchNorm)
    cnn = tiny(max_epochs=2, augment=Recording()).fit(X, y)
    assert seen == [8, 8, 8] * 2
    seen.clear()
    cnn.predict_proba(X)
    assert seen == []
    plain = tiny(max_epochs=2, augment=False).fit(X, y)
    assert not np.allclose(plain.predict_proba(X), cnn.predict_proba(X))


def test_image_augment_ops():
    torch.manual_seed(0)
    x = torch.rand(6, 2, 16, 16)
    out = ImageAugment()(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert not torch.allclose(out, x)
    identity = ImageAugment(
        hflip=0, rotate=0, scale=0, translate=0, gamma=0, contrast=0, brightness=0, speckle=0
    )
    torch.testing.assert_close(identity(x), x)
    flipped = ImageAugment(
        hflip=1.0, rotate=0, scale=0, translate=0, gamma=0, contrast=0, brightness=0, speckle=0
    )(x)
    torch.testing.assert_close(flipped, x.flip(-1))
    vflip = ImageAugment(
        hflip=0,
        vflip=1.0,
        rotate=0,
        scale=0,
        translate=0,
        gamma=0,
        contrast=0,
        brightness=0,
        speckle=0,
    )(x)
    torch.testing.assert_close(vflip, x.flip(-2))


def test_channels_last_and_precision_settings(fitted, data):
    X, _ = data
    weight = fitted.net_.module_.model.layer1[0].conv1.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert fitted.net_.autocast == torch.cuda.is_available()  # "auto": bf16 on CUDA only
    # same weights in the default layout and fp32: same numbers up to float rounding
    plain = clone(fitted).set_params(channels_last=False, precision="fp32")
    plain._initialize_untrained(2)
    plain.net_.module_.load_state_dict(fitted.net_.module_.state_dict())
    assert not plain.net_.autocast
    assert plain.net_.module_.model.layer1[0].conv1.weight.is_contiguous()
    np.testing.assert_allclose(plain.predict_proba(X), fitted.predict_proba(X), atol=1e-4)
    bf16 = clone(fitted).set_params(precision="bf16")._initialize_untrained(2)
    bf16.net_.module_.load_state_dict(fitted.net_.module_.state_dict())
    assert bf16.net_.autocast
    proba = bf16.predict_proba(X)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba, fitted.predict_proba(X), atol=0.05)


def test_predict_proba_measures_no_path_and_runs_in_fp32(fitted, data, monkeypatch):
    """Evaluation predictions are fp32 whatever the precision (bf16 logits tie patients):
    SkorchCNN.predict_proba measures no inference path; DeepFeatureExtractor does."""
    X, _ = data
    monkeypatch.setattr(_paths, "MIN_IMAGES_TO_PICK", 1)
    clear_path_cache()
    bf16 = clone(fitted).set_params(precision="bf16")._initialize_untrained(2)
    bf16.net_.module_.load_state_dict(fitted.net_.module_.state_dict())
    np.testing.assert_array_equal(bf16.predict_proba(X), fitted.predict_proba(X))
    assert not path_cache()
    assert bf16.net_.autocast  # the training setting is kept for training


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_cuda_device_without_cuda_is_an_error(data):
    X, y = data
    with pytest.raises(ValueError, match="CUDA is not available"):
        tiny(device="cuda").fit(X, y)


def test_memmap_input_is_read_batch_by_batch(tmp_path, data, fitted):
    X, y = data
    path = tmp_path / "images.npy"
    disk = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=X.shape)
    disk[:] = X
    disk.flush()
    del disk
    mm = np.load(path, mmap_mode="r")
    np.testing.assert_array_equal(fitted.predict_proba(mm), fitted.predict_proba(X))
    from_disk = tiny().fit(mm, y)
    np.testing.assert_array_equal(from_disk.predict_proba(X), fitted.predict_proba(X))
    # a dataset over a memmap pickles as a file reference, not as the data
    part = ImageBatches(mm[4:], y[4:])
    blob = pickle.dumps(part)
    assert len(blob) < 2_000 < mm[4:].nbytes
    again = pickle.loads(blob)
    assert isinstance(again.X, np.memmap)
    np.testing.assert_array_equal(again.X, X[4:])
    xb, yb = again[[2, 0]]
    np.testing.assert_array_equal(xb.numpy(), X[[4, 6]])
    np.testing.assert_array_equal(yb.numpy(), y[[4, 6]])


def test_batch_loader_serves_whole_batches_and_drops_a_singleton(data):
    X, y = data
    batches = list(batch_loader(ImageBatches(X[:17], y[:17]), batch_size=8))
    assert [len(b[0]) for b in batches] == [8, 8, 1]
    batches = list(
        batch_loader(ImageBatches(X[:17], y[:17]), batch_size=8, shuffle=True, drop_singleton=True)
    )
    assert [len(b[0]) for b in batches] == [8, 8]


def test_worker_processes_give_the_same_predictions(data, fitted):
    X, _ = data
    workers = pickle.loads(pickle.dumps(fitted))
    workers.net_.iterator_valid__num_workers = 1  # as SkorchCNN(num_workers=1) sets it
    np.testing.assert_array_equal(workers.predict_proba(X), fitted.predict_proba(X))


# -- scikit-learn behaviour ---------------------------------------------------------------
def test_clone_of_fitted_is_untrained(fitted):
    copy = clone(fitted)
    assert not hasattr(copy, "net_")
    assert copy.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        copy.predict_proba(np.zeros((1, 2, 32, 32), np.float32))


def test_nested_optimizer_and_backbone_parameters(data):
    X, y = data
    cnn = tiny(max_epochs=1, optimizer="sgd")
    cnn.set_params(optimizer__momentum=0.5, backbone__drop_rate=0.25, lr=0.05)
    params = cnn.get_params()
    assert params["optimizer__momentum"] == 0.5 and params["backbone__drop_rate"] == 0.25
    assert cnn.optimizer_kwargs == {"momentum": 0.5}
    assert "optimizer__momentum" not in cnn.get_params(deep=False)
    cnn.fit(X, y)
    group = cnn.net_.optimizer_.param_groups[0]
    assert isinstance(cnn.net_.optimizer_, torch.optim.SGD)
    assert group["momentum"] == 0.5 and group["nesterov"] is True
    assert cnn.net_.module_.model.drop_rate == 0.25
    assert clone(cnn).get_params()["backbone__drop_rate"] == 0.25
    adamw = tiny(max_epochs=1, weight_decay=0.123).fit(X, y)
    assert isinstance(adamw.net_.optimizer_, torch.optim.AdamW)
    assert adamw.net_.optimizer_.param_groups[0]["weight_decay"] == 0.123


def test_grid_search_over_lr(data):
    X, y = data
    search = GridSearchCV(
        tiny(max_epochs=1, validation_fraction=0.25), {"lr": [1e-3, 1e-2]}, scoring="roc_auc", cv=2
    )
    search.fit(X, y)
    assert search.best_params_["lr"] in (1e-3, 1e-2)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.predict_proba(X).shape == (len(X), 2)


def test_bad_parameters_fail_with_sklearn_messages(data):
    X, y = data
    with pytest.raises(ValueError, match="'precision' parameter of SkorchCNN"):
        tiny(precision="fp8").fit(X, y)
    with pytest.raises(ValueError, match="'optimizer' parameter of SkorchCNN"):
        tiny(optimizer="lion").fit(X, y)


# -- persistence --------------------------------------------------------------------------
def test_pickle_and_joblib_round_trip(fitted, data, tmp_path):
    X, _ = data
    expected = fitted.predict_proba(X)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(X), expected)
    joblib.dump(fitted, tmp_path / "cnn.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "cnn.joblib").predict_proba(X), expected)
    # only the weights travel: no training data, no optimizer moments
    weights = sum(t.numel() * 4 for t in fitted.net_.module_.state_dict().values())
    assert len(pickle.dumps(fitted)) < 1.2 * weights + 100_000
    assert fitted.net_.train_split is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_model_saved_on_cuda_loads_and_predicts_on_cpu(fitted, data):
    """A model whose net says 'cuda' is remapped to the CPU by skorch on unpickling."""
    X, _ = data
    expected = fitted.predict_proba(X)
    gpu_like = pickle.loads(pickle.dumps(fitted))
    gpu_like.net_.device = "cuda"  # as pickled on a GPU machine (tensors are saved by torch)
    gpu_like.device_ = "cuda"
    gpu_like.net_.autocast = True  # precision="auto" on CUDA
    blob = io.BytesIO()
    joblib.dump(gpu_like, blob)
    blob.seek(0)
    with pytest.warns(DeviceWarning, match="(?i)cuda"):  # skorch warns twice
        loaded = joblib.load(blob)
    assert loaded.device_ == "cpu" and str(loaded.net_.device) == "cpu"
    assert loaded.net_.autocast is False  # "auto" re-resolved for the CPU
    assert next(loaded.net_.module_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_save_and_load_weights(fitted, data, tmp_path, suffix):
    X, _ = data
    path = fitted.save_weights(tmp_path / f"dl_f{suffix}")
    if suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            assert handle.metadata()["thyronet.backbone"] == "test_resnet"
            assert handle.metadata()["thyronet.in_chans"] == "2"
    restored = tiny().load_weights(path)
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(restored.classes_, fitted.classes_)
    # the saved file is also a valid `pretrained=` file: fine-tuning starts from it
    start = tiny(pretrained=path)._initialize_untrained(2)
    for key, value in fitted.net_.module_.model.state_dict().items():
        assert torch.equal(start.net_.module_.model.state_dict()[key].cpu(), value.cpu()), key


def test_load_weights_of_another_backbone_is_rejected(fitted, tmp_path):
    path = fitted.save_weights(tmp_path / "w.safetensors")
    with pytest.raises(WeightsMismatchError, match="saved from backbone 'test_resnet'"):
        SkorchCNN("resnet18", verbose=0).load_weights(path)
    import timm
    from safetensors.torch import save_file

    save_file(
        timm.create_model("test_efficientnet", in_chans=2).state_dict(),
        str(tmp_path / "other.safetensors"),
    )
    with pytest.raises(WeightsMismatchError, match=r"missing: .*conv1"):
        tiny().load_weights(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError):
        tiny().load_weights(tmp_path / "absent.safetensors")


def test_custom_backbone_entry_fits_and_pickles(data):
    X, y = data
    entry = Backbone("tiny_effnet", timm_name="test_efficientnet", gradcam_layer="conv_head")
    cnn = tiny(backbone=entry, max_epochs=1).fit(X, y)
    assert cnn.feature_dim_ == 256
    assert cnn.net_.module_.gradcam_target() is cnn.net_.module_.model.conv_head
    again = pickle.loads(pickle.dumps(cnn))
    np.testing.assert_array_equal(again.predict_proba(X), cnn.predict_proba(X))


# -- verbosity ----------------------------------------------------------------------------
def test_verbose_zero_is_silent_and_one_shows_table_and_bar(data, capsys, monkeypatch):
    X, y = data
    tiny(max_epochs=1).fit(X, y)
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    tiny(max_epochs=1, verbose=1).fit(X, y)
    out, err = capsys.readouterr()
    assert "valid_auc" in out and "train_loss" in out  # skorch's epoch table
    assert err == ""  # not a terminal: no batch bar
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    tiny(max_epochs=1, verbose=1).fit(X, y)
    assert "it/s" in capsys.readouterr().err or "s/it" in capsys.readouterr().err


# -- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(8, 32), (8, 32, 32), (8,), (2, 2, 2, 32, 32)])
def test_input_that_is_not_4d(shape, data):
    _, y = data
    X = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match=r"needs images shaped \(n_samples, n_channels"):
        tiny().fit(X, y[: shape[0]])


def test_channel_count_different_from_fit(fitted):
    with pytest.raises(ValueError, match=r"has 3 channel.* fitted with 2"):
        fitted.predict_proba(np.zeros((4, 3, 32, 32), np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_pixels(bad, data, fitted):
    X, y = data
    X = X.copy()
    X[5, 1, 3, 3] = bad
    X[9, 0, 0, 0] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite pixels in sample\(s\) \[5, 9\]"):
        tiny().fit(X, y)
    with pytest.raises(ValueError, match="NaN or infinite"):
        fitted.predict_proba(X)


def test_input_is_not_modified(data):
    X, y = data
    X_copy, y_copy = X.copy(), y.copy()
    tiny(max_epochs=1).fit(X, y)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(y, y_copy)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (np.zeros(32, int), "single class"),
        (np.arange(32) % 3, "Only binary classification is supported"),
        (np.linspace(0, 1, 32), "Unknown label type"),
        (None, "requires y to be passed"),
    ],
)
def test_targets_that_are_not_binary(target, message, data):
    X, _ = data
    with pytest.raises(ValueError, match=message):
        tiny().fit(X, target)


def test_other_bad_inputs(data):
    X, y = data
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        tiny().fit(X, y[:-1])
    with pytest.raises(ValueError, match="Complex data not supported"):
        tiny().fit(X.astype(np.complex64), y)
    with pytest.raises(ValueError, match="DataFrame"):
        import pandas as pd

        tiny().fit(pd.DataFrame(np.zeros((32, 3))), y)
    with pytest.raises(ValueError, match="pass both X_val and y_val"):
        tiny().fit(X, y, X_val=X)
    with pytest.raises(ValueError, match="y_val has a single class"):
        tiny().fit(X, y, X_val=X[:4], y_val=np.zeros(4))
    with pytest.raises(ValueError, match="X_val has 1 channel"):
        tiny().fit(X, y, X_val=X[:4, :1], y_val=y[:4])
    with pytest.raises(ValueError, match="stratified validation_fraction"):
        tiny().fit(X[:3], y[:3])
    with pytest.raises(UnknownEntryError, match=r"unknown backbone .resnet_9000.*test_resnet"):
        tiny(backbone="resnet_9000").fit(X, y)
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        tiny(pretrained="missing.pth").fit(X, y)


def test_check_images_accepts_tensors_and_lists():
    tensor = torch.zeros(2, 1, 4, 4)
    assert check_images(tensor).shape == (2, 1, 4, 4)
    assert check_images(np.zeros((2, 1, 4, 4)).tolist()).shape == (2, 1, 4, 4)
    with pytest.raises(ValueError, match="0 samples"):
        check_images(np.zeros((0, 1, 4, 4)))
    with pytest.raises(ValueError, match="empty channel or spatial axis"):
        check_images(np.zeros((2, 0, 4, 4)))
    with pytest.raises(ValueError, match="real numbers"):
        check_images(np.array([[[["a"]]]]))
    import scipy.sparse

    with pytest.raises(TypeError, match="sparse input is not supported"):
        check_images(scipy.sparse.csr_matrix(np.eye(3)))


def test_verbose_defaults_to_silent():
    from thyronet import DeepFeatureExtractor

    assert SkorchCNN().verbose == 0
    assert DeepFeatureExtractor().verbose == 0


def test_pretrained_auto_is_resolved_when_the_net_is_built(monkeypatch):
    import thyronet.cnn._training as training

    # no cached hub weights for the tiny backbone: "auto" builds the random init
    auto = tiny(pretrained="auto")
    assert auto.get_params()["pretrained"] == "auto"  # __init__ stores it unchanged
    start = auto._initialize_untrained(2)
    plain = tiny(pretrained=False)._initialize_untrained(2)
    for key, value in plain.net_.module_.state_dict().items():
        assert torch.equal(start.net_.module_.state_dict()[key], value), key
    asked = []
    monkeypatch.setattr(training, "resolve_pretrained", lambda b, p: asked.append((b, p)) or False)
    tiny(pretrained="auto")._initialize_untrained(2)
    assert asked == [("test_resnet", "auto")]


@pytest.mark.parametrize("validated", [False, True])
def test_an_interrupt_during_training_is_raised_not_swallowed(data, monkeypatch, validated):
    # skorch's partial_fit catches KeyboardInterrupt and returns a half-trained net
    from thyronet.cnn import ThyroNet

    X, y = data
    calls = []
    original = ThyroNet.train_step_single

    def interrupted_in_epoch_2(self, batch, **fit_params):
        calls.append(len(self.history))
        if len(self.history) >= 2:
            raise KeyboardInterrupt
        return original(self, batch, **fit_params)

    monkeypatch.setattr(ThyroNet, "train_step_single", interrupted_in_epoch_2)
    cnn = tiny(max_epochs=3)
    fit_params = {"X_val": X[:8], "y_val": y[:8]} if validated else {}
    with pytest.raises(KeyboardInterrupt):
        cnn.fit(X, y, **fit_params)
    assert calls and max(calls) == 2
    with pytest.raises(NotFittedError):
        cnn.predict_proba(X)


def test_the_class_weight_correction_survives_save_and_load(tmp_path):
    from thyronet.model_io import load_model, save_model

    X, _ = make_images(n=40, size=16, seed=1)
    y = (np.arange(40) % 4 == 0).astype(int)
    cnn = tiny(max_epochs=1, class_weight="balanced", validation_fraction=0.25).fit(X, y)
    save_model(cnn, tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m")
    assert loaded.logit_offset_ == cnn.logit_offset_ > 0.9  # log of ~n_neg / n_pos
    np.testing.assert_allclose(loaded.predict_proba(X), cnn.predict_proba(X), rtol=1e-5)
