"""Training throughput beside one CPU-bound process, as a fraction of the idle figure.

Goal (issue 16): one small fixed ``SkorchCNN`` training epoch (``--backbone`` at
``--size`` px, ``--images`` images, fp32) runs at >= 0.40 of its idle throughput
while one competing CPU-bound process (a pure-Python busy loop this script starts
and stops itself) runs. Each configuration trains in a fresh process (OpenMP reads
its settings at start-up): a warm-up epoch, then ``--epochs`` timed ones; idle and
busy runs alternate (idle, busy, idle, busy...) ``--rounds`` times and the median
epoch times are compared. ``thyronet`` is the library's default (it sets
``OMP_WAIT_POLICY=PASSIVE`` when imported before torch, :mod:`thyronet._threads`); the
other rows are the causes tried: ``libgomp_default`` (libgomp's own default, spinning
300000 rounds at each barrier: thyronet's behaviour before), ``spin``
(``OMP_WAIT_POLICY=ACTIVE``), ``spincount_10k`` (a short spin, then sleep) and
``threads_1`` (one intra-op thread).

Other processes may share these CPUs, so "idle" means "without the burner".

Run: ``python benchmarks/bench_contention.py [--rounds 2] [--epochs 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _meta import USER_OMP_WAIT_POLICY, run_info  # benchmarks/_meta.py

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = {
    "thyronet": {},
    "libgomp_default": {"GOMP_SPINCOUNT": "300000"},
    "spin": {"OMP_WAIT_POLICY": "ACTIVE"},
    "spincount_10k": {"GOMP_SPINCOUNT": "10000"},
    "threads_1": {"THYRONET_BENCH_THREADS": "1"},
}
# a busy loop that also ends on its own (10 minutes), should this script be killed
_BURNER = "import time\nend = time.time() + 600\nwhile time.time() < end:\n    pass\n"


def _child(args) -> None:
    """Train ``1 + epochs`` one-epoch fits and print the timed epochs' seconds (JSON)."""
    import numpy as np

    from thyronet import SkorchCNN

    threads = os.environ.get("THYRONET_BENCH_THREADS")
    rng = np.random.default_rng(0)
    X = rng.random((args.images, 2, args.size, args.size), dtype=np.float32)
    y = (np.arange(args.images) % 2).astype(np.int64)
    cnn = SkorchCNN(
        args.backbone,
        max_epochs=1,
        batch_size=args.batch_size,
        augment=False,
        early_stopping=False,
        validation_fraction=None,
        precision="fp32",
        device="cpu",
        num_threads=int(threads) if threads else None,
        random_state=0,
    )
    cnn.fit(X, y)  # warm-up
    times = []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        cnn.fit(X, y)
        times.append(time.perf_counter() - t0)
    print(json.dumps(times))


def _run(config: dict, args, busy: bool) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if USER_OMP_WAIT_POLICY is not None:  # the children start with the user's environment
        env["OMP_WAIT_POLICY"] = USER_OMP_WAIT_POLICY
    env.update(config)
    burner = subprocess.Popen([sys.executable, "-c", _BURNER]) if busy else None
    try:
        cmd = [sys.executable, __file__, "--child", *_child_args(args)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    finally:
        if burner is not None:
            burner.terminate()
            burner.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def _child_args(args) -> list[str]:
    return [
        f"--backbone={args.backbone}",
        f"--images={args.images}",
        f"--size={args.size}",
        f"--batch-size={args.batch_size}",
        f"--epochs={args.epochs}",
    ]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--configs", default="thyronet,libgomp_default", help=f"comma-separated of {list(CONFIGS)}"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return {}

    import torch

    names = args.configs.split(",")
    times = {name: {"idle": [], "busy": []} for name in names}
    for _ in range(args.rounds):
        for name in names:
            for state in ("idle", "busy"):
                times[name][state] += _run(CONFIGS[name], args, busy=state == "busy")
    figures = {}
    for name, runs in times.items():
        idle, busy = statistics.median(runs["idle"]), statistics.median(runs["busy"])
        figures[name] = {
            "epoch_seconds_idle": round(idle, 3),
            "epoch_seconds_busy": round(busy, 3),
            "throughput_ratio": round(idle / busy, 3),
        }
    ratio = figures[names[0]]["throughput_ratio"]
    result = {
        "benchmark": "bench_contention",
        **run_info(),
        "backbone": args.backbone,
        "images": args.images,
        "image_shape": [2, args.size, args.size],
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "rounds": args.rounds,
        "torch_threads_default": torch.get_num_threads(),
        "configs": figures,
        "epoch_seconds_all": times,
        "ratio": ratio,
        "goal_ratio": 0.40,
        "goal_met": bool(ratio >= 0.40),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_contention.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
