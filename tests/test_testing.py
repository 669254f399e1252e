"""The plugin contract checks: built-ins pass them, and each check catches a broken entry."""

import functools
import importlib
import sys
import textwrap

import numpy as np
import pytest
import timm
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.svm import SVC

from thyronet import DualChannelFuser
from thyronet._builtins.classifiers import logistic_regression
from thyronet._builtins.fusions import BUILTIN_FUSIONS
from thyronet.backbones import BUILTIN_BACKBONES, Backbone
from thyronet.fusion import FusionStrategy
from thyronet.hookspecs import hookimpl
from thyronet.plugins import get_plugin_manager, get_registry, use_plugin_manager
from thyronet.testing import (
    check_backbone,
    check_classifier,
    check_fusion,
    check_plugin,
    installed_plugins,
)

# ---------------------------------------------------------------------------------------
# built-ins keep the contracts
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [s.name for s in BUILTIN_FUSIONS])
def test_builtin_fusions_pass(name):
    check_fusion(name)


@pytest.mark.parametrize("name", ["logistic_regression", "lightgbm", "naive_bayes"])
def test_builtin_classifiers_pass(name):
    check_classifier(name)


def test_every_builtin_classifier_is_checked():
    assert set(get_registry("classifiers")) == {"logistic_regression", "lightgbm", "naive_bayes"}


def test_tiny_builtin_backbone_passes_everything():
    check_backbone("test_resnet")


def test_resnet18_passes_without_pretrained_weights():
    check_backbone("resnet18", channels=(2,), check_estimators=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", [b.name for b in BUILTIN_BACKBONES if b.name not in {"test_resnet", "resnet18"}]
)
def test_other_builtin_backbones_pass(name):
    check_backbone(name, channels=(2,), check_pretrained=False, check_estimators=False)


def test_check_plugin_runs_every_entry_of_a_builtin():
    checked = check_plugin("thyronet._builtins.fusions")
    assert checked == [("fusions", s.name) for s in sorted(BUILTIN_FUSIONS, key=lambda s: s.name)]
    with pytest.raises(AssertionError, match="'no_such_plugin' is not loaded"):
        check_plugin("no_such_plugin")


# ---------------------------------------------------------------------------------------
# broken fusion strategies
# ---------------------------------------------------------------------------------------
def _identity(views):
    return views


def _float64(views):
    return views.astype(np.float64)


def _noisy(views):
    return views + np.random.default_rng().random(views.shape, dtype=np.float32)


def _batch_normalised(views):
    return views / views.max()


def _in_place(views):
    views *= 2
    return views


def _second_view(views):
    return views[:, [1]]


def _constant(views):
    return np.zeros_like(views[:, :1])


BROKEN_FUSIONS = [
    (FusionStrategy("wrong_channels", _identity, channels=3), "declares 3 channel"),
    (FusionStrategy("double", _float64), "dtype float64"),
    (FusionStrategy("noisy", _noisy), "not deterministic"),
    (FusionStrategy("batchnorm", _batch_normalised), "fused differently alone than in a batch"),
    (FusionStrategy("in_place", _in_place), "modified its input in place"),
    (
        FusionStrategy("one_view", _second_view, channels=1, min_views=1),
        "fuse raised IndexError for 1 view",
    ),
    (FusionStrategy("lambda", lambda views: views), "does not pickle"),
    (FusionStrategy("limits", _identity, min_views=3, max_views=2), "max_views must be"),
    (FusionStrategy("constant", _constant, channels=1), "same images for different views"),
    (FusionStrategy("bad_select", _identity, channels=1, select=("a", "a")), "names a view twice"),
]


@pytest.mark.parametrize(
    ("strategy", "message"), BROKEN_FUSIONS, ids=[s.name for s, _ in BROKEN_FUSIONS]
)
def test_check_fusion_catches(strategy, message):
    with pytest.raises(AssertionError, match=f"fusion '{strategy.name}': .*{message}"):
        check_fusion(strategy)


def test_check_fusion_accepts_a_good_unregistered_strategy():
    check_fusion(FusionStrategy("plain", _identity, min_views=2, max_views=4))


