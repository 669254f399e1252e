"""DeepFeatureExtractor.transform throughput vs a plain timm fp32 forward (ResNet101, 224 px).

Goal (issue B): on a 2-core CPU, ``DeepFeatureExtractor.transform`` on ResNet101 at 224
px with 2 channels runs >= 3.0x the images/s of a plain timm forward (fp32, default
memory format, ``torch.no_grad``) on the same data and weights, in the same process; the
fast path's features stay faithful (mean cosine similarity to fp32 >= 0.99).
``thyronet`` is the default (eager) path; ``thyronet_compile`` the same with
``compile=True`` (``torch.compile``), whose one-time compilation is reported separately
(``compile.compile_seconds``) and excluded from its throughput. Timings alternate
between the paths, ``--repeats`` times, and the medians are compared (other processes
share these CPUs). Also reported: the channels-last-only (fp32) path, and the downstream
AUC change of the fast path on the synthetic cohort (ResNet101 features -> PCA(64) ->
logistic regression, train cohort -> validation cohort, at ``--cohort-size`` px).

Weights are random unless ``--weights`` names a local ResNet101 file (no download).

Run: ``python benchmarks/bench_feature_extraction.py [--images 32] [--repeats 3]``
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


def _fused(n: int, size: int, seed: int = 0):
    from thyronet import DualChannelFuser
    from thyronet.datasets import make_ptmc_cohort

    cohort = make_ptmc_cohort(n_patients=n, image_size=size, random_state=seed)
    images = DualChannelFuser(image_size=size).fit_transform(cohort)
    return cohort, images


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--weights", default=None, help="local ResNet101 weights file")
    parser.add_argument(
        "--no-compile",
        dest="compile",
        action="store_false",
        help="skip the compile=True path (saves its ~40 s compilation)",
    )
    parser.add_argument("--cohort-patients", type=int, default=461)
    parser.add_argument(
        "--cohort-size",
        type=int,
        default=96,
        help="image size for the downstream-AUC part (0 skips it)",
    )
    args = parser.parse_args(argv)

    import timm
    import torch
    from sklearn.frozen import FrozenEstimator

    from thyronet import DeepFeatureExtractor, SkorchCNN
    from thyronet.features import fast_bf16_available

    _, X = _fused(args.images, args.size)
    cnn = SkorchCNN(
        "resnet101", pretrained=args.weights or False, random_state=0, device="cpu", verbose=0
    )
    fast = DeepFeatureExtractor(cnn, fine_tune=False, batch_size=args.batch_size).fit(X)
    cl_fp32 = DeepFeatureExtractor(
        FrozenEstimator(fast.cnn_), precision="fp32", batch_size=args.batch_size
    ).fit(X)
    compiled = DeepFeatureExtractor(
        FrozenEstimator(fast.cnn_), batch_size=args.batch_size, compile=True
    ).fit(X)
    backbone = fast.cnn_.net_.module_
    # the plain baseline: same weights and normalisation, timm defaults otherwise
    plain = timm.create_model("resnet101", in_chans=X.shape[1], num_classes=0).eval()
    state = {k: v for k, v in backbone.model.state_dict().items() if not k.startswith("fc.")}
    plain.load_state_dict(state)
    mean, std = backbone.mean.clone().contiguous(), backbone.std.clone().contiguous()

    def baseline(images: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for start in range(0, len(images), args.batch_size):
                x = torch.from_numpy(images[start : start + args.batch_size])
                out.append(plain((x - mean) / std).numpy())
        return np.concatenate(out)

    paths = {
        "plain_fp32": baseline,
        "thyronet": fast.transform,
        "thyronet_channels_last_fp32": cl_fp32.transform,
    }
    if args.compile:
        paths["thyronet_compile"] = compiled.transform
    features, warmup = {}, {}
    for name, fn in paths.items():  # warm-up (for compile=True: the compilation)
        t0 = time.perf_counter()
        features[name] = fn(X[: args.batch_size])
        warmup[name] = time.perf_counter() - t0
    times: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, fn in paths.items():
            t0, c0 = time.perf_counter(), time.process_time()
            features[name] = fn(X)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    med = {name: statistics.median(v) for name, v in times.items()}
    med_cpu = {name: statistics.median(v) for name, v in cpu.items()}
    speedup = med["plain_fp32"] / med["thyronet"]
    cosine = _cosine(features["thyronet"], features["plain_fp32"])
    compile_figures = None
    if args.compile:
        rate = {k: len(X) / v for k, v in med.items()}
        gain = 1 / rate["thyronet"] - 1 / rate["thyronet_compile"]  # seconds saved per image
        compile_figures = {
            "speedup_vs_plain": round(med["plain_fp32"] / med["thyronet_compile"], 2),
            "compile_seconds": round(warmup["thyronet_compile"], 1),
            "break_even_images": int(warmup["thyronet_compile"] / gain) if gain > 0 else None,
            "cosine_mean": round(
                float(_cosine(features["thyronet_compile"], features["plain_fp32"]).mean()), 5
            ),
        }

    downstream = None
    if args.cohort_size:
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        cohort, images = _fused(args.cohort_patients, args.cohort_size)
        train = (cohort["cohort"] == "train").to_numpy()
        valid = (cohort["cohort"] == "validation").to_numpy()
        y = cohort["clnm"].to_numpy()
        aucs = {}
        t0 = time.perf_counter()
        for precision in ("fp32", "bf16"):
            extractor = DeepFeatureExtractor(
                FrozenEstimator(fast.cnn_), precision=precision, batch_size=32
            ).fit(images)
            feats = extractor.transform(images)
            model = make_pipeline(
                StandardScaler(),
                PCA(min(64, int(train.sum()) - 1), random_state=0),
                LogisticRegression(max_iter=2000),
            )
            model.fit(feats[train], y[train])
            proba = model.predict_proba(feats[valid])[:, 1]
            aucs[precision] = float(roc_auc_score(y[valid], proba))
        downstream = {
            "patients": args.cohort_patients,
            "image_size": args.cohort_size,
            "validation_auc_fp32": round(aucs["fp32"], 4),
            "validation_auc_bf16": round(aucs["bf16"], 4),
            "auc_change": round(aucs["bf16"] - aucs["fp32"], 4),
            "seconds": round(time.perf_counter() - t0, 1),
        }

    n = len(X)
    result = {
        "benchmark": "bench_feature_extraction",
        **run_info(),
        "torch_threads": torch.get_num_threads(),
        "backbone": "resnet101",
        "weights": "local file" if args.weights else "random (no download)",
        "images": n,
        "image_shape": list(X.shape[1:]),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "thyronet_precision": fast.precision_,
        "cpu_fast_bf16": fast_bf16_available("cpu"),
        "images_per_s": {k: round(n / v, 2) for k, v in med.items()},
        "cpu_seconds_per_image": {k: round(v / n, 3) for k, v in med_cpu.items()},
        "speedup_vs_plain": round(speedup, 2),
        "speedup_channels_last_only": round(
            med["plain_fp32"] / med["thyronet_channels_last_fp32"], 2
        ),
        "speedup_cpu_time": round(med_cpu["plain_fp32"] / med_cpu["thyronet"], 2),
        "cosine_mean": round(float(cosine.mean()), 5),
        "cosine_min": round(float(cosine.min()), 5),
        "compile": compile_figures,
        "downstream": downstream,
        "goal_speedup": 3.0,
        "goal_cosine": 0.99,
        "goal_met": bool(speedup >= 3.0 and cosine.mean() >= 0.99),
        "goal_met_with_compile": bool(
            compile_figures is not None
            and compile_figures["speedup_vs_plain"] >= 3.0
            and compile_figures["cosine_mean"] >= 0.99
        ),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_feature_extraction.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
