"""Peak memory of fusing a large cohort at 224 px with ``output="memmap"``.

Goal (issue A): fusing 10,000 patients at 224 px keeps peak memory under 1.5 GB.
The fused result alone is 10,000 x 2 x 224 x 224 float32 = 4.0 GB, so it has to
stream to disk. Image files: a synthetic cohort of ``--distinct`` patients written
to disk once, its rows repeated to ``--patients`` rows (every row is still read,
cropped, resized and fused from its file). Peak memory is the fusing child
process's maximum resident set size, also measured for ``output="array"`` at a
small size for comparison.

Run: ``python benchmarks/bench_fuse_memmap.py [--patients 10000]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _meta import run_info  # benchmarks/_meta.py (scripts run from their folder)

RESULTS = Path(__file__).resolve().parent / "results"

CHILD = r"""
import json, resource, sys, time
import pandas as pd
from thyronet.datasets import load_cohort
from thyronet.fusion import DualChannelFuser
manifest, n, output, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
base = load_cohort(manifest)
frame = pd.concat([base] * (n // len(base) + 1), ignore_index=True).iloc[:n]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
fused = DualChannelFuser(image_size=224, output=output, memmap_dir=folder, batch_size=64,
                         n_jobs=2).fit_transform(frame)
seconds = time.perf_counter() - t0
print(json.dumps({"shape": list(fused.shape), "seconds": seconds,
                  "rss_before_mb": before / 1024,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run(manifest: Path, n: int, output: str, folder: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(manifest), str(n), output, str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--distinct", type=int, default=200)
    parser.add_argument("--small", type=int, default=1_000, help="patients for array output")
    args = parser.parse_args(argv)

    from thyronet.datasets import make_ptmc_cohort

    with tempfile.TemporaryDirectory(prefix="bench-fuse-") as tmp:
        tmp = Path(tmp)
        make_ptmc_cohort(
            n_patients=args.distinct, image_size=224, out_dir=tmp / "cohort", random_state=0
        )
        manifest = tmp / "cohort" / "manifest.csv"
        memmap = _run(manifest, args.patients, "memmap", tmp / "fused")
        array = _run(manifest, args.small, "array", tmp / "fused")
    result = {
        "benchmark": "bench_fuse_memmap",
        **run_info(),
        "patients": args.patients,
        "output_gb": memmap["shape"][0] * 2 * 224 * 224 * 4 / 1e9,
        "memmap_peak_rss_mb": round(memmap["peak_rss_mb"], 1),
        "memmap_rss_before_fuse_mb": round(memmap["rss_before_mb"], 1),
        "memmap_seconds": round(memmap["seconds"], 1),
        "memmap_patients_per_s": round(args.patients / memmap["seconds"], 1),
        "array_patients": args.small,
        "array_peak_rss_mb": round(array["peak_rss_mb"], 1),
        "goal_peak_mb": 1536,
        "goal_met": memmap["peak_rss_mb"] < 1536,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_fuse_memmap.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
