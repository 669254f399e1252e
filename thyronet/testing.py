"""Contract checks for thyronet plugins, in the spirit of scikit-learn's ``check_estimator``.

A plugin author calls these in the plugin's own test suite:

- :func:`check_fusion` — a fusion strategy for :class:`thyronet.DualChannelFuser`;
- :func:`check_backbone` — a CNN backbone for :class:`thyronet.SkorchCNN`;
- :func:`check_classifier` — a candidate classifier for
  :class:`thyronet.ClassifierSelector`;
- :func:`check_plugin` — every entry one plugin registers, with the checks above.

Each check takes a registered name (or the entry itself, before registering it)
and raises :class:`AssertionError` with a message naming the entry and what is
wrong; it returns ``None`` when the entry keeps the contract.

thyronet's own test run never loads installed plugins (``sys._thyronet_called_from_test``);
a plugin's test suite needs the opposite. :func:`installed_plugins` makes the
default plugin manager load the installed entry points for the duration of a
``with`` block (or a pytest fixture) and checks that the plugin under test is
among them::

    # conftest.py of a plugin distribution
    import pytest
    from thyronet.testing import installed_plugins

    @pytest.fixture(autouse=True)
    def thyronet_plugins():
        with installed_plugins("thyronet-multiview") as pm:
            yield pm
"""

from __future__ import annotations

import copy
import io
import pickle
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pluggy

from thyronet import plugins as _plugins
from thyronet.fusion import FusionStrategy

__all__ = [
    "check_backbone",
    "check_classifier",
    "check_fusion",
    "check_plugin",
    "installed_plugins",
]


# ---------------------------------------------------------------------------------------
# plugin manager for plugin test suites
# ---------------------------------------------------------------------------------------
@contextmanager
def installed_plugins(*distributions: str) -> Iterator[pluggy.PluginManager]:
    """Use a plugin manager that loads the installed plugins inside a ``with`` block.

    The manager loads entry points explicitly (so it works inside any test run,
    thyronet's included) and is made the default one with
    :func:`thyronet.plugins.use_plugin_manager`: ``DualChannelFuser(strategy=...)``,
    ``SkorchCNN(backbone=...)`` and the checks of this module find the plugins'
    entries. The previous default manager is restored afterwards.

    Parameters
    ----------
    *distributions : str
        Distributions (as ``pip`` names them, e.g. ``"thyronet-multiview"``) whose
        ``thyronet`` entry points must be installed and loaded. Only their plugins
        are loaded (with thyronet's built-ins), so other installed plugins cannot
        change the test; with no name, every installed plugin is loaded.

    Yields
    ------
    pluggy.PluginManager

    Raises
    ------
    AssertionError
        A distribution is not installed, has no ``thyronet`` entry point, or its
        plugin was not loaded (blocked by ``THYRONET_DISABLE_PLUGINS``, failed to
        import, or invalid: the :class:`~thyronet.plugins.PluginWarning` says why).

    Examples
    --------
    >>> from thyronet.testing import installed_plugins
    >>> from thyronet.plugins import get_registry
    >>> with installed_plugins() as pm:
    ...     "stack" in get_registry("fusions")
    True
    """
    wanted: dict[str, list] = {}
    for dist_name in distributions:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise AssertionError(
                f"distribution {dist_name!r} is not installed; install it (e.g. "
                f"`pip install -e .` in its folder) before running its tests"
            ) from None
        eps = [ep for ep in dist.entry_points if ep.group == _plugins.ENTRY_POINT_GROUP]
        if not eps:
            raise AssertionError(
                f"distribution {dist_name!r} declares no entry point in the group "
                f"{_plugins.ENTRY_POINT_GROUP!r}; add [project.entry-points.thyronet] to its "
                "pyproject.toml"
            )
        wanted[dist_name] = eps
    names = [ep.name for eps in wanted.values() for ep in eps]
    pm = _plugins.get_plugin_manager(load_entrypoints=names if distributions else True)
    for dist_name, eps in wanted.items():
        for ep in eps:
            if not pm.has_plugin(ep.name):
                why = (
                    "it is blocked by " + _plugins.DISABLE_ENV
                    if pm.is_blocked(ep.name)
                    else "it failed to import or is invalid (see the PluginWarning)"
                )
                raise AssertionError(f"plugin {ep.name!r} of {dist_name!r} was not loaded: {why}")
    with _plugins.use_plugin_manager(pm):
        yield pm


