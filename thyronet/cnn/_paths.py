"""Measure-and-pick: the fastest inference path (precision, memory layout) for this process.

Which path runs a CNN fastest depends on the machine, not on its CPU flags: bf16
autocast is 2-3x fp32 on an AMD Zen 4 with AVX512-BF16, but 0.8x fp32 on an Intel
Xeon that reports the same flag without AMX; channels-last helps most convolutions
on CPUs, not all. :func:`pick_path` therefore times the candidate paths on the first
images of the real input (one warm-up and ``TIMED_RUNS`` timed forwards of a probe
of at most ``PROBE_IMAGES`` images per candidate, interleaved A B C A B C, best time
kept) and caches the choice per process, keyed by device, backbone, model part,
image shape, thread count and candidate set, so the measurement is paid once.
Inputs of fewer than ``MIN_IMAGES_TO_PICK`` images are not measured: they take a
cached choice when there is one, else the static default (fp32 on CPUs, bf16 on
CUDA with bf16 support). Every path gives the same outputs up to rounding: fp32 at
any layout agrees to ~1e-6, bf16 autocast to a cosine similarity >= 0.999.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
import torch

__all__ = [
    "MIN_IMAGES_TO_PICK",
    "PROBE_IMAGES",
    "TIMED_RUNS",
    "InferencePath",
    "candidate_paths",
    "clear_path_cache",
    "default_path",
    "module_in_layout",
    "path_cache",
    "pick_path",
    "run_path",
]

MIN_IMAGES_TO_PICK = 64
PROBE_IMAGES = 8
TIMED_RUNS = 2

_CACHE: dict[tuple, InferencePath] = {}


@dataclass(frozen=True)
class InferencePath:
    """One way to run a model's forward pass, and how it was chosen.

    Attributes
    ----------
    precision : {"fp32", "bf16"}
        ``"bf16"`` runs under bf16 autocast.
    channels_last : bool
        Channels-last memory format for the weights and the batches.
    source : {"set", "measured", "cached", "default"}
        ``"set"``: fixed by the parameters (one candidate); ``"measured"``: timed
        now; ``"cached"``: timed earlier in this process; ``"default"``: the input
        was too small to measure and nothing was cached.
    images_per_s : dict
        The measured throughput of each candidate (``"measured"``/``"cached"``).

    Examples
    --------
    >>> from thyronet.cnn import InferencePath
    >>> str(InferencePath("bf16", True, "measured"))
    'bf16 channels-last (measured)'
    """

    precision: str
    channels_last: bool
    source: str = "set"
    images_per_s: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        """``"<precision> <layout>"``, the key of :attr:`images_per_s`."""
        return f"{self.precision} {'channels-last' if self.channels_last else 'NCHW'}"

    def __str__(self) -> str:
        return f"{self.name} ({self.source})"


def _bf16_runs(device: torch.device) -> bool:
    """Whether bf16 autocast is available on ``device`` at all (not whether it is fast)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return device.type == "cpu"


def candidate_paths(
    precision: str, channels_last: bool | str, device: str | torch.device
) -> list[InferencePath]:
    """The paths worth timing for the given settings (``"auto"`` leaves a choice).

    Full ``"auto"``: fp32 NCHW, fp32 channels-last and bf16 channels-last (bf16 NCHW
    is never faster than bf16 channels-last with oneDNN or cuDNN). Where bf16
    autocast cannot run (``mps``, CUDA without bf16), only fp32.

    Examples
    --------
    >>> from thyronet.cnn import candidate_paths
    >>> [p.name for p in candidate_paths("auto", "auto", "cpu")]
    ['fp32 channels-last', 'bf16 channels-last', 'fp32 NCHW']
    >>> [p.name for p in candidate_paths("fp32", True, "cpu")]
    ['fp32 channels-last']
    """
    device = torch.device(device)
    precisions = [precision] if precision != "auto" else ["fp32", "bf16"]
    if precision == "auto" and not _bf16_runs(device):
        precisions = ["fp32"]
    layouts = [channels_last] if channels_last != "auto" else [True, False]
    paths = []
    for layout in layouts:
        for prec in precisions:
            if channels_last == "auto" and precision == "auto" and prec == "bf16" and not layout:
                continue
            paths.append(InferencePath(prec, bool(layout)))
    return paths


def default_path(candidates: Sequence[InferencePath], device: str | torch.device) -> InferencePath:
    """The path of an input too small to measure: the previous static default.

    fp32 on CPUs (the same numbers at any layout), bf16 on CUDA with bf16 support;
    channels-last where allowed.
    """
    device = torch.device(device)
    want = "bf16" if device.type == "cuda" and _bf16_runs(device) else "fp32"
    ranked = sorted(candidates, key=lambda p: (p.precision != want, not p.channels_last))
    return replace(ranked[0], source="default" if len(candidates) > 1 else "set")


