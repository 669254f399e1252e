"""The plugin manager: built-ins, entry points, blocking and broken plugins."""

import importlib
import sys
import textwrap
import warnings

import numpy as np
import pluggy
import pytest

from thyronet import DualChannelFuser, hookspecs
from thyronet.cli import main
from thyronet.plugins import (
    DISABLE_ENV,
    PluginWarning,
    UnknownEntryError,
    build_registry,
    describe_plugins,
    get_plugin_manager,
    use_plugin_manager,
)

BUILTIN_FUSIONS = {"stack", "stack3", "longitudinal", "transverse", "mean", "mosaic"}


def _install_plugin(tmp_path, monkeypatch, name, source, version="1.2.3"):
    """Make a real installed distribution (dist-info + module) with a `thyronet` entry point."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[thyronet]\n{name} = {name}\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    monkeypatch.delitem(sys.modules, name, raising=False)


def _test_plugins(tmp_path):
    """Entry-point names of the plugins `_install_plugin` made: load those, no installed one."""
    return [info.name.split("-")[0] for info in (tmp_path / "site").glob("*.dist-info")]


GOOD = """
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


def test_builtins_register_through_the_manager():
    pm = get_plugin_manager()
    assert "thyronet._builtins.fusions" in dict(pm.list_name_plugin())
    registry = build_registry("fusions", pm)
    assert set(registry) == BUILTIN_FUSIONS
    assert registry.entry("stack").plugin == "thyronet._builtins.fusions"


def test_factory_returns_fresh_managers():
    assert get_plugin_manager() is not get_plugin_manager()


def test_unknown_name_lists_registered():
    registry = build_registry("fusions", get_plugin_manager())
    with pytest.raises(UnknownEntryError, match="unknown fusion 'x'; registered fusions: long"):
        registry["x"]


def test_entry_point_plugin_is_discovered_and_used(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, "thyronet_difference", GOOD)
    pm = get_plugin_manager(load_entrypoints=_test_plugins(tmp_path))
    registry = build_registry("fusions", pm)
    assert registry.entry("difference").plugin == "thyronet_difference"
    assert registry.entry("difference").version == "1.2.3"
    # the default manager (used by the fuser) skips entry points in thyronet's test run
    with pytest.raises(ValueError, match="unknown fusion 'difference'"):
        DualChannelFuser(strategy="difference").fit([[1], [1]])


def test_installed_plugins_do_not_leak_into_tests(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, "thyronet_difference", GOOD)
    assert "thyronet_difference" not in dict(get_plugin_manager().list_name_plugin())


def test_disable_env_blocks_plugins(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, "thyronet_difference", GOOD)
    monkeypatch.setenv(DISABLE_ENV, "thyronet_difference, thyronet._builtins.fusions")
    pm = get_plugin_manager(load_entrypoints=_test_plugins(tmp_path))
    assert len(build_registry("fusions", pm)) == 0


def test_plugin_failing_to_import_warns_and_rest_works(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, "thyronet_broken", "raise RuntimeError('boom')\n")
    with pytest.warns(PluginWarning, match=r"'thyronet_broken'.*failed to import.*boom"):
        pm = get_plugin_manager(load_entrypoints=_test_plugins(tmp_path))
    assert set(build_registry("fusions", pm)) == BUILTIN_FUSIONS


def test_hook_without_spec_is_rejected_loudly(tmp_path, monkeypatch):
    source = """
        from thyronet.hookspecs import hookimpl

        @hookimpl
        def thyronet_register_fusion(register):  # typo: no such hook
            pass
    """
    _install_plugin(tmp_path, monkeypatch, "thyronet_typo", source)
    with pytest.warns(PluginWarning, match=r"'thyronet_typo'.*invalid.*thyronet_register_fusion"):
        pm = get_plugin_manager(load_entrypoints=_test_plugins(tmp_path))
    assert not pm.has_plugin("thyronet_typo")