def _with_entry(kind: str, name: str, value: Any):
    """A context where the default manager (built-ins only) also registers ``value``.

    Lets the checks run an entry that is not registered yet through the estimators
    that look names up.
    """
    from types import SimpleNamespace

    hook_name = _plugins.REGISTRY_KINDS[kind][0]
    pm = _plugins.get_plugin_manager(load_entrypoints=False)
    taken = _plugins.build_registry(kind, pm)
    if name in taken:
        raise AssertionError(
            f"{kind[:-1]} name {name!r} is already registered by plugin "
            f"{taken.entry(name).plugin!r}; choose another name"
        )

    def impl(register):
        register(name, value)

    plugin = SimpleNamespace(**{hook_name: _hookimpl(impl)})
    pm.register(plugin, name=f"thyronet.testing[{name}]")
    return _plugins.use_plugin_manager(pm)


def _hookimpl(function):
    from thyronet.hookspecs import hookimpl

    return hookimpl(function)


def _resolve(kind: str, entry: Any, expected: type | None) -> tuple[str, Any, bool]:
    """``(name, value, registered)`` for a registered name or an entry object."""
    label = kind[:-1]
    if isinstance(entry, str):
        registry = _plugins.get_registry(kind)
        if entry not in registry:
            available = ", ".join(sorted(registry)) or "(none)"
            raise AssertionError(
                f"{label} {entry!r} is not registered; registered {kind}: "
                f"{available} (is the plugin installed, and its tests run "
                "inside thyronet.testing.installed_plugins()?)"
            )
        value = registry[entry]
        if expected is not None and not isinstance(value, expected):
            raise AssertionError(
                f"{label} {entry!r} is a {type(value).__name__}, not a {expected.__name__}"
            )
        return entry, value, True
    if expected is not None and not isinstance(entry, expected):
        raise AssertionError(
            f"expected a registered {label} name or a {expected.__name__}, "
            f"got {type(entry).__name__}"
        )
    name = getattr(entry, "name", None) or getattr(entry, "__name__", None) or repr(entry)
    return str(name), entry, False


def _fail(prefix: str, message: str) -> AssertionError:
    return AssertionError(f"{prefix}: {message}")


# ---------------------------------------------------------------------------------------
# fusion strategies
# ---------------------------------------------------------------------------------------
def _view_counts(strategy: FusionStrategy) -> list[int]:
    if strategy.select is not None:
        return [len(strategy.select)]
    low = strategy.min_views
    high = strategy.max_views if strategy.max_views is not None else low + 2
    return sorted({low, min(low + 1, high), high})


