"""The plugin manager and the registries built from it.

Built-in fusion strategies, backbones and classifiers are registered through the
same pluggy manager as third-party plugins (entry-point group ``thyronet``).

- :func:`get_plugin_manager` is a factory: each call returns a fresh manager.
- ``THYRONET_DISABLE_PLUGINS=name1,name2`` blocks plugins by name (entry-point
  name for third parties, module name for built-ins); a name that is neither
  gives a :class:`PluginWarning` listing the known names.
- A plugin that fails to import, implements a hook no specification matches,
  raises in its hook, registers an entry of the wrong type or a name already
  taken produces a :class:`PluginWarning` naming it; the rest keeps working.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from thyronet import hookspecs

ENTRY_POINT_GROUP = "thyronet"
DISABLE_ENV = "THYRONET_DISABLE_PLUGINS"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "thyronet._builtins.fusions",
    "thyronet._builtins.backbones",
    "thyronet._builtins.classifiers",
)
"""Modules holding the built-in hook implementations, registered first."""

REGISTRY_KINDS: Mapping[str, tuple[str, str]] = {
    "fusions": ("thyronet_register_fusions", "thyronet.fusion:FusionStrategy"),
    "backbones": ("thyronet_register_backbones", "thyronet.backbones:Backbone"),
    # Candidates of ClassifierSelector: factories (any callable) returning a classifier.
    "classifiers": ("thyronet_register_classifiers", "collections.abc:Callable"),
}
"""Registry kind -> (hook name, ``module:Class`` every entry must be an instance of)."""


class PluginWarning(UserWarning):
    """A plugin could not be loaded or registered something invalid; it names the plugin."""


class UnknownEntryError(KeyError, ValueError):
    """A name that no plugin registered; the message lists the registered names.

    Both a ``KeyError`` (a registry is a mapping) and a ``ValueError`` (an estimator
    parameter naming an unknown entry is a bad value), so either ``except`` catches it.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class RegistryEntry:
    """One registered object, with the plugin that registered it."""

    name: str
    value: Any
    plugin: str
    version: str | None = None


