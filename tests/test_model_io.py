"""Model folders: JSON metadata, safetensors weights, skops with trusted types only."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from thyronet import SkorchCNN
from thyronet.datasets import make_ptmc_cohort
from thyronet.model_io import (
    INTEGRITY_KEY,
    MODEL_FILE,
    TRUSTED_TYPES,
    ModelFileError,
    _info_checksum,
    _sha256,
    load_model,
    save_model,
    verify_model,
)
from thyronet.pipelines import make_combined_model, make_dl_model

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
}


@pytest.fixture(scope="module")
def cohort():
    return make_ptmc_cohort(n_patients=72, image_size=32, random_state=0)


@pytest.fixture(scope="module")
def fitted(cohort):
    y = cohort["clnm"]
    dl = make_dl_model(**TINY).fit(cohort, y)
    combined = (
        make_combined_model(dl, n_components=8)
        .set_params(lasso__alphas=10, classify__cv=3, classify__candidates=["lightgbm"])
        .fit(cohort, y)
    )
    return dl, combined


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _rewrite_checksums(folder):
    """What whoever crafts a folder can do: record checksums that match the files."""
    info = json.loads((folder / "model.json").read_text())
    for rel in info["files"]:
        info["files"][rel]["sha256"] = _sha256(folder / rel)
    info[INTEGRITY_KEY] = _info_checksum(info)
    (folder / "model.json").write_text(json.dumps(info))


def test_dl_model_round_trip_uses_safetensors_and_no_pickle(fitted, cohort, tmp_path):
    dl, _ = fitted
    folder = save_model(dl, tmp_path / "dl_f", threshold=0.3, metadata={"config": {"a": 1}})
    assert _files(folder) == ["model.json", MODEL_FILE, "weights/0.safetensors"]
    assert zipfile.is_zipfile(folder / MODEL_FILE)  # skops, not a pickle
    info = json.loads((folder / "model.json").read_text())
    assert set(info["files"]) == {MODEL_FILE, "weights/0.safetensors"}
    assert {"torch", "scikit-learn", "skops", "safetensors"} <= set(info["versions"])
    assert info["thyronet_version"] and info["created"] and info["threshold"] == 0.3
    assert info["metadata"]["config"] == {"a": 1}
    assert info["feature_names"] == [str(c) for c in cohort.columns]
    assert set(sio.get_untrusted_types(file=folder / MODEL_FILE)) <= set(TRUSTED_TYPES)
    model, loaded_info = load_model(folder)
    assert loaded_info == info
    np.testing.assert_array_equal(model.predict_proba(cohort), dl.predict_proba(cohort))
    cnn = model.named_steps["cnn"]
    assert isinstance(cnn, SkorchCNN) and cnn.n_epochs_ == dl.named_steps["cnn"].n_epochs_
    assert not hasattr(cnn, "_thyronet_weights")


def test_combined_model_round_trip(fitted, cohort, tmp_path):
    _, combined = fitted
    folder = save_model(combined, tmp_path / "combined")
    assert "weights/0.safetensors" in _files(folder)
    model, _ = load_model(folder)
    np.testing.assert_array_equal(model.predict_proba(cohort), combined.predict_proba(cohort))
    scores = combined[-1].scores_
    if hasattr(scores, "columns"):  # pandas attributes come back as pandas
        assert model[-1].scores_.equals(scores)
    # the saved model is not changed by saving
    np.testing.assert_array_equal(combined.predict_proba(cohort), model.predict_proba(cohort))


def test_untrusted_type_is_refused_with_its_name(tmp_path):
    folder = save_model(LogisticRegression().fit([[0], [1]], [0, 1]), tmp_path / "m")
    evil = LogisticRegression().fit([[0], [1]], [0, 1])
    evil.hook_ = os.system  # a function that must never be built on load
    sio.dump(evil, folder / MODEL_FILE)
    _rewrite_checksums(folder)
    verify_model(folder)  # the checksums match: only the type check can catch it
    untrusted = sio.get_untrusted_types(file=folder / MODEL_FILE)
    assert untrusted
    with pytest.raises(ModelFileError, match="does not trust") as err:
        load_model(folder)
    for name in untrusted:
        assert name in str(err.value)


def test_unreadable_model_file_is_a_model_file_error(tmp_path):
    folder = save_model(LogisticRegression().fit([[0], [1]], [0, 1]), tmp_path / "m")
    (folder / MODEL_FILE).write_bytes(b"not a zip archive")
    _rewrite_checksums(folder)
    with pytest.raises(ModelFileError, match=r"cannot read .*BadZipFile"):
        load_model(folder)


def test_tampered_files_are_refused(fitted, tmp_path):
    dl, _ = fitted
    folder = save_model(dl, tmp_path / "dl")
    for rel in (MODEL_FILE, "weights/0.safetensors"):
        original = (folder / rel).read_bytes()
        with open(folder / rel, "ab") as handle:
            handle.write(b"tampered")
        with pytest.raises(ModelFileError, match=rf"{rel}.*does not match the SHA-256"):
            load_model(folder)
        (folder / rel).write_bytes(original)
    load_model(folder)
    (folder / "weights" / "0.safetensors").unlink()
    with pytest.raises(ModelFileError, match=r"0\.safetensors is missing"):
        load_model(folder)


def test_incompatible_versions_are_refused(tmp_path):
    folder = save_model(LogisticRegression().fit([[0], [1]], [0, 1]), tmp_path / "m")
    info = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**info, "thyronet_version": "7.3.0"}))
    with pytest.raises(ModelFileError, match=r"saved by thyronet 7\.3\.0, which is incompatible"):
        load_model(folder)
    # a folder of the old joblib format
    (folder / "model.json").write_text(json.dumps({**info, "format_version": 1}))
    with pytest.raises(ModelFileError, match="model format version 1"):
        load_model(folder)


def test_gpu_model_loads_on_a_cpu(fitted, cohort, tmp_path, monkeypatch):
    import torch

    dl, _ = fitted
    folder = save_model(dl, tmp_path / "dl")
    # the folder as a GPU-trained model writes it: the CNN's device parameter is "cuda"
    stand_in = sio.load(folder / MODEL_FILE, trusted=list(TRUSTED_TYPES))
    stand_in.named_steps["cnn"].set_params(device="cuda")
    sio.dump(stand_in, folder / MODEL_FILE)
    _rewrite_checksums(folder)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model, _ = load_model(folder)
    assert model.named_steps["cnn"].device_ == "cpu"
    np.testing.assert_allclose(
        model.predict_proba(cohort), dl.predict_proba(cohort), rtol=1e-6, atol=1e-6
    )


def test_weights_file_outside_the_checked_files_is_refused(fitted, tmp_path):
    dl, _ = fitted
    folder = save_model(dl, tmp_path / "dl")
    stand_in = sio.load(folder / MODEL_FILE, trusted=list(TRUSTED_TYPES))
    stand_in.named_steps["cnn"]._thyronet_weights["file"] = "../other.safetensors"
    sio.dump(stand_in, folder / MODEL_FILE)
    _rewrite_checksums(folder)
    with pytest.raises(ModelFileError, match="not a checked safetensors file"):
        load_model(folder)


def test_hand_edited_model_json_is_refused_with_the_threshold_hint(tmp_path):
    folder = save_model(
        LogisticRegression().fit([[0], [1]], [0, 1]),
        tmp_path / "m",
        threshold=0.4,
        metadata={"config": {"max_epochs": 3}},
    )
    info = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**info, "threshold": 0.999}))
    with pytest.raises(ModelFileError, match=r"changed after saving.*--threshold"):
        load_model(folder)
    edited = {**info, "metadata": {"config": {"max_epochs": 30}}}
    (folder / "model.json").write_text(json.dumps(edited))
    with pytest.raises(ModelFileError, match="changed after saving"):
        verify_model(folder)
    (folder / "model.json").write_text(json.dumps(info, indent=4))  # reformatting is fine
    assert load_model(folder)[1]["threshold"] == 0.4


def test_save_is_atomic_and_replaces_the_old_folder(tmp_path, monkeypatch):
    import thyronet.model_io as mio

    first = save_model(LogisticRegression().fit([[0], [1]], [0, 1]), tmp_path / "m", threshold=0.3)
    (first / "stale.txt").write_text("from before")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mio, "_fsync_tree", killed)
    with pytest.raises(KeyboardInterrupt):
        save_model(LogisticRegression().fit([[0], [1]], [1, 0]), tmp_path / "m", threshold=0.6)
    # the interrupted save left the old model untouched and no staging folder
    assert load_model(first)[1]["threshold"] == 0.3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    monkeypatch.undo()
    save_model(LogisticRegression().fit([[0], [1]], [1, 0]), tmp_path / "m", threshold=0.6)
    assert load_model(first)[1]["threshold"] == 0.6
    assert not (first / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelFileError, match="it is a file"):
        save_model(LogisticRegression().fit([[0], [1]], [0, 1]), tmp_path / "file")
