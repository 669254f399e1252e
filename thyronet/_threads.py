"""OpenMP's wait policy: threads that sleep at barriers instead of spinning (torch-free).

PyTorch's CPU kernels run on libgomp, whose worker threads by default spin for a while
at the end of every parallel region. On a machine where another CPU-bound process
runs, the spinning threads take CPU time from the one thread that still has work, and
every one of the thousands of parallel regions of a training step waits for a
scheduler time slice: one competing process slowed a small training epoch from 0.6 s
to 7 s (``benchmarks/bench_contention.py``). With ``OMP_WAIT_POLICY=PASSIVE`` idle
threads sleep, and the same epoch keeps about half its idle throughput, a fair share.

OpenMP reads the policy once, when it is loaded (when torch is imported), so
:func:`prefer_passive_wait` runs when :mod:`thyronet` is imported, before torch.
A policy set by the user (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``) is kept; where
torch was imported before thyronet, the process's setting stays as it was.
"""

from __future__ import annotations

import os

__all__ = ["prefer_passive_wait"]


def prefer_passive_wait() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless a wait policy is set; whether it was set.

    Examples
    --------
    >>> import os
    >>> from thyronet._threads import prefer_passive_wait
    >>> prefer_passive_wait() in (True, False)
    True
    >>> "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ
    True
    """
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