def check_fusion(
    strategy: str | FusionStrategy,
    *,
    image_size: int = 12,
    n_samples: int = 3,
    random_state: int = 0,
) -> None:
    """Check that a fusion strategy keeps the contract of :class:`~thyronet.fusion.FusionStrategy`.

    Checked: the declared metadata (channels, ``min_views <= max_views``, ``select``);
    that the strategy pickles (its ``fuse`` is a module-level function); and for
    the smallest, next and largest view counts it declares (``min_views + 2`` when
    unbounded) and two image sizes, that ``fuse``

    - returns a float32 ``(n, C, H, W)`` array with the declared C and finite values;
    - leaves its input unchanged and depends on it;
    - is deterministic and fuses each patient on its own (the same result alone or
      in a batch: :class:`~thyronet.DualChannelFuser` fuses in batches);

    and that :class:`~thyronet.DualChannelFuser` with this strategy gives the same
    images, reports the declared channel count and refuses fewer than
    ``min_views`` or more than ``max_views`` views (or missing selected views).

    Parameters
    ----------
    strategy : str or FusionStrategy
        A registered name, or a strategy not registered yet.
    image_size : int, default=12
        Side of the test views (a second, odd size is checked too).
    n_samples : int, default=3
        Patients per test batch.
    random_state : int, default=0
        Seed of the random test views.

    Raises
    ------
    AssertionError
        Naming the strategy and the broken part of the contract.

    Examples
    --------
    >>> from thyronet.testing import check_fusion
    >>> check_fusion("stack3")
    """
    name, strategy, registered = _resolve("fusions", strategy, FusionStrategy)
    where = f"fusion {name!r}"
    if registered and strategy.name != name:
        raise _fail(
            where,
            f"is registered under {name!r} but its FusionStrategy.name is "
            f"{strategy.name!r}; use the same name",
        )
    _check_fusion_metadata(where, strategy)
    try:
        clone = pickle.loads(pickle.dumps(strategy))
    except Exception as exc:
        raise _fail(
            where,
            f"does not pickle ({type(exc).__name__}: {exc}); fuse must be a "
            "module-level function so that fitted fusers pickle",
        ) from exc

    rng = np.random.default_rng(random_state)
    sizes = (image_size, image_size // 2 + 1 if (image_size // 2) % 2 == 0 else image_size // 2)
    counts = _view_counts(strategy)
    # an entry not registered yet is registered for the checks (its name must be free)
    with nullcontext() if registered else _with_entry("fusions", name, strategy):
        for n_views in counts:
            for size in sizes:
                _check_fuse_call(where, strategy, clone, rng, n_samples, n_views, size)
        _check_fusion_in_fuser(where, name, strategy, rng, n_samples, counts[0], image_size)


def _check_fusion_metadata(where: str, s: FusionStrategy) -> None:
    if not isinstance(s.name, str) or not s.name:
        raise _fail(where, f"name must be a non-empty string, got {s.name!r}")
    if not callable(s.fuse):
        raise _fail(where, "fuse is not callable")
    if s.channels is not None and (
        not isinstance(s.channels, int | np.integer)
        or isinstance(s.channels, bool)
        or s.channels < 1
    ):
        raise _fail(where, f"channels must be None or an integer >= 1, got {s.channels!r}")
    if not isinstance(s.min_views, int | np.integer) or s.min_views < 1:
        raise _fail(where, f"min_views must be an integer >= 1, got {s.min_views!r}")
    if s.max_views is not None and (
        not isinstance(s.max_views, int | np.integer) or s.max_views < s.min_views
    ):
        raise _fail(
            where,
            f"max_views must be None or an integer >= min_views "
            f"({s.min_views}), got {s.max_views!r}",
        )
    if s.select is not None:
        if (
            not isinstance(s.select, tuple)
            or not s.select
            or not all(isinstance(v, str) and v for v in s.select)
        ):
            raise _fail(
                where, f"select must be None or a non-empty tuple of view names, got {s.select!r}"
            )
        if len(set(s.select)) != len(s.select):
            raise _fail(where, f"select names a view twice: {s.select!r}")
        n = len(s.select)
        if n < s.min_views or (s.max_views is not None and n > s.max_views):
            raise _fail(
                where,
                f"select has {n} view(s), outside min_views={s.min_views}, max_views={s.max_views}",
            )
    if not isinstance(s.description, str):
        raise _fail(where, f"description must be a string, got {type(s.description).__name__}")


def _check_fuse_call(
    where: str,
    strategy: FusionStrategy,
    clone: FusionStrategy,
    rng: np.random.Generator,
    n: int,
    n_views: int,
    size: int,
) -> None:
    case = f"{n_views} view(s) of {size}x{size}"
    views = rng.random((n, n_views, size, size), dtype=np.float32)
    original = views.copy()
    try:
        out = strategy.fuse(views)
    except Exception as exc:
        raise _fail(where, f"fuse raised {type(exc).__name__} for {case}: {exc}") from exc
    if not isinstance(out, np.ndarray):
        raise _fail(where, f"fuse must return a numpy array, got {type(out).__name__}")
    if not np.array_equal(views, original):
        raise _fail(where, f"fuse modified its input in place ({case})")
    if out.ndim != 4 or out.shape[0] != n:
        raise _fail(
            where,
            f"fuse returned shape {out.shape} for {n} patients and {case}; expected ({n}, C, H, W)",
        )
    declared = strategy.n_channels(n_views)
    if out.shape[1] != declared:
        raise _fail(
            where,
            f"declares {declared} channel(s) for {n_views} view(s) "
            f"(channels={strategy.channels!r}) but fuse returned {out.shape[1]}",
        )
    if min(out.shape[2:]) < 1:
        raise _fail(where, f"fuse returned an empty image: shape {out.shape}")
    if out.dtype != np.float32:
        raise _fail(where, f"fuse returned dtype {out.dtype}; it must return float32 ({case})")
    if not np.all(np.isfinite(out)):
        raise _fail(where, f"fuse returned NaN or infinite values ({case})")
    again = strategy.fuse(views.copy())
    if not np.array_equal(out, again):
        raise _fail(
            where, f"fuse is not deterministic: two calls on the same views differ ({case})"
        )
    if not np.array_equal(out, clone.fuse(views.copy())):
        raise _fail(where, f"a pickled copy fuses differently ({case})")
    for i in range(n):
        alone = strategy.fuse(views[i : i + 1].copy())
        if alone.shape != out[i : i + 1].shape or not np.allclose(
            alone, out[i : i + 1], rtol=1e-5, atol=1e-6
        ):
            raise _fail(
                where,
                f"patient {i} is fused differently alone than in a batch of "
                f"{n}; each patient must be fused on its own ({case})",
            )
    other = rng.random(views.shape, dtype=np.float32)
    if np.array_equal(strategy.fuse(other), out):
        raise _fail(where, f"fuse returned the same images for different views ({case})")


def _check_fusion_in_fuser(
    where: str,
    name: str,
    strategy: FusionStrategy,
    rng: np.random.Generator,
    n: int,
    n_views: int,
    size: int,
) -> None:
    from thyronet.fusion import DualChannelFuser

    if strategy.select is not None:
        names = tuple(strategy.select)
    else:
        names = tuple(f"view_{k}" for k in range(1, n_views + 1))
    views = rng.random((n, len(names), size, size), dtype=np.float32)
    fuser = DualChannelFuser(
        views=names, strategy=name, image_size=size, normalize="none", batch_size=2
    )
    try:
        out = fuser.fit_transform(views)
    except Exception as exc:
        raise _fail(
            where,
            f"DualChannelFuser(strategy={name!r}, views={list(names)}) failed: "
            f"{type(exc).__name__}: {exc}",
        ) from exc
    expected = strategy.fuse(views.copy())
    declared = strategy.n_channels(len(names))
    if fuser.n_channels_ != declared or out.shape != expected.shape:
        raise _fail(
            where,
            f"DualChannelFuser reports {fuser.n_channels_} channel(s) and shape "
            f"{out.shape}; fuse gives {expected.shape} (declared {declared})",
        )
    if out.dtype != np.float32 or not np.allclose(out, expected, rtol=1e-5, atol=1e-6):
        raise _fail(
            where, "DualChannelFuser (batches of 2) gives other images than fuse on the whole batch"
        )
    if len(fuser.get_feature_names_out()) != declared:
        raise _fail(
            where, "DualChannelFuser.get_feature_names_out() does not name every output channel"
        )
    too_few = strategy.min_views - 1
    bad_counts = [too_few] if too_few >= 1 and strategy.select is None else []
    if strategy.max_views is not None and strategy.select is None:
        bad_counts.append(strategy.max_views + 1)
    for count in bad_counts:
        bad = tuple(f"view_{k}" for k in range(1, count + 1))
        try:
            DualChannelFuser(views=bad, strategy=name, image_size=size).fit(
                rng.random((1, count, size, size), dtype=np.float32)
            )
        except ValueError:
            continue
        raise _fail(
            where,
            f"DualChannelFuser accepted {count} view(s) although the strategy "
            f"takes {strategy.min_views} to {strategy.max_views}",
        )
    if strategy.select is not None:
        try:
            DualChannelFuser(views=("not_a_selected_view",), strategy=name, image_size=size).fit(
                rng.random((1, 1, size, size), dtype=np.float32)
            )
        except ValueError:
            pass
        else:
            raise _fail(
                where,
                f"DualChannelFuser accepted views without the selected "
                f"view(s) {list(strategy.select)}",
            )


# ---------------------------------------------------------------------------------------
# backbones
# ---------------------------------------------------------------------------------------
def check_backbone(
    backbone: Any,
    *,
    image_size: int = 32,
    channels: Sequence[int] = (1, 2, 3),
    batch_size: int = 2,
    check_pretrained: bool = True,
    check_estimators: bool = True,
) -> None:
    """Check that a backbone keeps the contract of :class:`~thyronet.backbones.Backbone`.

    For each channel count in ``channels`` the backbone is built (``build_net``,
    random weights) and checked:

    - the forward pass gives ``(n, 1)`` finite logits, ``forward_features`` gives
      ``(n, F)`` with F the model's ``num_features`` (and the declared
      ``feature_dim``, when the backbone declares one);
    - the backward pass reaches the input and every trainable parameter; the
      classifier head (trained alone while the body is frozen) is a proper part
      of the parameters;
    - the Grad-CAM target layer exists, gives ``(n, k, h, w)`` activations on the
      path to the logit, and ``pytorch_grad_cam.GradCAM`` produces one finite
      ``(H, W)`` map per image;
    - preprocessing gives one mean/std per channel; eval mode is deterministic;
    - the built model survives ``copy.deepcopy`` and pickling with identical outputs.

    Also checked: ``pretrained=False`` gives random weights (two seeds differ) and
    ``pretrained=<weights file>`` loads that file exactly (``check_pretrained``;
    ``pretrained=True`` needs the internet and is not checked); the entry pickles;
    and (``check_estimators``) a tiny :class:`~thyronet.SkorchCNN` fit on 2-channel
    images, its clone (unfitted), pickling (same probabilities) and
    :class:`~thyronet.DeepFeatureExtractor` (the penultimate features).

    Parameters
    ----------
    backbone : str or Backbone
        A registered name, or a backbone not registered yet.
    image_size : int, default=32
        Side of the random test images.
    channels : sequence of int, default=(1, 2, 3)
        Channel counts to build for.
    batch_size : int, default=2
        Images per test batch (at least 2: BatchNorm needs them in training mode).
    check_pretrained : bool, default=True
        Check the ``pretrained`` flag (builds the model three more times).
    check_estimators : bool, default=True
        Fit a tiny SkorchCNN and a DeepFeatureExtractor with the backbone.

    Raises
    ------
    AssertionError
        Naming the backbone and the broken part of the contract.

    Examples
    --------
    >>> from thyronet.testing import check_backbone
    >>> check_backbone("test_resnet", channels=(2,), check_estimators=False)
    """
    import torch

    from thyronet.backbones import Backbone, BackboneNet

    name, entry, registered = _resolve("backbones", backbone, Backbone)
    where = f"backbone {name!r}"
    if registered and entry.name != name:
        raise _fail(
            where,
            f"is registered under {name!r} but its Backbone.name is "
            f"{entry.name!r}; use the same name",
        )
    if batch_size < 2:
        raise ValueError("batch_size must be at least 2")
    try:
        restored = pickle.loads(pickle.dumps(entry))
    except Exception as exc:
        raise _fail(
            where,
            f"the Backbone entry does not pickle ({type(exc).__name__}: {exc}); "
            "its factory must be a module-level function (or a "
            "functools.partial of one)",
        ) from exc
    if restored.name != entry.name:
        raise _fail(where, "a pickled copy of the entry has another name")
    try:
        target_name = entry.target_layer_name
    except Exception as exc:
        raise _fail(where, f"has no Grad-CAM target layer: {type(exc).__name__}: {exc}") from exc

    # an entry not registered yet is registered for the checks (its name must be free);
    # the seeds the checks set do not leak into the caller's random state
    with (
        nullcontext() if registered else _with_entry("backbones", name, entry),
        torch.random.fork_rng(devices=[]),
    ):
        for in_chans in channels:
            _check_backbone_channels(
                where, entry, in_chans, image_size, batch_size, target_name, torch, BackboneNet
            )
        if check_pretrained:
            _check_pretrained_flag(where, entry, torch)
        if check_estimators:
            _check_backbone_estimators(where, name, entry, image_size)


def _build(where: str, entry, torch, seed: int, **kwargs):
    torch.manual_seed(seed)
    try:
        return entry.build_net(**kwargs)
    except Exception as exc:
        raise _fail(
            where,
            f"build_net({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) "
            f"raised {type(exc).__name__}: {exc}",
        ) from exc


def _check_backbone_channels(
    where, entry, in_chans, size, n, target_name, torch, BackboneNet
) -> None:
    case = f"{in_chans} channel(s)"
    net = _build(where, entry, torch, 0, in_chans=in_chans, num_classes=1, pretrained=False)
    if not isinstance(net, BackboneNet):
        raise _fail(where, f"build_net returned {type(net).__name__}, not a BackboneNet")
    model = net.model
    for attr in ("forward_features", "forward_head", "get_classifier", "num_features"):
        if not hasattr(model, attr):
            raise _fail(
                where,
                f"the built model has no {attr!r} (timm's interface is needed: "
                "forward_features, forward_head(x, pre_logits=True), "
                "get_classifier(), num_features)",
            )
    pre = entry.preprocessing(in_chans)
    if len(pre.mean) != in_chans or len(pre.std) != in_chans or min(pre.std) <= 0:
        raise _fail(
            where,
            f"preprocessing({in_chans}) gives mean {pre.mean} and std "
            f"{pre.std}; expected {in_chans} values each, std > 0",
        )
    torch.manual_seed(1)
    x = torch.rand(n, in_chans, size, size, requires_grad=True)
    net.train()
    try:
        logits = net(x)
    except Exception as exc:
        raise _fail(
            where, f"forward failed for {case} at {size}x{size}: {type(exc).__name__}: {exc}"
        ) from exc
    if tuple(logits.shape) != (n, 1):
        raise _fail(
            where,
            f"forward returned shape {tuple(logits.shape)} for {n} images with "
            f"num_classes=1; expected ({n}, 1) ({case})",
        )
    if not torch.isfinite(logits).all():
        raise _fail(where, f"forward returned NaN or infinite logits ({case})")
    logits.sum().backward()
    if (
        x.grad is None
        or tuple(x.grad.shape) != tuple(x.shape)
        or not torch.isfinite(x.grad).all()
        or not x.grad.abs().sum() > 0
    ):
        raise _fail(where, f"the backward pass does not reach the input images ({case})")
    params = dict(net.named_parameters())
    no_grad = [k for k, p in params.items() if p.requires_grad and p.grad is None]
    if no_grad:
        raise _fail(
            where,
            f"parameters get no gradient from the logit ({case}): "
            f"{', '.join(no_grad[:5])}" + (" ..." if len(no_grad) > 5 else ""),
        )
    head = {id(p) for p in net.head_parameters()}
    if not head or len(head) >= len(params):
        raise _fail(
            where,
            f"get_classifier() must be the classifier head, a proper part of "
            f"the parameters; it holds {len(head)} of {len(params)} tensors",
        )
    net.zero_grad(set_to_none=True)

    with torch.no_grad():
        features = net.forward_features(x.detach())
    declared = int(model.num_features)
    if tuple(features.shape) != (n, declared):
        raise _fail(
            where,
            f"forward_features returned shape {tuple(features.shape)}; the model "
            f"declares num_features={declared} ({case})",
        )
    if entry.feature_dim is not None and declared != entry.feature_dim:
        raise _fail(
            where,
            f"declares feature_dim={entry.feature_dim} but the model built for "
            f"{case} has {declared} features",
        )
    if in_chans == 3 and entry.num_features != declared:
        raise _fail(
            where,
            f"Backbone.num_features is {entry.num_features} but the model built "
            f"for 3 channels has {declared} features",
        )

    _check_gradcam(where, net, x.detach(), target_name, case, torch)

    net.eval()
    with torch.no_grad():
        first = net(x.detach())
        second = net(x.detach())
        if not torch.equal(first, second):
            raise _fail(where, f"eval-mode forward is not deterministic ({case})")
        for label, other in (
            ("copy.deepcopy", copy.deepcopy(net)),
            ("pickling", _pickled(net, torch)),
        ):
            other.eval()
            if not torch.allclose(other(x.detach()), first, atol=1e-6):
                raise _fail(where, f"{label} of the built model gives other outputs ({case})")


def _pickled(net, torch):
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def _check_gradcam(where, net, x, target_name, case, torch) -> None:
    try:
        target = net.gradcam_target()
    except AttributeError as exc:
        layers = [k for k, _ in net.model.named_modules() if k and k.count(".") < 1]
        raise _fail(
            where,
            f"the Grad-CAM target layer {target_name!r} does not exist in the "
            f"built model ({exc}); top-level modules: {layers}",
        ) from exc
    seen: list = []
    handle = target.register_forward_hook(lambda module, args, out: seen.append(out))
    try:
        net.eval()
        activations = None
        with torch.enable_grad():
            logits = net(x)
            if seen:
                activations = seen[-1]
            if isinstance(activations, torch.Tensor) and activations.requires_grad:
                grad = torch.autograd.grad(logits.sum(), activations, allow_unused=True)[0]
            else:
                grad = None
    finally:
        handle.remove()
    if len(seen) != 1:
        raise _fail(
            where,
            f"the Grad-CAM target layer {target_name!r} ran {len(seen)} times "
            "in one forward pass; Grad-CAM needs exactly one activation per image "
            "batch",
        )
    if (
        not isinstance(activations, torch.Tensor)
        or activations.ndim != 4
        or activations.shape[0] != x.shape[0]
    ):
        shape = tuple(getattr(activations, "shape", ()))
        raise _fail(
            where,
            f"the Grad-CAM target layer {target_name!r} outputs {shape}; "
            f"Grad-CAM needs (n_images={x.shape[0]}, channels, h, w) ({case})",
        )
    if grad is None or not grad.abs().sum() > 0:
        raise _fail(
            where,
            f"the Grad-CAM target layer {target_name!r} is not on the path to "
            f"the logit (zero gradient) ({case})",
        )
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with GradCAM(model=net, target_layers=[target]) as cam:
        maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(0)] * x.shape[0])
    if maps.shape != (x.shape[0], *x.shape[2:]) or not np.all(np.isfinite(maps)):
        raise _fail(
            where,
            f"pytorch_grad_cam.GradCAM returned maps of shape {maps.shape}; "
            f"expected {(x.shape[0], *x.shape[2:])}, finite ({case})",
        )


