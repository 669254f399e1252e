"""One line per study step on stderr, and the seconds each step took."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


class _Progress:
    """Says what the study does (when ``verbose``) and times each step."""

    def __init__(self, verbose: int) -> None:
        self.verbose = verbose
        self.timings: dict[str, float] = {}
        self.start = time.perf_counter()

    def say(self, message: str) -> None:
        if self.verbose:
            print(f"[thyronet study] {message}", file=sys.stderr, flush=True)

    @contextmanager
    def step(self, key: str, message: str) -> Iterator[None]:
        self.say(f"{message} ...")
        t0 = time.perf_counter()
        yield
        elapsed = time.perf_counter() - t0
        self.timings[key] = self.timings.get(key, 0.0) + elapsed
        self.say(f"{message}: done in {elapsed:.1f} s")

    def total(self) -> float:
        """Seconds since the study started."""
        return time.perf_counter() - self.start