def test_duplicate_and_wrong_type_warn_naming_plugins():
    class Duplicate:
        @hookspecs.hookimpl
        def thyronet_register_fusions(self, register):
            from thyronet._builtins.fusions import BUILTIN_FUSIONS as builtins

            register("stack", builtins[1])
            register("not_a_strategy", object())

    pm = get_plugin_manager()
    pm.register(Duplicate(), name="dupe_plugin")
    with pytest.warns(PluginWarning) as record:
        registry = build_registry("fusions", pm)
    messages = " | ".join(str(w.message) for w in record)
    assert (
        "'stack' is registered by both plugin 'thyronet._builtins.fusions' and plugin "
        "'dupe_plugin'" in messages
    )
    assert "'dupe_plugin' failed" in messages and "must be a FusionStrategy" in messages
    assert registry.entry("stack").plugin == "thyronet._builtins.fusions"


def test_hook_raising_warns_and_others_still_register():
    class Raising:
        @hookspecs.hookimpl
        def thyronet_register_fusions(self, register):
            raise ZeroDivisionError("bad plugin")

    pm = get_plugin_manager()
    pm.register(Raising(), name="raising_plugin")
    with pytest.warns(PluginWarning, match="'raising_plugin' failed.*ZeroDivisionError"):
        registry = build_registry("fusions", pm)
    assert set(registry) == BUILTIN_FUSIONS


def test_check_pending_catches_unknown_hooks_in_builtins():
    class Unknown:
        @hookspecs.hookimpl
        def thyronet_no_such_hook(self):
            pass

    pm = get_plugin_manager()
    pm.register(Unknown())
    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()


def test_describe_and_cli_list_builtin_fusions(capsys):
    rows = {row["name"]: row for row in describe_plugins(get_plugin_manager())}
    assert set(rows["thyronet._builtins.fusions"]["registers"]["fusions"]) == BUILTIN_FUSIONS
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "thyronet._builtins.fusions" in out
    assert "fusions: longitudinal, mean, mosaic, stack, stack3, transverse" in out


# ---------------------------------------------------------------------------------------
# one test per hook specification (test_plugin_hooks_have_tests checks that they exist)
# ---------------------------------------------------------------------------------------
def _hook_names() -> list[str]:
    return sorted(
        name
        for name in dir(hookspecs)
        if name.startswith("thyronet_") and hasattr(getattr(hookspecs, name), "thyronet_spec")
    )


def test_hook_thyronet_register_fusions(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, "thyronet_difference", GOOD)
    with use_plugin_manager(get_plugin_manager(load_entrypoints=_test_plugins(tmp_path))) as pm:
        fuser = DualChannelFuser(
            views=("a", "b"), strategy="difference", image_size=8, normalize="none"
        )
        views = np.stack([np.full((3, 8, 8), 3.0), np.ones((3, 8, 8))], axis=1)
        fused = fuser.fit_transform(views)
    rows = {row["name"]: row for row in describe_plugins(pm)}
    assert fused.shape == (3, 1, 8, 8) and np.all(fused == 2.0)
    assert rows["thyronet_difference"] == {
        "name": "thyronet_difference",
        "version": "1.2.3",
        "registers": {"fusions": ["difference"]},
    }


BACKBONE_PLUGIN = """
    from thyronet.backbones import Backbone
    from thyronet.hookspecs import hookimpl

    @hookimpl
    def thyronet_register_backbones(register):
        register("tiny_plugin_net", Backbone("tiny_plugin_net", timm_name="test_resnet",
                                             feature_dim=96, gradcam_layer="layer4"))
"""


def test_hook_thyronet_register_backbones(tmp_path, monkeypatch):
    import torch

    from thyronet.backbones import get_backbone
    from thyronet.plugins import get_registry

    _install_plugin(tmp_path, monkeypatch, "thyronet_tinynet", BACKBONE_PLUGIN)
    with use_plugin_manager(get_plugin_manager(load_entrypoints=_test_plugins(tmp_path))):
        assert get_registry("backbones").entry("tiny_plugin_net").plugin == "thyronet_tinynet"
        net = get_backbone("tiny_plugin_net").build_net(in_chans=2).eval()
        assert net.forward_features(torch.zeros(1, 2, 32, 32)).shape == (1, 96)
    assert "tiny_plugin_net" not in get_registry("backbones")