def _check_pretrained_flag(where, entry, torch) -> None:
    first = _build(where, entry, torch, 10, in_chans=3, num_classes=1, pretrained=False)
    second = _build(where, entry, torch, 11, in_chans=3, num_classes=1, pretrained=False)
    a, b = first.model.state_dict(), second.model.state_dict()
    if all(torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point()):
        raise _fail(
            where,
            "pretrained=False gives the same weights under two seeds: it must initialise randomly",
        )
    with tempfile.TemporaryDirectory(prefix="thyronet-check-") as folder:
        path = Path(folder) / "weights.pth"
        torch.save({k: v.detach().clone() for k, v in a.items()}, path)
        loaded = _build(where, entry, torch, 12, in_chans=3, num_classes=1, pretrained=str(path))
        got = loaded.model.state_dict()
        wrong = [
            k
            for k, v in a.items()
            if k not in got or got[k].shape != v.shape or not torch.equal(got[k], v)
        ]
        if wrong:
            raise _fail(
                where,
                f"pretrained=<weights file> did not load the file: "
                f"{len(wrong)} tensor(s) differ, e.g. {', '.join(wrong[:3])}",
            )
        missing_file = Path(folder) / "missing.pth"
        try:
            entry.build(in_chans=3, num_classes=1, pretrained=str(missing_file))
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise _fail(
                where,
                f"pretrained=<missing file> raised {type(exc).__name__} "
                "instead of FileNotFoundError",
            ) from exc
        else:
            raise _fail(where, "pretrained=<missing file> built a model instead of failing")