@dataclass
class Registry(Mapping):
    """Name -> registered object for one kind (``fusions``, ``backbones``, ...).

    Behaves as a read-only mapping; :meth:`entry` also gives the registering plugin.
    """

    kind: str
    entries: dict[str, RegistryEntry] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.entry(name).value

    def entry(self, name: str) -> RegistryEntry:
        try:
            return self.entries[name]
        except (KeyError, TypeError):
            available = ", ".join(sorted(self.entries)) or "(none)"
            raise UnknownEntryError(
                f"unknown {self.kind[:-1]} {name!r}; registered {self.kind}: {available}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def _called_from_test() -> bool:
    return bool(getattr(sys, "_thyronet_called_from_test", False))


def disabled_plugins() -> set[str]:
    """Names listed in ``THYRONET_DISABLE_PLUGINS`` (comma separated)."""
    raw = os.environ.get(DISABLE_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def _warn_unknown_disabled(disabled: set[str]) -> None:
    """Warn about names in ``THYRONET_DISABLE_PLUGINS`` that name no plugin.

    Known names are the built-in modules and every installed entry point of the
    ``thyronet`` group, loaded or not (so a plugin left out of a test run is not
    reported as unknown).
    """
    installed = {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    known = set(BUILTIN_PLUGINS) | installed
    unknown = sorted(disabled - known)
    if unknown:
        warnings.warn(
            f"{DISABLE_ENV} names unknown plugin(s) {', '.join(map(repr, unknown))}, "
            f"which block nothing; known plugins: {', '.join(sorted(known))}",
            PluginWarning,
            stacklevel=3,
        )


def get_plugin_manager(
    *, load_entrypoints: bool | Iterable[str] | None = None, builtins: bool = True
) -> pluggy.PluginManager:
    """Create a plugin manager with the built-ins and the installed plugins.

    Parameters
    ----------
    load_entrypoints : bool, iterable of str or None
        Load third-party plugins from the ``thyronet`` entry-point group. ``None``
        loads them except inside thyronet's own test run, so installed plugins
        never leak into it. An iterable loads only the entry points of those names
        (tests use it to load one plugin and no other installed one).
    builtins : bool
        Register thyronet's built-in implementations.

    Returns
    -------
    pluggy.PluginManager

    Examples
    --------
    >>> from thyronet.plugins import get_plugin_manager
    >>> pm = get_plugin_manager()
    >>> "thyronet._builtins.fusions" in [name for name, _ in pm.list_name_plugin()]
    True
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    disabled = disabled_plugins()
    for name in disabled:
        pm.set_blocked(name)
    if disabled:
        _warn_unknown_disabled(disabled)
    if builtins:
        for module_name in BUILTIN_PLUGINS:
            if pm.is_blocked(module_name):
                continue
            pm.register(importlib.import_module(module_name), name=module_name)
        pm.check_pending()
    if load_entrypoints is None:
        load_entrypoints = not _called_from_test()
    if isinstance(load_entrypoints, str):
        raise TypeError(
            "load_entrypoints takes a bool or an iterable of entry-point names, "
            f"not the string {load_entrypoints!r}"
        )
    if isinstance(load_entrypoints, Iterable):
        load_entrypoint_plugins(pm, names=load_entrypoints)
    elif load_entrypoints:
        load_entrypoint_plugins(pm)
    return pm


def load_entrypoint_plugins(
    pm: pluggy.PluginManager, group: str = ENTRY_POINT_GROUP, names: Iterable[str] | None = None
) -> None:
    """Import and register every plugin of the entry-point ``group``, one at a time.

    ``names`` restricts loading to the entry points of those names.

    A plugin that fails to import or whose hooks match no specification is left out
    with a :class:`PluginWarning`; the others are registered.
    """
    wanted = None if names is None else set(names)
    for ep in metadata.entry_points(group=group):
        if wanted is not None and ep.name not in wanted:
            continue
        if pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
            continue
        dist = getattr(ep, "dist", None)
        label = f"{ep.name!r} ({ep.value}" + (
            f", from {dist.name} {dist.version})" if dist else ")"
        )
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must not break thyronet
            warnings.warn(
                f"thyronet plugin {label} failed to import: {type(exc).__name__}: {exc}",
                PluginWarning,
                stacklevel=2,
            )
            continue
        try:
            pm.register(plugin, name=ep.name)
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            if pm.has_plugin(ep.name):
                pm.unregister(name=ep.name)
            warnings.warn(
                f"thyronet plugin {label} is invalid and was not loaded: {exc}",
                PluginWarning,
                stacklevel=2,
            )
            continue
        if dist is not None:
            _PLUGIN_VERSIONS[id(plugin)] = dist.version
        unmarked = unmarked_hooks(pm, plugin)
        if unmarked:
            warnings.warn(
                f"thyronet plugin {label} defines {', '.join(unmarked)} without "
                "@thyronet.hookspecs.hookimpl, so it is never called; decorate it",
                PluginWarning,
                stacklevel=2,
            )


def unmarked_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Callables of ``plugin`` named ``thyronet_*`` that lack the ``@hookimpl`` marker.

    pluggy ignores them silently; a forgotten decorator would leave a hook never called.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from thyronet.plugins import get_plugin_manager, unmarked_hooks
    >>> plugin = SimpleNamespace(thyronet_register_fusions=lambda register: None)
    >>> unmarked_hooks(get_plugin_manager(load_entrypoints=False), plugin)
    ['thyronet_register_fusions']
    """
    prefix = f"{hookspecs.PROJECT_NAME}_"
    return sorted(
        name
        for name in dir(plugin)
        if name.startswith(prefix)
        and callable(getattr(plugin, name, None))
        and pm.parse_hookimpl_opts(plugin, name) is None
    )


_PLUGIN_VERSIONS: dict[int, str] = {}


def plugin_version(plugin: object) -> str | None:
    """The distribution version of a loaded plugin (thyronet's own for built-ins)."""
    if id(plugin) in _PLUGIN_VERSIONS:
        return _PLUGIN_VERSIONS[id(plugin)]
    module = getattr(plugin, "__name__", "")
    if module.startswith("thyronet."):
        from thyronet import __version__

        return __version__
    return getattr(plugin, "__version__", None)


def _resolve(path: str) -> type:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def build_registry(kind: str, pm: pluggy.PluginManager | None = None) -> Registry:
    """Collect the entries every plugin registers for ``kind``.

    Plugins are called in registration order (built-ins first). A duplicate name,
    an entry of the wrong type or a hook that raises gives a :class:`PluginWarning`
    naming the plugin; the first valid registration of a name wins.
    """
    if kind not in REGISTRY_KINDS:
        raise ValueError(f"unknown registry kind {kind!r}; known: {sorted(REGISTRY_KINDS)}")
    hook_name, type_path = REGISTRY_KINDS[kind]
    expected = _resolve(type_path)
    pm = pm if pm is not None else default_plugin_manager()
    registry = Registry(kind)
    hook = getattr(pm.hook, hook_name)
    # get_hookimpls() lists implementations in registration order (built-ins first);
    # pluggy's own call order is the reverse, so we call them one by one.
    for impl in hook.get_hookimpls():
        plugin_name = impl.plugin_name
        version = plugin_version(impl.plugin)

        def register(
            name: str, value: Any, *, _plugin: str = plugin_name, _version: str | None = version
        ) -> None:
            if not isinstance(name, str) or not name:
                raise TypeError(f"a registered name must be a non-empty string, got {name!r}")
            if not isinstance(value, expected):
                raise TypeError(
                    f"{kind[:-1]} {name!r} must be a {expected.__name__}, "
                    f"got {type(value).__name__}"
                )
            if name in registry.entries:
                first = registry.entries[name].plugin
                warnings.warn(
                    f"{kind[:-1]} {name!r} is registered by both plugin {first!r} "
                    f"and plugin {_plugin!r}; keeping the one from {first!r}",
                    PluginWarning,
                    stacklevel=2,
                )
                return
            registry.entries[name] = RegistryEntry(name, value, _plugin, _version)

        try:
            impl.function(register=register)
        except Exception as exc:
            warnings.warn(
                f"thyronet plugin {plugin_name!r} failed in {hook_name}: "
                f"{type(exc).__name__}: {exc}",
                PluginWarning,
                stacklevel=2,
            )
    return registry


_DEFAULT: dict[str, Any] = {}


def default_plugin_manager() -> pluggy.PluginManager:
    """The manager used when none is passed: created on first use, then reused.

    :func:`reset_plugins` forgets it (tests call it to get a fresh one).
    """
    if "pm" not in _DEFAULT:
        _DEFAULT["pm"] = get_plugin_manager()
    return _DEFAULT["pm"]


def get_registry(kind: str) -> Registry:
    """The registry of ``kind`` from the default manager (built once, then reused)."""
    key = f"registry:{kind}"
    if key not in _DEFAULT:
        _DEFAULT[key] = build_registry(kind, default_plugin_manager())
    return _DEFAULT[key]


def reset_plugins() -> None:
    """Forget the default manager and its registries (after installing or blocking plugins)."""
    _DEFAULT.clear()


@contextmanager
def use_plugin_manager(
    pm: pluggy.PluginManager | None = None, *, load_entrypoints: bool = True
) -> Iterator[pluggy.PluginManager]:
    """Make ``pm`` the default manager inside a ``with`` block, then restore the previous one.

    Everything that looks names up (``DualChannelFuser(strategy=...)``,
    ``SkorchCNN(backbone=...)``, :func:`get_registry`) uses ``pm`` inside the block.
    A plugin's own test suite uses it to load the installed entry points even when
    thyronet's test flag (``sys._thyronet_called_from_test``) is set; see
    :func:`thyronet.testing.installed_plugins`.

    Parameters
    ----------
    pm : pluggy.PluginManager or None
        The manager; ``None`` creates one with :func:`get_plugin_manager`.
    load_entrypoints : bool, default=True
        When ``pm`` is ``None``: load the installed third-party plugins.

    Yields
    ------
    pluggy.PluginManager

    Examples
    --------
    >>> from thyronet.plugins import get_registry, use_plugin_manager
    >>> with use_plugin_manager(load_entrypoints=False):
    ...     "stack" in get_registry("fusions")
    True
    """
    saved = dict(_DEFAULT)
    _DEFAULT.clear()
    _DEFAULT["pm"] = pm if pm is not None else get_plugin_manager(load_entrypoints=load_entrypoints)
    try:
        yield _DEFAULT["pm"]
    finally:
        _DEFAULT.clear()
        _DEFAULT.update(saved)


def describe_plugins(pm: pluggy.PluginManager | None = None) -> list[dict[str, Any]]:
    """One record per loaded plugin: name, version and what it registers, by kind.

    Blocked plugins (``THYRONET_DISABLE_PLUGINS``) are not loaded and not listed.
    """
    pm = pm if pm is not None else get_plugin_manager()
    registries = {kind: build_registry(kind, pm) for kind in REGISTRY_KINDS}
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked by THYRONET_DISABLE_PLUGINS: not loaded
            continue
        registers = {
            kind: sorted(e.name for e in reg.entries.values() if e.plugin == name)
            for kind, reg in registries.items()
        }
        rows.append(
            {
                "name": name,
                "version": plugin_version(plugin),
                "registers": {k: v for k, v in registers.items() if v},
            }
        )
    return rows
