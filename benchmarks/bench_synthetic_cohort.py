"""Benchmark: generate the default synthetic PTMC cohort to disk.

Generates ``make_ptmc_cohort()`` with its defaults (461 patients, two 224-pixel
views each) into a temporary folder (PNG files + ``manifest.csv``), and reports the
wall-clock seconds and images per second. Writes
``benchmarks/results/bench_synthetic_cohort.json`` and prints it.

Run from the repository root::

    python benchmarks/bench_synthetic_cohort.py
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _meta import run_info  # benchmarks/_meta.py (scripts run from their folder)

from thyronet.datasets import load_cohort, make_ptmc_cohort

RESULTS = Path(__file__).resolve().parent / "results" / "bench_synthetic_cohort.json"


def main(n_patients: int = 461, image_size: int = 224, random_state: int = 0) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        frame = make_ptmc_cohort(n_patients, image_size, out_dir=folder, random_state=random_state)
        seconds = time.perf_counter() - start
        manifest = Path(folder) / "manifest.csv"
        loaded = load_cohort(manifest)  # the manifest must load back
        n_files = len(list((Path(folder) / "images").glob("*.png")))
        disk_mb = sum(p.stat().st_size for p in Path(folder).rglob("*")) / 2**20
    n_images = 2 * n_patients
    assert n_files == n_images and len(loaded) == n_patients == len(frame)
    result = {
        "benchmark": "make_ptmc_cohort to disk (PNG + manifest.csv)",
        **run_info(),
        "n_patients": n_patients,
        "image_size": image_size,
        "n_images": n_images,
        "seconds": round(seconds, 2),
        "images_per_second": round(n_images / seconds, 1),
        "disk_mb": round(disk_mb, 1),
        "prevalence": round(float(frame["clnm"].mean()), 3),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
