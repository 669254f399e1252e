"""Stopping a study cleanly: SIGTERM becomes an interrupt, and interrupts reach the caller.

:func:`interrupts_stop_the_study` turns SIGTERM into :class:`StudyTerminated` (a
:class:`KeyboardInterrupt`) while a study runs, so that a ``kill`` or a batch
scheduler's time limit stops it exactly like Ctrl-C: nothing half-trained is saved
(:class:`~thyronet.cnn.ThyroNet` raises skorch's swallowed interrupt again), and the
command line exits with ``128 + signal`` (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["StudyTerminated", "exit_code", "interrupts_stop_the_study"]


class StudyTerminated(KeyboardInterrupt):
    """The study was stopped by a signal other than SIGINT (``signum`` says which)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signal.Signals(signum).name}")
        self.signum = int(signum)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The shell's exit status of a process stopped by ``interrupt``: ``128 + signal``."""
    return 128 + getattr(interrupt, "signum", int(signal.SIGINT))


def _raise_terminated(signum, frame) -> None:
    raise StudyTerminated(signum)


@contextlib.contextmanager
def interrupts_stop_the_study() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`StudyTerminated` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
