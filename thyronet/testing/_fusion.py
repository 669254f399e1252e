"""The contract check of a fusion strategy (:func:`check_fusion`)."""

from __future__ import annotations

import pickle
from contextlib import nullcontext

import numpy as np

from thyronet.fusion import DualChannelFuser, FusionStrategy
from thyronet.testing._harness import _fail, _resolve, _with_entry


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
