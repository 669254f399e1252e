"""thyronet-twostream: the two-stream late-fusion backbone with thyronet's estimators."""

import json
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest
import timm
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from thyronet import DeepFeatureExtractor, DualChannelFuser, SkorchCNN
from thyronet.backbones import get_backbone
from thyronet.datasets import make_ptmc_cohort
from thyronet.plugins import get_registry
from thyronet.testing import check_backbone

import thyronet_twostream
from thyronet_twostream import TWOSTREAM_BACKBONES, ViewConcat, build_twostream

TINY = "twostream_test_resnet"
NAMES = sorted(b.name for b in TWOSTREAM_BACKBONES)


def _images(n=8, views=2, size=32, seed=0):
    return np.random.default_rng(seed).random((n, views, size, size), dtype=np.float32)


def _trunk_features(net, image):
    """Pooled trunk features of single views ``(n, H, W)``, computed on their own."""
    normalized = (image[:, None] - net.mean[:, :1]) / net.std[:, :1]  # same for every view
    maps = net.model.trunk.forward_features(normalized)
    return maps.mean(dim=(2, 3))


# -- discovery -------------------------------------------------------------------------
def test_backbones_come_from_the_installed_entry_point():
    backbones = get_registry("backbones")
    for name in NAMES:
        assert backbones.entry(name).plugin == "twostream"
        assert backbones.entry(name).version == metadata.version("thyronet-twostream") == \
            thyronet_twostream.__version__
    assert "resnet101" in backbones


def test_thyronet_plugins_cli_lists_the_plugin():
    code = "from thyronet.cli import main; raise SystemExit(main(['plugins', '--json']))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["twostream"]["version"] == metadata.version("thyronet-twostream")
    assert rows["twostream"]["registers"] == {"backbones": NAMES}


# -- contracts -------------------------------------------------------------------------
def test_tiny_twostream_passes_every_contract_check():
    check_backbone(TINY)


def test_resnet18_trunk_passes_the_contract_for_two_views():
    check_backbone("twostream_resnet18", channels=(2,), check_estimators=False)


@pytest.mark.parametrize(("name", "trunk_features"), [
    ("twostream_resnet101", 2048), ("twostream_resnet50", 2048), ("twostream_resnet18", 512),
    (TINY, 96)])
def test_entries_declare_layer_and_three_view_feature_size(name, trunk_features):
    entry = get_backbone(name)
    assert entry.target_layer_name == "views"
    assert entry.num_features == 3 * trunk_features  # built on the meta device: no weights
    assert entry.preprocessing(2).mean == (0.449, 0.449)


# -- the architecture ------------------------------------------------------------------
def test_views_share_one_trunk_and_features_are_concatenated():
    net = get_backbone(TINY).build_net(in_chans=3).eval()
    x = torch.from_numpy(_images(n=4, views=3))
    with torch.no_grad():
        features = net.forward_features(x)
        assert features.shape == (4, 3 * 96)
        for v in range(3):
            torch.testing.assert_close(features[:, v * 96:(v + 1) * 96],
                                       _trunk_features(net, x[:, v]), rtol=1e-4, atol=1e-5)
        swapped = net.forward_features(x[:, [2, 0, 1]])
    torch.testing.assert_close(swapped, torch.cat([features[:, 192:], features[:, :192]], 1),
                               rtol=1e-4, atol=1e-5)
    assert sum(isinstance(m, torch.nn.Conv2d) and m.in_channels == 1
               for m in net.modules()) == 1  # one trunk, one 1-channel stem


def test_view_count_mismatch_is_a_clear_error():
    net = build_twostream(in_chans=2, trunk="test_resnet")
    with pytest.raises(ValueError, match=r"built for 2 view\(s\).*shape \(1, 3, 32, 32\)"):
        net(torch.zeros(1, 3, 32, 32))


def test_view_concat_keeps_patients_apart():
    maps = torch.arange(4 * 2 * 1 * 1, dtype=torch.float32).reshape(4, 2, 1, 1)  # 2 pats x 2
    out = ViewConcat(2)(maps)
    assert out[:, :, 0, 0].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]