def _check_backbone_estimators(where, name, entry, size) -> None:
    from sklearn.base import clone
    from sklearn.frozen import FrozenEstimator

    from thyronet.cnn import SkorchCNN
    from thyronet.features import DeepFeatureExtractor

    rng = np.random.default_rng(0)
    X = rng.random((6, 2, size, size), dtype=np.float32)
    y = np.arange(6) % 2
    cnn = SkorchCNN(
        backbone=name,
        max_epochs=1,
        batch_size=3,
        validation_fraction=None,
        early_stopping=False,
        augment=False,
        warmup_epochs=0,
        device="cpu",
        precision="fp32",
        verbose=0,
        random_state=0,
    )
    try:
        cnn.fit(X, y)
        proba = cnn.predict_proba(X)
    except Exception as exc:
        raise _fail(
            where,
            f"SkorchCNN(backbone={name!r}) failed to fit/predict 2-channel "
            f"images: {type(exc).__name__}: {exc}",
        ) from exc
    if proba.shape != (6, 2) or not np.allclose(proba.sum(axis=1), 1, atol=1e-5):
        raise _fail(where, f"SkorchCNN.predict_proba returned shape {proba.shape}")
    unfitted = clone(cnn)
    if hasattr(unfitted, "net_") or unfitted.get_params()["backbone"] != name:
        raise _fail(where, "clone() of a fitted SkorchCNN must be unfitted with the same backbone")
    restored = pickle.loads(pickle.dumps(cnn))
    if not np.allclose(restored.predict_proba(X), proba, atol=1e-6):
        raise _fail(where, "a pickled SkorchCNN predicts other probabilities")
    extractor = DeepFeatureExtractor(FrozenEstimator(cnn), precision="fp32", batch_size=4).fit(X)
    features = extractor.transform(X)
    if features.shape != (6, cnn.feature_dim_):
        raise _fail(
            where,
            f"DeepFeatureExtractor returned shape {features.shape}; expected "
            f"(6, {cnn.feature_dim_})",
        )
    import torch

    module = cnn.net_.module_
    module.eval()
    with torch.no_grad():
        direct = module.forward_features(torch.from_numpy(X)).float().numpy()
    if not np.allclose(features, direct, rtol=1e-4, atol=1e-5):
        raise _fail(where, "DeepFeatureExtractor features differ from forward_features")