CLASSIFIER_PLUGIN = """
    import functools
    from sklearn.tree import DecisionTreeClassifier
    from thyronet.hookspecs import hookimpl

    @hookimpl
    def thyronet_register_classifiers(register):
        register("stump", functools.partial(DecisionTreeClassifier, max_depth=1,
                                            random_state=0))
"""


def test_hook_thyronet_register_classifiers(tmp_path, monkeypatch):
    from thyronet import ClassifierSelector

    _install_plugin(tmp_path, monkeypatch, "thyronet_stump", CLASSIFIER_PLUGIN)
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    X = rng.normal(size=(60, 3)) + 2.0 * y[:, None]
    with use_plugin_manager(get_plugin_manager(load_entrypoints=_test_plugins(tmp_path))):
        model = ClassifierSelector(cv=3).fit(X, y)
    assert "stump" in model.scores_.index
    assert {"logistic_regression", "lightgbm", "naive_bayes"} <= set(model.scores_.index)


def test_plugin_hooks_have_tests():
    """Every hook specification has a ``test_hook_<name>`` here (datasette's pattern)."""
    hooks = _hook_names()
    assert hooks == [
        "thyronet_register_backbones",
        "thyronet_register_classifiers",
        "thyronet_register_fusions",
    ]
    untested = [h for h in hooks if f"test_hook_{h}" not in globals()]
    assert not untested, f"hook specification(s) without a test_hook_<name> test: {untested}"


def test_plugin_hooks_are_documented():
    """Every hook specification has a section in docs/plugins.md naming its arguments."""
    import inspect
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    pattern = re.compile(r"^### `(thyronet_\w+)\((.*?)\)`\n(.*?)(?=^##|\Z)", re.M | re.S)
    sections = {name: (args, body) for name, args, body in pattern.findall(text)}
    for hook in _hook_names():
        assert hook in sections, f"docs/plugins.md has no '### `{hook}(...)`' section"
        args, body = sections[hook]
        params = list(inspect.signature(getattr(hookspecs, hook)).parameters)
        assert [a.strip() for a in args.split(",") if a.strip()] == params, (
            f"docs/plugins.md: the heading of {hook} must list its arguments {params}"
        )
        assert len(body.split()) >= 30, f"docs/plugins.md: the section of {hook} is too short"
    undocumented_extra = sorted(set(sections) - set(_hook_names()))
    assert not undocumented_extra, f"docs/plugins.md documents unknown hooks {undocumented_extra}"


# ---------------------------------------------------------------------------------------
# hygiene: broken installed plugins warn, name themselves, and thyronet keeps working
# ---------------------------------------------------------------------------------------
MIXED = """
    from thyronet._builtins.fusions import BUILTIN_FUSIONS
    from thyronet.fusion import FusionStrategy
    from thyronet.hookspecs import hookimpl

    def _first(views):
        return views[:, :1]

    @hookimpl
    def thyronet_register_fusions(register):
        register("stack", BUILTIN_FUSIONS[-1])           # duplicate of a built-in
        register("first_view", FusionStrategy("first_view", _first, channels=1))

    @hookimpl
    def thyronet_register_backbones(register):
        register("not_a_backbone", "resnet18")            # wrong type
"""


