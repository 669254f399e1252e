"""What every benchmark result records about its run: the date and the machine."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime


def run_info() -> dict[str, str]:
    """``date`` (UTC, ISO 8601) and ``machine`` (architecture, processor, cores) of this run.

    Examples
    --------
    >>> sorted(run_info())
    ['date', 'machine']
    """
    processor = platform.processor() or "cpu"
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {processor}, {os.cpu_count()} cores",
    }
