"""Where a CNN runs: the device string and torch's CPU thread count."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["resolve_device", "torch_threads"]


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; check explicit CUDA."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available; use device='auto' or 'cpu'")
    return device


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with torch's intra-op CPU thread count set to ``n`` (``None``: as is).

    The previous count is restored afterwards. The count is process-wide: do not
    change it from concurrently running threads.

    Examples
    --------
    >>> import torch
    >>> from thyronet.cnn import torch_threads
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