def test_broken_installed_plugins_warn_by_name_and_the_rest_works(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, "thyronet_mixed", MIXED)
    _install_plugin(tmp_path, monkeypatch, "thyronet_explodes", "raise ImportError('nope')\n")
    with pytest.warns(PluginWarning) as record:
        pm = get_plugin_manager(load_entrypoints=_test_plugins(tmp_path))
        with use_plugin_manager(pm):
            from thyronet.plugins import get_registry

            fusions, backbones = get_registry("fusions"), get_registry("backbones")
            fused = DualChannelFuser(image_size=8, normalize="none").fit_transform(
                np.ones((2, 2, 8, 8))
            )
    messages = [str(w.message) for w in record]
    assert any(
        "'thyronet_explodes'" in m and "failed to import" in m and "nope" in m for m in messages
    )
    assert any(
        "'stack' is registered by both plugin 'thyronet._builtins.fusions' and plugin "
        "'thyronet_mixed'" in m
        for m in messages
    )
    assert any(
        "'thyronet_mixed' failed in thyronet_register_backbones" in m
        and "must be a Backbone, got str" in m
        for m in messages
    )
    assert fusions.entry("stack").plugin == "thyronet._builtins.fusions"
    assert fusions.entry("first_view").plugin == "thyronet_mixed"
    assert "not_a_backbone" not in backbones and "resnet101" in backbones
    assert fused.shape == (2, 2, 8, 8)  # the built-in `stack`, not the plugin's mosaic


def test_hook_with_arguments_no_spec_has_is_rejected(tmp_path, monkeypatch):
    source = """
        from thyronet.hookspecs import hookimpl

        @hookimpl
        def thyronet_register_fusions(register, config):
            pass
    """
    _install_plugin(tmp_path, monkeypatch, "thyronet_extra_arg", source)
    with pytest.warns(PluginWarning, match=r"(?s)'thyronet_extra_arg'.*invalid.*{'config'}"):
        pm = get_plugin_manager(load_entrypoints=_test_plugins(tmp_path))
    assert not pm.has_plugin("thyronet_extra_arg")


def test_hook_without_hookimpl_marker_warns(tmp_path, monkeypatch):
    source = """
        def thyronet_register_fusions(register):  # forgot @hookimpl
            raise AssertionError("never called")
    """
    _install_plugin(tmp_path, monkeypatch, "thyronet_unmarked", source)
    with pytest.warns(
        PluginWarning,
        match=r"'thyronet_unmarked'.*defines "
        r"thyronet_register_fusions without @",
    ):
        pm = get_plugin_manager(load_entrypoints=_test_plugins(tmp_path))
    assert set(build_registry("fusions", pm)) == BUILTIN_FUSIONS


def test_disable_env_blocks_a_builtin_kind_and_keeps_the_others(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "thyronet._builtins.backbones")
    pm = get_plugin_manager()
    assert len(build_registry("backbones", pm)) == 0
    assert set(build_registry("fusions", pm)) == BUILTIN_FUSIONS
    assert "thyronet._builtins.backbones" not in {row["name"] for row in describe_plugins(pm)}


def test_installed_distributions_do_not_leak_into_thyronets_tests():
    """The example plugins CI installs (and any other) stay out of this test run."""
    from importlib import metadata

    from thyronet.plugins import default_plugin_manager, get_registry

    pm = default_plugin_manager()
    for ep in metadata.entry_points(group="thyronet"):
        assert not pm.has_plugin(ep.name), f"installed plugin {ep.name!r} leaked into the tests"
    plugins = {
        e.plugin
        for kind in ("fusions", "backbones", "classifiers")
        for e in get_registry(kind).entries.values()
    }
    assert plugins == {
        "thyronet._builtins.fusions",
        "thyronet._builtins.backbones",
        "thyronet._builtins.classifiers",
    }


def test_disable_env_with_an_unknown_name_warns_listing_known_names(tmp_path, monkeypatch):
    # An installed entry point that this test run does not load is known, not unknown.
    _install_plugin(tmp_path, monkeypatch, "thyronet_difference", GOOD)
    monkeypatch.setenv(DISABLE_ENV, "thyronet_difference,thyronet._builtins.backbones")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_plugin_manager()
    monkeypatch.setenv(DISABLE_ENV, "fusions, thyronet_difference")
    with pytest.warns(PluginWarning, match=r"unknown plugin\(s\) 'fusions'.*known plugins:") as rec:
        pm = get_plugin_manager()
    message = str(rec[0].message)
    assert "thyronet._builtins.fusions" in message and "thyronet_difference" in message
    assert "stack" in build_registry("fusions", pm)
