"""Scaling of fuse + extract with the number of patients: time per patient and peak memory.

Fuses 100, 1,000 and 10,000 patients (small 64 px views, ``output="memmap"``) and
extracts deep features with the tiny registered backbone (``test_resnet``, not
fine-tuned), each size in its own process. Image files: a synthetic cohort of
``--distinct`` patients on disk, its rows repeated (every row is still read,
cropped, resized, fused and extracted). Cost should grow linearly (flat time per
patient) and, with memmap output, peak memory should stay flat.

Run: ``python benchmarks/bench_scaling.py``
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
import torch
from thyronet import DeepFeatureExtractor, DualChannelFuser, SkorchCNN
from thyronet.datasets import load_cohort
manifest, n, folder, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
base = load_cohort(manifest)
frame = pd.concat([base] * (n // len(base) + 1), ignore_index=True).iloc[:n]
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
fused = DualChannelFuser(image_size=size, output="memmap", memmap_dir=folder,
                         batch_size=256).fit_transform(frame)
t1 = time.perf_counter()
extractor = DeepFeatureExtractor(SkorchCNN("test_resnet", pretrained=False, random_state=0),
                                 fine_tune=False, batch_size=256)
features = extractor.fit(fused[:2]).transform(fused)
t2 = time.perf_counter()
print(json.dumps({"n": n, "fuse_s": t1 - t0, "extract_s": t2 - t1,
                  "features": list(features.shape), "baseline_rss_mb": baseline / 1024,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--distinct", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args(argv)

    from thyronet.datasets import make_ptmc_cohort

    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        tmp = Path(tmp)
        make_ptmc_cohort(
            n_patients=args.distinct,
            image_size=args.image_size * 2,
            out_dir=tmp / "cohort",
            random_state=0,
        )
        for n in args.sizes:
            folder = tmp / f"fused-{n}"
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    str(tmp / "cohort" / "manifest.csv"),
                    str(n),
                    str(folder),
                    str(args.image_size),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            run = json.loads(proc.stdout.strip().splitlines()[-1])
            run["ms_per_patient"] = 1000 * (run["fuse_s"] + run["extract_s"]) / n
            runs.append(run)
            print(json.dumps(run), flush=True)
    small, large = runs[0], runs[-1]
    result = {
        "benchmark": "bench_scaling",
        **run_info(),
        "image_size": args.image_size,
        "backbone": "test_resnet (not fine-tuned)",
        "runs": [
            {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in runs
        ],
        "time_per_patient_ratio_largest_to_smallest": round(
            large["ms_per_patient"] / small["ms_per_patient"], 3
        ),
        "peak_memory_ratio_largest_to_smallest": round(
            large["peak_rss_mb"] / small["peak_rss_mb"], 3
        ),
        "note": "peak RSS counts the pages of the memory-mapped fused array that extraction "
        "has read (file-backed, reclaimable); anonymous memory stays per batch",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_scaling.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
