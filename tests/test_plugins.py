"""The plugin manager: built-ins, entry points, blocking and broken plugins."""

import importlib
import sys
import textwrap

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
    assert "thyronet.fusion_strategies" in dict(pm.list_name_plugin())
    registry = build_registry("fusions", pm)
    assert set(registry) == BUILTIN_FUSIONS
    assert registry.entry("stack").plugin == "thyronet.fusion_strategies"


def test_factory_returns_fresh_managers():
    assert get_plugin_manager() is not get_plugin_manager()


def test_unknown_name_lists_registered():
    registry = build_registry("fusions", get_plugin_manager())
    with pytest.raises(UnknownEntryError, match="unknown fusion 'x'; registered fusions: long"):
        registry["x"]


def test_entry_point_plugin_is_discovered_and_used(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, "thyronet_difference", GOOD)
    pm = get_plugin_manager(load_entrypoints=True)
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
    monkeypatch.setenv(DISABLE_ENV, "thyronet_difference, thyronet.fusion_strategies")
    pm = get_plugin_manager(load_entrypoints=True)
    assert len(build_registry("fusions", pm)) == 0


def test_plugin_failing_to_import_warns_and_rest_works(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, "thyronet_broken", "raise RuntimeError('boom')\n")
    with pytest.warns(PluginWarning, match=r"'thyronet_broken'.*failed to import.*boom"):
        pm = get_plugin_manager(load_entrypoints=True)
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
        pm = get_plugin_manager(load_entrypoints=True)
    assert not pm.has_plugin("thyronet_typo")


def test_duplicate_and_wrong_type_warn_naming_plugins():
    class Duplicate:
        @hookspecs.hookimpl
        def thyronet_register_fusions(self, register):
            from thyronet.fusion_strategies import BUILTIN_FUSIONS as builtins

            register("stack", builtins[1])
            register("not_a_strategy", object())

    pm = get_plugin_manager()
    pm.register(Duplicate(), name="dupe_plugin")
    with pytest.warns(PluginWarning) as record:
        registry = build_registry("fusions", pm)
    messages = " | ".join(str(w.message) for w in record)
    assert "'stack' is registered by both plugin 'thyronet.fusion_strategies' and plugin " \
           "'dupe_plugin'" in messages
    assert "'dupe_plugin' failed" in messages and "must be a FusionStrategy" in messages
    assert registry.entry("stack").plugin == "thyronet.fusion_strategies"


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
    assert set(rows["thyronet.fusion_strategies"]["registers"]["fusions"]) == BUILTIN_FUSIONS
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "thyronet.fusion_strategies" in out
    assert "fusions: longitudinal, mean, mosaic, stack, stack3, transverse" in out