def test_check_fusion_catches_a_name_mismatch_and_unknown_names():
    class Misnamed:
        @hookimpl
        def thyronet_register_fusions(self, register):
            register("alias", FusionStrategy("original", _identity))

    pm = get_plugin_manager()
    pm.register(Misnamed(), name="misnamed")
    with (
        use_plugin_manager(pm),
        pytest.raises(AssertionError, match="registered under 'alias' but"),
    ):
        check_fusion("alias")
    with pytest.raises(AssertionError, match="'nope' is not registered; registered fusions: "):
        check_fusion("nope")


def test_check_fusion_refuses_a_name_a_builtin_already_has():
    with pytest.raises(
        AssertionError,
        match=r"'stack' is already registered by plugin "
        r"'thyronet\._builtins\.fusions'",
    ):
        check_fusion(FusionStrategy("stack", _noisy))


# ---------------------------------------------------------------------------------------
# broken backbones
# ---------------------------------------------------------------------------------------
def _rgb_only(*, in_chans, num_classes, pretrained, **kwargs):
    return timm.create_model("test_resnet", in_chans=3, num_classes=num_classes)


def _ignores_weights(*, in_chans, num_classes, pretrained, **kwargs):
    return timm.create_model("test_resnet", in_chans=in_chans, num_classes=num_classes)


def _fixed_seed(*, in_chans, num_classes, pretrained, **kwargs):
    import torch

    torch.manual_seed(0)
    return timm.create_model("test_resnet", in_chans=in_chans, num_classes=num_classes)


BROKEN_BACKBONES = [
    (
        Backbone("bad_dim", timm_name="test_resnet", feature_dim=95, gradcam_layer="layer4"),
        "declares feature_dim=95 but the model built for 2 channel",
    ),
    (
        Backbone("bad_layer", timm_name="test_resnet", gradcam_layer="layer9"),
        "Grad-CAM target layer 'layer9' does not exist",
    ),
    (
        Backbone("flat_layer", timm_name="test_resnet", gradcam_layer="fc"),
        "Grad-CAM target layer 'fc' outputs \\(2, 1\\)",
    ),
    (
        Backbone("rgb_only", factory=_rgb_only, feature_dim=96, gradcam_layer="layer4"),
        "forward failed for 2 channel",
    ),
    (
        Backbone(
            "lambda", factory=lambda **kw: _rgb_only(**kw), feature_dim=96, gradcam_layer="layer4"
        ),
        "entry does not pickle",
    ),
]


@pytest.mark.parametrize(
    ("backbone", "message"), BROKEN_BACKBONES, ids=[b.name for b, _ in BROKEN_BACKBONES]
)
def test_check_backbone_catches(backbone, message):
    with pytest.raises(AssertionError, match=f"backbone '{backbone.name}': .*{message}"):
        check_backbone(backbone, channels=(2,), check_pretrained=False, check_estimators=False)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (_ignores_weights, "pretrained=<weights file> did not load the file"),
        (_fixed_seed, "pretrained=False gives the same weights under two seeds"),
    ],
)
def test_check_backbone_catches_an_ignored_pretrained_flag(factory, message):
    backbone = Backbone("careless", factory=factory, feature_dim=96, gradcam_layer="layer4")
    with pytest.raises(AssertionError, match=message):
        check_backbone(backbone, channels=(1,), check_estimators=False)


def test_check_backbone_runs_an_unregistered_backbone_through_the_estimators():
    good = Backbone(
        "tiny_unregistered", timm_name="test_resnet", feature_dim=96, gradcam_layer="layer4"
    )
    check_backbone(good, channels=(2,), check_pretrained=False)
    # the temporary registration is gone afterwards
    assert "tiny_unregistered" not in get_registry("backbones")


# ---------------------------------------------------------------------------------------
# broken classifiers
# ---------------------------------------------------------------------------------------
_SHARED = LogisticRegression()


def _shared():
    return _SHARED


def _prefitted():
    return LogisticRegression().fit([[0.0], [1.0]], [0, 1])


BROKEN_CLASSIFIERS = [
    (_shared, "returned the same object twice"),
    (LinearRegression, "not a scikit-learn classifier"),
    (SVC, "has no predict_proba"),
    (_prefitted, "returned a fitted classifier"),
    (
        functools.partial(RandomForestClassifier, n_estimators=5),
        "two fits on the same data give different probabilities",
    ),
    (DummyClassifier, "training AUC 0.500 on an easy problem"),
    ("not_a_classifier", "is not registered; registered classifiers: lightgbm"),
]