# ---------------------------------------------------------------------------------------
# classifiers
# ---------------------------------------------------------------------------------------
def _toy_data(random_state: int):
    import pandas as pd

    rng = np.random.default_rng(random_state)
    n = 80
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 4))
    X[:, 0] += 2.5 * y
    X[:, 1] -= 1.5 * y
    return pd.DataFrame(X, columns=[f"x{k}" for k in range(4)]), y


def check_classifier(
    factory: str | Callable[[], Any], *, min_train_auc: float | None = 0.75, random_state: int = 0
) -> None:
    """Check that a candidate-classifier factory keeps the contract of ``ClassifierSelector``.

    Checked: ``factory()`` returns a *new*, unfitted scikit-learn classifier on every
    call, with ``predict_proba``, that :func:`sklearn.base.clone` reproduces; on a
    tiny, easy binary problem (a DataFrame of 80 rows) it fits without changing
    its input, predicts probabilities of shape ``(n, 2)`` that sum to one,
    records ``classes_``, learns (training AUC at least ``min_train_auc``), gives
    the same probabilities when fitted twice (fix the seed in the factory) and
    after pickling.

    Parameters
    ----------
    factory : str or callable
        A registered name, or a factory not registered yet.
    min_train_auc : float or None, default=0.75
        Lowest acceptable training AUC on the easy problem; ``None`` skips it
        (e.g. for a deliberately uninformed baseline).
    random_state : int, default=0
        Seed of the toy data.

    Raises
    ------
    AssertionError
        Naming the classifier and the broken part of the contract.

    Examples
    --------
    >>> from thyronet.testing import check_classifier
    >>> check_classifier("naive_bayes")
    """
    from sklearn.base import clone, is_classifier
    from sklearn.exceptions import NotFittedError
    from sklearn.metrics import roc_auc_score
    from sklearn.utils.validation import check_is_fitted

    name, factory, _ = _resolve("classifiers", factory, None)
    where = f"classifier {name!r}"
    if not callable(factory):
        raise _fail(where, f"the entry must be a factory (callable), got {type(factory).__name__}")
    try:
        first, second = factory(), factory()
    except Exception as exc:
        raise _fail(where, f"factory() raised {type(exc).__name__}: {exc}") from exc
    if first is second:
        raise _fail(
            where,
            "factory() returned the same object twice; it must build a new "
            "classifier on every call",
        )
    if not is_classifier(first):
        raise _fail(
            where,
            f"factory() returned {type(first).__name__}, not a scikit-learn "
            "classifier (is_classifier is False)",
        )
    if not hasattr(first, "predict_proba"):
        raise _fail(where, f"{type(first).__name__} has no predict_proba")
    try:
        check_is_fitted(first)
    except NotFittedError:
        pass
    else:
        raise _fail(where, "factory() returned a fitted classifier; it must be unfitted")
    try:
        unfitted = clone(first)
    except Exception as exc:
        raise _fail(where, f"sklearn.base.clone failed: {type(exc).__name__}: {exc}") from exc

    X, y = _toy_data(random_state)
    X_before = X.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        try:
            first.fit(X, y)
            proba = first.predict_proba(X)
        except Exception as exc:
            raise _fail(
                where,
                f"fit/predict_proba on a tiny binary problem failed: {type(exc).__name__}: {exc}",
            ) from exc
    if not X.equals(X_before):
        raise _fail(where, "fit modified its input X")
    proba = np.asarray(proba)
    if proba.shape != (len(y), 2):
        raise _fail(where, f"predict_proba returned shape {proba.shape}; expected ({len(y)}, 2)")
    if not (
        np.all(np.isfinite(proba))
        and proba.min() >= 0
        and proba.max() <= 1
        and np.allclose(proba.sum(axis=1), 1, atol=1e-6)
    ):
        raise _fail(where, "predict_proba must give probabilities in [0, 1] summing to 1")
    if not np.array_equal(np.asarray(getattr(first, "classes_", [])), [0, 1]):
        raise _fail(where, f"classes_ is {getattr(first, 'classes_', None)!r}; expected [0, 1]")
    if min_train_auc is not None:
        auc = roc_auc_score(y, proba[:, 1])
        if auc < min_train_auc:
            raise _fail(
                where,
                f"training AUC {auc:.3f} on an easy problem is below "
                f"{min_train_auc}: does it learn from X?",
            )
    try:
        check_is_fitted(second)
    except NotFittedError:
        pass
    else:
        raise _fail(
            where,
            "fitting one classifier from factory() fitted another: the "
            "factory shares state between calls",
        )
    refit = unfitted.fit(X, y).predict_proba(X)
    if not np.allclose(refit, proba, atol=1e-8):
        raise _fail(
            where,
            "two fits on the same data give different probabilities; fix the "
            "random seed (random_state) in the factory",
        )
    restored = pickle.loads(pickle.dumps(first))
    if not np.allclose(restored.predict_proba(X), proba, atol=1e-12):
        raise _fail(where, "a pickled copy predicts other probabilities")


