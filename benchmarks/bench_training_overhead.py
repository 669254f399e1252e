"""Time of one SkorchCNN training epoch vs a hand-written PyTorch loop on the same work.

Goal (issue B): ``SkorchCNN.fit`` for one epoch takes at most 1.10x the time of a
hand-written loop with the identical model (same backbone, initial weights,
channels-last layout, fp32), data, batch size, optimizer (AdamW) and loss, with
augmentation, validation and the learning-rate schedule off. Both sides include
building the model. The two are timed alternately ``--repeats`` times and the
medians compared (other processes share these CPUs).

Run: ``python benchmarks/bench_training_overhead.py [--images 128] [--size 64]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from _meta import run_info  # benchmarks/_meta.py (scripts run from their folder)

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    import torch

    from thyronet import SkorchCNN
    from thyronet.backbones import get_backbone

    rng = np.random.default_rng(0)
    X = rng.random((args.images, 2, args.size, args.size), dtype=np.float32)
    y = (np.arange(args.images) % 2).astype(np.int64)
    lr, weight_decay, seed = 1e-3, 1e-2, 0

    estimator = SkorchCNN(
        args.backbone,
        lr=lr,
        weight_decay=weight_decay,
        max_epochs=1,
        batch_size=args.batch_size,
        augment=False,
        early_stopping=False,
        validation_fraction=None,
        lr_schedule="constant",
        warmup_epochs=0,
        precision="fp32",
        channels_last=True,
        device=args.device,
        random_state=seed,
        verbose=0,
    )

    def thyronet_epoch() -> float:
        model = estimator.fit(X, y)
        return float(model.net_.history[-1, "train_loss"])

    def hand_epoch() -> float:
        torch.manual_seed(seed)
        net = get_backbone(args.backbone).build_net(in_chans=2, num_classes=1)
        net = net.to(args.device).to(memory_format=torch.channels_last).train()
        optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
        criterion = torch.nn.BCEWithLogitsLoss()
        order = torch.randperm(len(X)).numpy()
        total, count = 0.0, 0
        for start in range(0, len(X), args.batch_size):
            rows = np.sort(order[start : start + args.batch_size])
            xb = torch.from_numpy(X[rows]).to(args.device)
            xb = xb.contiguous(memory_format=torch.channels_last)
            yb = torch.from_numpy(y[rows].astype(np.float32)).to(args.device)
            optimizer.zero_grad()
            loss = criterion(net(xb).reshape(-1), yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
            count += len(rows)
        return total / count

    runs = {"hand_written": hand_epoch, "thyronet": thyronet_epoch}
    for fn in runs.values():  # warm-up (allocator, oneDNN primitives)
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    losses: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            losses[name] = fn()
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(v) for name, v in times.items()}
    ratio = med["thyronet"] / med["hand_written"]
    result = {
        "benchmark": "bench_training_overhead",
        **run_info(),
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "backbone": args.backbone,
        "images": args.images,
        "image_shape": [2, args.size, args.size],
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "epoch_seconds": {k: round(v, 3) for k, v in med.items()},
        "epoch_seconds_all": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "train_loss": {k: round(v, 5) for k, v in losses.items()},
        "ratio_thyronet_to_hand": round(ratio, 3),
        "goal_ratio": 1.10,
        "goal_met": bool(ratio <= 1.10),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_training_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
