"""DeepFeatureExtractor's default path vs plain timm fp32 and the best manual path (ResNet101).

Goal (issue 16): wherever it runs, ``DeepFeatureExtractor`` with its defaults
(``precision="auto"``, ``channels_last="auto"``: the paths are timed on the first
images and the fastest kept, :mod:`thyronet.cnn._paths`) reaches >= 0.95x the images/s
of the best manual path and never less than a plain timm forward (fp32, NCHW,
``torch.no_grad``); on the Intel Xeon of issue 16, >= 1.2x plain. Measured in one
process on the same images and weights (ResNet101, 2 channels, 224 px). The manual
paths are hand-written ``inference_mode`` loops over the same module: fp32 and bf16
autocast, channels-last and NCHW. The pick's one-time cost (in ``fit``) is reported
as ``pick_seconds`` and excluded from the throughput. Timings alternate between the
paths (A B C ... A B C), ``--repeats`` times; medians are compared.

The hardware limit: a 2048x2048 GEMM's GFLOP/s in fp32 and bf16 measured in the same
run, and the network's FLOPs per image (``torch.utils.flop_counter``) give the
roofline images/s; ``roofline_fraction`` is how much of the roofline (in the
precision of the path) the best path and the default reach. ``torch.compile``
(inductor) of the default path is timed too, with its one-time compilation and the
number of images that pays it back (``compile.break_even_images``). It stays opt-in
(``compile=True``): it wins by more than 10% in the steady state, but its compilation
(per image shape; a C++ compiler needed) costs more than extracting a cohort of a few
hundred images saves. onnxruntime was not tried.

Also reported: the downstream AUC change of bf16 vs fp32 features on the synthetic
cohort (features -> PCA(64) -> logistic regression, train -> validation cohort, at
``--cohort-size`` px; 0 skips it). Weights are random unless ``--weights`` names a
local ResNet101 file (no download).

Run: ``python benchmarks/bench_feature_extraction.py [--images 64] [--repeats 2]``
"""

from __future__ import annotations

import argparse
import copy
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


def gemm_gflops(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """Best GFLOP/s of an ``n x n`` matrix product in fp32 and bf16 on this CPU."""
    import torch

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(n, n).to(dtype)
        b = torch.randn(n, n).to(dtype)
        torch.mm(a, b)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t0)
        out[name] = round(2 * n**3 / best / 1e9, 1)
    return out


def _flops_per_image(module, shape) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        module.forward_features(torch.zeros((1, *shape)))
    return float(counter.get_total_flops())


def _manual(module, precision: str, channels_last: bool, batch_size: int):
    """A hand-written inference loop over a copy of ``module`` in one path."""
    import torch

    net = copy.deepcopy(module).eval()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def run(images: np.ndarray) -> np.ndarray:
        out = []
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"),
        ):
            for start in range(0, len(images), batch_size):
                x = torch.from_numpy(images[start : start + batch_size])
                out.append(net.forward_features(x.contiguous(memory_format=fmt)).float().numpy())
        return np.concatenate(out)

    return run


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=2)
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
    t0 = time.perf_counter()
    default = DeepFeatureExtractor(cnn, fine_tune=False, batch_size=args.batch_size).fit(X)
    fit_seconds = time.perf_counter() - t0
    backbone = default.cnn_.net_.module_
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

    manual = {
        "fp32_channels_last": ("fp32", True),
        "bf16_channels_last": ("bf16", True),
        "bf16_nchw": ("bf16", False),
    }
    paths = {"plain_fp32": baseline, "thyronet": default.transform}
    for name, (precision, layout) in manual.items():
        paths[name] = _manual(backbone, precision, layout, args.batch_size)
    compiled = None
    if args.compile:
        compiled = DeepFeatureExtractor(
            FrozenEstimator(default.cnn_), batch_size=args.batch_size, compile=True
        ).fit(X)
        paths["thyronet_compile"] = compiled.transform
    features, warmup = {}, {}
    for name, fn in paths.items():  # warm-up (for compile=True: the compilation)
        t0 = time.perf_counter()
        features[name] = fn(X[: args.batch_size])
        warmup[name] = time.perf_counter() - t0
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, fn in paths.items():
            t0 = time.perf_counter()
            features[name] = fn(X)
            times[name].append(time.perf_counter() - t0)
    n = len(X)
    rate = {name: n / statistics.median(v) for name, v in times.items()}
    manual_rates = {k: rate[k] for k in ("plain_fp32", *manual)}
    best_manual = max(manual_rates, key=manual_rates.get)
    cosine = _cosine(features["thyronet"], features["plain_fp32"])

    gemm = gemm_gflops()
    gflop = _flops_per_image(backbone, X.shape[1:]) / 1e9
    roofline = {p: round(gemm[p] / gflop, 2) for p in gemm}  # images/s at the GEMM rate

    def fraction(name: str, precision: str) -> float:
        return round(rate[name] / roofline[precision], 3)

    best_precision = "bf16" if best_manual.startswith("bf16") else "fp32"
    compile_figures = None
    if compiled is not None:
        gain = rate["thyronet_compile"] / rate["thyronet"]
        saved = 1 / rate["thyronet"] - 1 / rate["thyronet_compile"]  # seconds per image
        compile_figures = {
            "speedup_vs_default": round(gain, 3),
            "compile_seconds": round(warmup["thyronet_compile"], 1),
            "break_even_images": int(warmup["thyronet_compile"] / saved) if saved > 0 else None,
            "cosine_mean": round(
                float(_cosine(features["thyronet_compile"], features["plain_fp32"]).mean()), 5
            ),
            "wins_by_over_10pct": bool(gain > 1.10),
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
                FrozenEstimator(default.cnn_), precision=precision, batch_size=32
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

    vs_plain = rate["thyronet"] / rate["plain_fp32"]
    vs_best = rate["thyronet"] / rate[best_manual]
    result = {
        "benchmark": "bench_feature_extraction",
        **run_info(),
        "backbone": "resnet101",
        "weights": "local file" if args.weights else "random (no download)",
        "images": n,
        "image_shape": list(X.shape[1:]),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "thyronet_path": str(default.path_),
        "pick_images_per_s": default.path_.images_per_s,
        "pick_seconds": round(fit_seconds, 1),
        "cpu_fast_bf16_flag": fast_bf16_available("cpu"),
        "images_per_s": {k: round(v, 2) for k, v in rate.items()},
        "best_manual_path": best_manual,
        "thyronet_vs_plain": round(vs_plain, 3),
        "thyronet_vs_best_manual": round(vs_best, 3),
        "gemm_2048_gflops": gemm,
        "gflop_per_image": round(gflop, 2),
        "roofline_images_per_s": roofline,
        "roofline_fraction": {
            "best_manual": fraction(best_manual, best_precision),
            "thyronet": fraction("thyronet", default.path_.precision),
        },
        "cosine_mean": round(float(cosine.mean()), 5),
        "cosine_min": round(float(cosine.min()), 5),
        "compile": compile_figures,
        "onnxruntime": "not tried",
        "downstream": downstream,
        "goal_vs_plain": 1.0,
        "goal_vs_best_manual": 0.95,
        "goal_met": bool(vs_plain >= 1.0 and vs_best >= 0.95 and cosine.min() >= 0.999),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_feature_extraction.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