# ---------------------------------------------------------------------------------------
# whole plugins
# ---------------------------------------------------------------------------------------
_CHECKS: dict[str, Callable[..., None]] = {
    "fusions": check_fusion,
    "backbones": check_backbone,
    "classifiers": check_classifier,
}


def check_plugin(
    plugin: str, pm: pluggy.PluginManager | None = None, **check_params: dict[str, Any]
) -> list[tuple[str, str]]:
    """Run the contract check of every entry that one plugin registers.

    Parameters
    ----------
    plugin : str
        The plugin's name: its entry-point name (``thyronet plugins`` lists them) or
        a built-in module such as ``"thyronet._builtins.fusions"``.
    pm : pluggy.PluginManager or None
        The manager; ``None`` uses the default one (inside
        :func:`installed_plugins` it loads the installed plugins).
    **check_params : dict
        Keyword arguments per kind, e.g. ``backbones={"check_estimators": False}``.

    Returns
    -------
    list of (kind, name)
        What was checked.

    Raises
    ------
    AssertionError
        The plugin is not loaded, registers nothing, or an entry breaks its contract.

    Examples
    --------
    >>> from thyronet.testing import check_plugin
    >>> check_plugin("thyronet._builtins.fusions")[:2]
    [('fusions', 'longitudinal'), ('fusions', 'mean')]
    """
    pm = pm if pm is not None else _plugins.default_plugin_manager()
    if not pm.has_plugin(plugin):
        loaded = ", ".join(name for name, _ in pm.list_name_plugin())
        raise AssertionError(f"plugin {plugin!r} is not loaded; loaded plugins: {loaded}")
    unknown = sorted(set(check_params) - set(_CHECKS))
    if unknown:
        raise ValueError(f"unknown kind(s) {unknown}; known: {sorted(_CHECKS)}")
    checked: list[tuple[str, str]] = []
    with _plugins.use_plugin_manager(pm):
        for kind, check in _CHECKS.items():
            registry = _plugins.get_registry(kind)
            names = sorted(e.name for e in registry.entries.values() if e.plugin == plugin)
            for name in names:
                check(name, **check_params.get(kind, {}))
                checked.append((kind, name))
    if not checked:
        raise AssertionError(f"plugin {plugin!r} registers nothing")
    return checked
