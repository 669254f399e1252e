"""ResNet101 on a GPU: thyronet's training and feature extraction vs plain PyTorch AMP loops.

For a lent GPU (finishes in well under 5 minutes on one H100): trains ResNet101
(2 channels, 224 px, random weights and images) for ``--epochs`` epochs with
``SkorchCNN`` (bf16 autocast and channels-last by default on CUDA; augmentation,
validation and the LR schedule off) and with a hand-written bf16-autocast loop on
the same data, batch size and optimizer; then extracts penultimate features with
``DeepFeatureExtractor`` and with a plain ``torch.autocast`` + ``inference_mode``
loop. Reports images/s of each and thyronet's ratio to the plain loop (1.0 = no
overhead). ``--dry-run`` is a smoke test on the CPU with tiny settings (the
``test_resnet`` backbone, 32 px, 64 images; nothing written):
``python benchmarks/gpu_resnet101.py --dry-run``. The feature extractor's path is
measured (``precision="auto"``) in its ``fit`` on the first batch; the results
record it and the machine (:func:`_meta.run_info`).

Run: ``python benchmarks/gpu_resnet101.py`` (writes ``results/gpu_resnet101.json``)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _meta import run_info  # benchmarks/_meta.py (scripts run from their folder)

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--images", type=int, default=2048, help="training images")
    parser.add_argument("--extract-images", type=int, default=4096)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--extract-batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dry-run", action="store_true", help="tiny CPU smoke test, no file")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.device, args.backbone, args.size = "cpu", "test_resnet", 32
        args.images = args.extract_images = args.extract_batch_size = 64

    import torch
    from sklearn.frozen import FrozenEstimator

    from thyronet import DeepFeatureExtractor, SkorchCNN
    from thyronet.backbones import get_backbone

    cuda = torch.device(args.device).type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --device cpu for a smoke test")
    torch.backends.cudnn.benchmark = True

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    rng = np.random.default_rng(0)
    X = rng.random((args.images, 2, args.size, args.size), dtype=np.float32)
    y = (np.arange(args.images) % 2).astype(np.int64)
    X_extract = rng.random((args.extract_images, 2, args.size, args.size), dtype=np.float32)
    lr, weight_decay = 1e-3, 1e-2
    autocast_dtype = torch.bfloat16

    def thyronet_fit(images, labels, epochs):
        return SkorchCNN(
            args.backbone,
            lr=lr,
            weight_decay=weight_decay,
            max_epochs=epochs,
            batch_size=args.batch_size,
            augment=False,
            early_stopping=False,
            validation_fraction=None,
            lr_schedule="constant",
            warmup_epochs=0,
            device=args.device,
            random_state=0,
            verbose=0,
        ).fit(images, labels)

    def plain_fit(images, labels, epochs):
        torch.manual_seed(0)
        net = get_backbone(args.backbone).build_net(in_chans=2, num_classes=1)
        net = net.to(args.device).to(memory_format=torch.channels_last).train()
        optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
        criterion = torch.nn.BCEWithLogitsLoss()
        for _ in range(epochs):
            order = torch.randperm(len(images)).numpy()
            for start in range(0, len(images), args.batch_size):
                rows = np.sort(order[start : start + args.batch_size])
                xb = torch.from_numpy(images[rows]).to(args.device, non_blocking=True)
                xb = xb.contiguous(memory_format=torch.channels_last)
                yb = torch.from_numpy(labels[rows].astype(np.float32)).to(args.device)
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(
                    device_type=torch.device(args.device).type, dtype=autocast_dtype, enabled=cuda
                ):
                    logits = net(xb).reshape(-1)
                loss = criterion(logits.float(), yb)
                loss.backward()
                optimizer.step()
        sync()
        return net

    def timed(fn, *fn_args):
        sync()
        t0 = time.perf_counter()
        out = fn(*fn_args)
        sync()
        return out, time.perf_counter() - t0

    # warm-up both (cuDNN autotuning, allocator) on a few batches
    warm = min(len(X), 2 * args.batch_size)
    timed(plain_fit, X[:warm], y[:warm], 1)
    timed(thyronet_fit, X[:warm], y[:warm], 1)
    plain_net, plain_train_s = timed(plain_fit, X, y, args.epochs)
    cnn, thyronet_train_s = timed(thyronet_fit, X, y, args.epochs)
    trained = args.images * args.epochs

    extractor = DeepFeatureExtractor(FrozenEstimator(cnn), batch_size=args.extract_batch_size).fit(
        X_extract[: args.extract_batch_size]
    )

    def plain_extract(images):
        net = plain_net.eval()
        out = np.empty((len(images), net.model.num_features), np.float32)
        with (
            torch.inference_mode(),
            torch.autocast(
                device_type=torch.device(args.device).type, dtype=autocast_dtype, enabled=cuda
            ),
        ):
            for start in range(0, len(images), args.extract_batch_size):
                xb = torch.from_numpy(images[start : start + args.extract_batch_size])
                xb = xb.to(args.device, non_blocking=True)
                xb = xb.contiguous(memory_format=torch.channels_last)
                out[start : start + len(xb)] = net.forward_features(xb).float().cpu().numpy()
        return out

    warm = min(len(X_extract), args.extract_batch_size)
    timed(plain_extract, X_extract[:warm])
    timed(extractor.transform, X_extract[:warm])
    _, plain_extract_s = timed(plain_extract, X_extract)
    _, thyronet_extract_s = timed(extractor.transform, X_extract)
    n_extract = len(X_extract)

    info = run_info()
    if cuda:
        info["machine"] = info["machine_kind"] = f"{torch.cuda.get_device_name()} (cuda)"
        info["cuda"] = torch.version.cuda
    result = {
        "benchmark": "gpu_resnet101",
        **info,
        "backbone": args.backbone,
        "image_shape": [2, args.size, args.size],
        "train_images": args.images,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "extract_images": n_extract,
        "extract_batch_size": args.extract_batch_size,
        "thyronet_precision": "bf16" if cnn.net_.autocast else "fp32",
        "thyronet_extract_path": str(extractor.path_),
        "extract_path_images_per_s": extractor.path_.images_per_s,
        "train_images_per_s": {
            "plain_amp_loop": round(trained / plain_train_s, 1),
            "thyronet": round(trained / thyronet_train_s, 1),
        },
        "extract_images_per_s": {
            "plain_amp_loop": round(n_extract / plain_extract_s, 1),
            "thyronet": round(n_extract / thyronet_extract_s, 1),
        },
        "train_ratio_thyronet_to_plain_time": round(thyronet_train_s / plain_train_s, 3),
        "extract_ratio_thyronet_to_plain_time": round(thyronet_extract_s / plain_extract_s, 3),
    }
    print(json.dumps(result, indent=2))
    if args.dry_run:
        return result
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gpu_resnet101.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
