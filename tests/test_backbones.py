"""Backbone registry, building, preprocessing and pretrained weights."""

from __future__ import annotations

import huggingface_hub.constants
import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.models import adapt_input_conv

from thyronet.backbones import (
    BUILTIN_BACKBONES,
    Backbone,
    BackboneNet,
    PretrainedWeightsError,
    WeightsMismatchError,
    available_backbones,
    get_backbone,
)
from thyronet.hookspecs import hookimpl
from thyronet.plugins import (
    PluginWarning,
    UnknownEntryError,
    build_registry,
    get_plugin_manager,
    get_registry,
)


def tiny_factory(in_chans, num_classes, pretrained, **kwargs):
    """A non-timm-name backbone factory (module level, so models pickle)."""
    return timm.create_model("test_convnext", in_chans=in_chans, num_classes=num_classes, **kwargs)


# -- registry -----------------------------------------------------------------------------
def test_builtins_are_registered_by_the_builtin_plugin():
    registry = get_registry("backbones")
    for name in (
        "resnet101",
        "resnet18",
        "resnet50",
        "efficientnet_b0",
        "convnext_tiny",
        "test_resnet",
    ):
        assert name in registry
        assert registry.entry(name).plugin == "thyronet._builtins.backbones"
    assert available_backbones() == sorted(registry)


@pytest.mark.parametrize("entry", BUILTIN_BACKBONES, ids=lambda b: b.name)
def test_declared_facts_match_the_built_model(entry):
    with torch.device("meta"):
        model = entry.build(in_chans=2, num_classes=1)
    assert model.num_features == entry.num_features
    # the Grad-CAM layer exists and is the last feature stage or after it
    assert isinstance(model.get_submodule(entry.target_layer_name), torch.nn.Module)
    pre = entry.preprocessing(2)
    assert len(pre.mean) == len(pre.std) == 2
    assert all(s > 0 for s in pre.std)


def test_resnet101_is_the_paper_backbone():
    entry = get_backbone("resnet101")
    assert entry.num_features == 2048
    assert entry.target_layer_name == "layer4"
    assert entry.preprocessing(3).input_size == (224, 224)


def test_unknown_backbone_lists_the_registered_ones():
    with pytest.raises(UnknownEntryError, match="unknown backbone 'resnet_9000'") as info:
        get_backbone("resnet_9000")
    message = str(info.value)
    for name in ("resnet101", "test_resnet", "convnext_tiny"):
        assert name in message
    assert "timm.list_models()" in message


def test_any_timm_model_by_name_works_without_registration():
    assert "resnet10t" not in get_registry("backbones")
    entry = get_backbone("resnet10t")
    assert entry.name == "resnet10t"
    assert entry.num_features == 512  # read from timm (meta device)
    assert entry.target_layer_name == "layer4"  # from timm's feature_info


def test_backbone_instance_passes_through():
    entry = Backbone("mine", timm_name="test_resnet")
    assert get_backbone(entry) is entry
    assert entry.architecture == "test_resnet"


def test_third_party_plugin_registers_a_backbone():
    class Plugin:
        @hookimpl
        def thyronet_register_backbones(self, register):
            register(
                "tiny_convnext",
                Backbone("tiny_convnext", factory=tiny_factory, gradcam_layer="stages.3"),
            )
            register("not_a_backbone", object())

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Plugin(), name="tiny-plugin")
    with pytest.warns(PluginWarning, match="must be a Backbone"):
        registry = build_registry("backbones", pm)
    assert "not_a_backbone" not in registry
    entry = registry["tiny_convnext"]
    assert registry.entry("tiny_convnext").plugin == "tiny-plugin"
    assert "test_resnet" in registry  # built-ins stay
    net = entry.build_net(in_chans=2)
    assert net.forward_features(torch.zeros(2, 2, 32, 32)).shape == (2, entry.num_features)
    assert net.gradcam_target() is net.model.stages[3]


# -- preprocessing ------------------------------------------------------------------------
def test_preprocessing_for_any_channel_count():
    entry = get_backbone("resnet18")
    rgb_mean, rgb_std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    three = entry.preprocessing(3)
    assert three.mean == pytest.approx(rgb_mean) and three.std == pytest.approx(rgb_std)
    for c in (1, 2, 4):
        pre = entry.preprocessing(c)
        assert pre.mean == pytest.approx((np.mean(rgb_mean),) * c)
        assert pre.std == pytest.approx((np.mean(rgb_std),) * c)
    assert get_backbone("test_resnet").preprocessing(2).input_size == (160, 160)
    custom = Backbone(
        "x", timm_name="test_resnet", mean=(0.1, 0.2), std=(0.3, 0.4), input_size=(64, 64)
    )
    assert custom.preprocessing(2).mean == (0.1, 0.2)
    assert custom.preprocessing(2).input_size == (64, 64)
    with pytest.raises(ValueError, match="in_chans must be >= 1"):
        entry.preprocessing(0)