# -- with thyronet's estimators ----------------------------------------------------------
def test_skorchcnn_deep_features_and_gradcam_on_fused_cohort():
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cohort = make_ptmc_cohort(n_patients=16, image_size=32, random_state=0)
    images = DualChannelFuser(image_size=32).fit_transform(cohort)
    y = cohort["clnm"].to_numpy()
    cnn = SkorchCNN(TINY, max_epochs=2, batch_size=8, validation_fraction=None,
                    early_stopping=False, device="cpu", precision="fp32", random_state=0,
                    verbose=0).fit(images, y)
    assert cnn.feature_dim_ == 2 * 96 and cnn.predict_proba(images).shape == (16, 2)
    assert not hasattr(clone(cnn), "net_")

    features = DeepFeatureExtractor(FrozenEstimator(cnn), precision="fp32").fit(images).transform(
        images)
    assert features.shape == (16, 192)
    net = cnn.net_.module_.eval()
    with torch.no_grad():
        per_view = [_trunk_features(net, torch.from_numpy(images[:, v])) for v in range(2)]
    np.testing.assert_allclose(features, torch.cat(per_view, 1).numpy(), rtol=1e-4, atol=1e-5)

    target = net.gradcam_target()
    assert isinstance(target, ViewConcat)
    with GradCAM(model=net, target_layers=[target]) as cam:
        maps = cam(input_tensor=torch.from_numpy(images[:4]),
                   targets=[ClassifierOutputTarget(0)] * 4)
    assert maps.shape == (4, 32, 32) and np.all(np.isfinite(maps))


def test_saved_weights_reload_and_initialise_another_view_count(tmp_path):
    X, y = _images(n=8, views=2), np.arange(8) % 2
    cnn = SkorchCNN(TINY, max_epochs=1, batch_size=4, validation_fraction=None,
                    early_stopping=False, device="cpu", random_state=0, verbose=0).fit(X, y)
    path = cnn.save_weights(tmp_path / "twostream.safetensors")
    again = SkorchCNN(TINY, device="cpu", verbose=0).load_weights(path)
    np.testing.assert_allclose(again.predict_proba(X), cnn.predict_proba(X), atol=1e-6)

    saved = cnn.net_.module_.model.state_dict()
    three = build_twostream(in_chans=3, trunk="test_resnet", pretrained=str(path))
    got = three.state_dict()
    assert all(torch.equal(got[k], v) for k, v in saved.items() if k.startswith("trunk."))
    assert got["fc.weight"].shape == (1, 3 * 96)  # head of another size: freshly initialised
    two = build_twostream(in_chans=2, trunk="test_resnet", pretrained=str(path))
    assert torch.equal(two.state_dict()["fc.weight"], saved["fc.weight"])


def test_trunk_only_weights_file_is_adapted_to_one_channel(tmp_path):
    torch.manual_seed(3)
    rgb = timm.create_model("test_resnet", num_classes=10)
    path = tmp_path / "test_resnet.pth"
    torch.save(rgb.state_dict(), path)
    net = build_twostream(in_chans=2, trunk="test_resnet", pretrained=path)
    trunk = net.trunk.state_dict()
    assert torch.equal(trunk["layer1.0.conv1.weight"], rgb.state_dict()["layer1.0.conv1.weight"])
    stem = "conv1.0.weight" if "conv1.0.weight" in trunk else "conv1.weight"
    assert trunk[stem].shape[1] == 1
    torch.testing.assert_close(trunk[stem][:, 0], rgb.state_dict()[stem].sum(dim=1))


def test_weights_of_another_trunk_are_rejected_by_name(tmp_path):
    other = build_twostream(in_chans=2, trunk="resnet18")
    path = tmp_path / "resnet18_twostream.pth"
    torch.save(other.state_dict(), path)
    with pytest.raises(ValueError, match=r"does not fit this two-stream network; .*trunk"):
        build_twostream(in_chans=2, trunk="test_resnet", pretrained=path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_twostream(in_chans=2, trunk="test_resnet", pretrained=tmp_path / "none.pth")