@pytest.mark.parametrize(
    ("factory", "message"),
    BROKEN_CLASSIFIERS,
    ids=["shared", "regressor", "no_proba", "fitted", "random", "dummy", "unknown"],
)
def test_check_classifier_catches(factory, message):
    with pytest.raises(AssertionError, match=message):
        check_classifier(factory)


def test_check_classifier_accepts_factories_and_a_baseline_when_asked():
    check_classifier(logistic_regression)
    check_classifier(DummyClassifier, min_train_auc=None)


# ---------------------------------------------------------------------------------------
# installed_plugins / use_plugin_manager
# ---------------------------------------------------------------------------------------
PLUGIN = """
    import numpy as np
    from thyronet.fusion import FusionStrategy
    from thyronet.hookspecs import hookimpl

    def _difference(views):
        return views[:, :1] - views[:, 1:2]

    @hookimpl
    def thyronet_register_fusions(register):
        register("difference", FusionStrategy("difference", _difference, channels=1,
                                              min_views=2, max_views=2))
"""


def _install(tmp_path, monkeypatch, name, source, dist_name=None, entry_points=True):
    """A real installed distribution (dist-info + module) with a `thyronet` entry point."""
    dist_name = dist_name or name
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist_name.replace('-', '_')}-0.4.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.4.2\n")
    if entry_points:
        (info / "entry_points.txt").write_text(f"[thyronet]\n{name} = {name}\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    monkeypatch.delitem(sys.modules, name, raising=False)


def test_installed_plugins_loads_entry_points_inside_the_block_only(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, "thyronet_difference", PLUGIN, dist_name="thyronet-difference")
    assert "difference" not in get_registry("fusions")  # thyronet's test run: no leak
    with installed_plugins("thyronet-difference") as pm:
        assert pm.has_plugin("thyronet_difference")
        assert get_registry("fusions").entry("difference").version == "0.4.2"
        fused = DualChannelFuser(
            views=("a", "b"), strategy="difference", image_size=8, normalize="none"
        ).fit_transform(np.ones((2, 2, 8, 8)))
        assert fused.shape == (2, 1, 8, 8) and not fused.any()
        check_fusion("difference")
        assert check_plugin("thyronet_difference") == [("fusions", "difference")]
    assert "difference" not in get_registry("fusions")


def test_installed_plugins_loads_only_the_named_distributions(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, "thyronet_difference", PLUGIN, dist_name="thyronet-difference")
    _install(tmp_path, monkeypatch, "thyronet_other", PLUGIN.replace('"difference"', '"other"'))
    with installed_plugins("thyronet-difference") as pm:
        assert pm.has_plugin("thyronet_difference") and not pm.has_plugin("thyronet_other")
        assert "other" not in get_registry("fusions")
    with installed_plugins() as pm:
        assert pm.has_plugin("thyronet_difference") and pm.has_plugin("thyronet_other")


def test_installed_plugins_names_what_is_missing(tmp_path, monkeypatch):
    with (
        pytest.raises(AssertionError, match="'thyronet-absent' is not installed"),
        installed_plugins("thyronet-absent"),
    ):
        pass
    _install(tmp_path, monkeypatch, "thyronet_noep", PLUGIN, entry_points=False)
    with (
        pytest.raises(AssertionError, match="declares no entry point in the group 'thyronet'"),
        installed_plugins("thyronet_noep"),
    ):
        pass


def test_installed_plugins_reports_a_blocked_plugin(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, "thyronet_blocked", PLUGIN)
    monkeypatch.setenv("THYRONET_DISABLE_PLUGINS", "thyronet_blocked")
    with (
        pytest.raises(
            AssertionError,
            match=r"'thyronet_blocked'.*blocked by "
            r"THYRONET_DISABLE_PLUGINS",
        ),
        installed_plugins("thyronet_blocked"),
    ):
        pass


def test_use_plugin_manager_restores_the_previous_default():
    before = get_registry("fusions")
    pm = get_plugin_manager(builtins=False, load_entrypoints=False)
    with use_plugin_manager(pm) as active:
        assert active is pm
        assert len(get_registry("fusions")) == 0
        with pytest.raises(ValueError, match="unknown fusion 'stack'"):
            DualChannelFuser().fit([[1], [1]])
    assert get_registry("fusions") is before