def test_backbone_net_normalises_then_runs_the_model():
    torch.manual_seed(0)
    net = get_backbone("test_resnet").build_net(in_chans=2).eval()
    assert isinstance(net, BackboneNet)
    x = torch.rand(3, 2, 32, 32)
    expected = net.model((x - 0.5) / 0.5)
    torch.testing.assert_close(net(x), expected)
    features = net.forward_features(x)
    assert features.shape == (3, 96)
    # the features feed the head: head(features) are the logits
    torch.testing.assert_close(net.model.get_classifier()(features), expected)
    assert net.gradcam_target() is net.model.layer4
    assert {id(p) for p in net.head_parameters()} == {id(p) for p in net.model.fc.parameters()}


@pytest.mark.parametrize("in_chans", [1, 2, 3])
def test_build_for_channel_counts(in_chans):
    model = get_backbone("test_resnet").build(in_chans=in_chans, num_classes=1)
    assert model(torch.zeros(2, in_chans, 32, 32)).shape == (2, 1)


# -- pretrained weights -------------------------------------------------------------------
@pytest.fixture
def rgb_checkpoint(tmp_path):
    torch.manual_seed(1)
    source = timm.create_model("test_resnet", in_chans=3)  # 1000-class ImageNet-like head
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    pth = tmp_path / "test_resnet.pth"
    torch.save(state, pth)
    safetensors = tmp_path / "test_resnet.safetensors"
    save_file(state, str(safetensors))
    return state, {"pth": pth, "safetensors": safetensors}


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_local_weights_adapt_3_to_2_channels_and_reproduce_the_saved_weights(rgb_checkpoint, kind):
    state, files = rgb_checkpoint
    model = get_backbone("test_resnet").build(in_chans=2, num_classes=1, pretrained=files[kind])
    loaded = model.state_dict()
    first = "conv1.0.weight"
    assert loaded[first].shape == (16, 2, 3, 3)
    # timm's own adaptation: RGB filters repeated and rescaled by 3/2
    torch.testing.assert_close(loaded[first], adapt_input_conv(2, state[first]), rtol=0, atol=0)
    assert not torch.equal(loaded[first][:, 0], state[first][:, 0])
    for key, value in state.items():
        if key == first or key.startswith("fc."):
            continue
        assert torch.equal(loaded[key], value), key
    # the 1000-class head does not fit one logit: it is freshly initialised
    assert loaded["fc.weight"].shape == (1, 96)


def test_local_weights_with_same_head_keep_it(tmp_path):
    torch.manual_seed(2)
    source = timm.create_model("test_resnet", in_chans=2, num_classes=1)
    torch.save(source.state_dict(), tmp_path / "w.pth")
    model = get_backbone("test_resnet").build(
        in_chans=2, num_classes=1, pretrained=tmp_path / "w.pth"
    )
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_weights_of_another_architecture_are_rejected_naming_keys(tmp_path):
    other = timm.create_model("test_efficientnet")
    torch.save(other.state_dict(), tmp_path / "effnet.pth")
    with pytest.raises(WeightsMismatchError) as info:
        get_backbone("test_resnet").build(in_chans=2, pretrained=tmp_path / "effnet.pth")
    message = str(info.value)
    assert "effnet.pth" in message and "test_resnet" in message
    assert "missing: conv1.0.weight, " in message and "(71 in all)" in message
    assert "unexpected: blocks.0.0.bn1.bias, " in message
    assert "wrong shape: bn1.bias (file (24,), model (32,))" in message


def test_wrong_shape_is_named(tmp_path):
    state = timm.create_model("test_resnet").state_dict()
    state["layer2.0.conv1.weight"] = torch.zeros(3, 3, 3, 3)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(WeightsMismatchError, match=r"wrong shape: layer2\.0\.conv1\.weight"):
        get_backbone("test_resnet").build(in_chans=2, pretrained=tmp_path / "w.pth")


def test_bad_weight_paths(tmp_path):
    entry = get_backbone("test_resnet")
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pth"):
        entry.build(pretrained=tmp_path / "nowhere.pth")
    (tmp_path / "w.txt").write_text("x")
    with pytest.raises(ValueError, match=r"suffix '\.txt'"):
        entry.build(pretrained=tmp_path / "w.txt")
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read weights file"):
        entry.build(pretrained=tmp_path / "broken.pth")
    with pytest.raises(TypeError, match="pretrained must be"):
        entry.build(pretrained=3)


def test_hub_weights_unavailable_explains_the_local_file_route(monkeypatch, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(PretrainedWeightsError) as info:
        get_backbone("test_resnet").build(in_chans=2, pretrained=True)
    message = str(info.value)
    assert "could not load pretrained weights for backbone 'test_resnet'" in message
    assert "timm/test_resnet" in message  # where it looked
    assert "pretrained='weights/model.safetensors'" in message  # what to do instead