def _is_channels_last(module: torch.nn.Module) -> bool | None:
    """The layout of the first 4-D weight whose two layouts differ (``None``: no such)."""
    for param in module.parameters():
        if param.dim() == 4:
            nchw = param.is_contiguous()
            nhwc = param.is_contiguous(memory_format=torch.channels_last)
            if nchw != nhwc:
                return nhwc
    return None


@contextmanager
def module_in_layout(module: torch.nn.Module, channels_last: bool) -> Iterator[None]:
    """Run a block with ``module``'s 4-D weights in the given layout, restored after.

    Examples
    --------
    >>> import torch
    >>> from thyronet.cnn import module_in_layout
    >>> conv = torch.nn.Conv2d(2, 4, 3)
    >>> with module_in_layout(conv, True):
    ...     conv.weight.is_contiguous(memory_format=torch.channels_last)
    True
    >>> conv.weight.is_contiguous()
    True
    """
    before = _is_channels_last(module)
    if before is None or before == channels_last:
        yield
        return
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    module.to(memory_format=fmt)
    try:
        yield
    finally:
        module.to(memory_format=torch.channels_last if before else torch.contiguous_format)


def run_path(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, path: InferencePath
) -> torch.Tensor:
    """``forward(x)`` in ``path``'s precision and input layout, in inference mode.

    The module's weights must already be in the path's layout (:func:`module_in_layout`).
    """
    if path.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    else:
        x = x.contiguous()
    with (
        torch.inference_mode(),
        torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=path.precision == "bf16"),
    ):
        return forward(x)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _measure(
    module: torch.nn.Module,
    forward: Callable[[torch.Tensor], torch.Tensor],
    probe: torch.Tensor,
    candidates: Sequence[InferencePath],
) -> dict[str, float]:
    """Images/s of each candidate: one warm-up, then ``TIMED_RUNS`` rounds A B C...; best."""
    best = {p.name: float("inf") for p in candidates}
    for round_ in range(1 + TIMED_RUNS):
        for path in candidates:
            with module_in_layout(module, path.channels_last):
                _sync(probe.device)
                start = time.perf_counter()
                run_path(forward, probe, path)
                _sync(probe.device)
                elapsed = time.perf_counter() - start
            if round_ > 0:
                best[path.name] = min(best[path.name], elapsed)
    return {name: round(len(probe) / seconds, 3) for name, seconds in best.items()}


def pick_path(
    module: torch.nn.Module,
    forward: Callable[[torch.Tensor], torch.Tensor],
    X,
    *,
    candidates: Sequence[InferencePath],
    device: str | torch.device,
    key: tuple,
) -> InferencePath:
    """The fastest of ``candidates`` for ``forward`` on images like ``X``, cached per process.

    Parameters
    ----------
    module : torch.nn.Module
        The module ``forward`` runs (its layout is switched while timing, then
        restored).
    forward : callable
        Tensor -> tensor, e.g. ``module.forward_features``.
    X : array of shape (n, C, H, W)
        The real input; its first ``PROBE_IMAGES`` images are the probe.
    candidates : sequence of InferencePath
        From :func:`candidate_paths`; one candidate is returned as is.
    device : str or torch.device
    key : tuple
        What identifies the model (backbone name, model part); the device, image
        shape, thread count and candidates are added to it.

    Returns
    -------
    InferencePath
    """
    device = torch.device(device)
    if len(candidates) == 1:
        return replace(candidates[0], source="set")
    full_key = (
        *key,
        str(device),
        tuple(int(s) for s in X.shape[1:]),
        torch.get_num_threads(),
        tuple(p.name for p in candidates),
    )
    cached = _CACHE.get(full_key)
    if cached is not None:
        return replace(cached, source="cached")
    if len(X) < MIN_IMAGES_TO_PICK:
        return default_path(candidates, device)
    probe = torch.from_numpy(np.ascontiguousarray(X[:PROBE_IMAGES], dtype=np.float32))
    probe = probe.to(device)
    was_training = module.training
    module.eval()
    try:
        rates = _measure(module, forward, probe, candidates)
    finally:
        module.train(was_training)
    best = max(candidates, key=lambda p: rates[p.name])
    chosen = replace(best, source="measured", images_per_s=rates)
    _CACHE[full_key] = chosen
    return chosen


def path_cache() -> dict[tuple, InferencePath]:
    """A copy of this process's measured choices, by key."""
    return dict(_CACHE)


def clear_path_cache() -> None:
    """Forget every measured choice (the next large input is measured again)."""
    _CACHE.clear()
