"""Speed of the fast DeLong test against scikit-learn's ``roc_auc_score``, and its scaling.

Goals (issue D): ``delong_test`` on 1,000,000 subjects takes at most 3x the time of
``sklearn.metrics.roc_auc_score`` on the same data, and its time grows as n log n
from 1e3 to 1e6 subjects.

``delong_test`` computes two AUCs, their DeLong variances and covariance, z, P and
the CI of the difference; ``roc_auc_score`` computes one AUC. The headline ratio
divides by ONE ``roc_auc_score`` call (the stricter comparison); the ratio to the
two calls that give the same two AUCs is reported too. Times are the best of
``--repeats`` runs (``time.perf_counter``); the data are two correlated continuous
scores, plus a heavily tied variant (scores rounded to 2 decimals) at the largest n.

Scaling: the exponent b of ``time ~ n^b`` fitted on log-log (n log n over 1e3-1e6
gives b close to 1.1; quadratic DeLong would give 2) and ``time / (n log2 n)`` per size.

Run: ``python benchmarks/bench_delong.py [--max-n 1000000] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import sklearn
from _meta import run_info, write_result  # benchmarks/_meta.py (scripts run from their folder)
from sklearn.metrics import roc_auc_score

from thyronet.metrics import delong_test

RESULTS = Path(__file__).resolve().parent / "results"


def _data(n: int, seed: int = 0, decimals: int | None = None):
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.3).astype(np.int64)
    shared = rng.normal(size=n)
    a = y * 1.0 + shared + rng.normal(0, 0.8, n)
    b = y * 0.8 + shared + rng.normal(0, 1.0, n)
    if decimals is not None:
        a, b = np.round(a, decimals), np.round(b, decimals)
    return y, a, b


def _best(func, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def _compare(n: int, repeats: int, decimals: int | None = None) -> dict:
    y, a, b = _data(n, decimals=decimals)
    test = delong_test(y, a, b)  # warm-up, and check that the AUCs agree
    sk_a, sk_b = roc_auc_score(y, a), roc_auc_score(y, b)
    assert abs(test.auc_a - sk_a) < 1e-12 and abs(test.auc_b - sk_b) < 1e-12
    t_delong = _best(lambda: delong_test(y, a, b), repeats)
    t_sklearn = _best(lambda: roc_auc_score(y, a), repeats)
    t_sklearn_two = _best(lambda: (roc_auc_score(y, a), roc_auc_score(y, b)), repeats)
    return {
        "n": n,
        "ties": f"rounded to {decimals} decimals" if decimals is not None else "none",
        "distinct_scores": int(np.unique(a).size),
        "delong_test_s": t_delong,
        "roc_auc_score_s": t_sklearn,
        "roc_auc_score_two_scores_s": t_sklearn_two,
        "ratio_to_one_roc_auc_score": t_delong / t_sklearn,
        "ratio_to_two_roc_auc_scores": t_delong / t_sklearn_two,
        "auc_a": test.auc_a,
        "auc_b": test.auc_b,
        "p_value": test.p_value,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS / "bench_delong.json")
    args = parser.parse_args(argv)

    sizes = [
        n
        for n in (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000, 10_000_000)
        if n <= args.max_n
    ]
    scaling = []
    for n in sizes:
        repeats = args.repeats if n >= 100_000 else max(args.repeats, 20)
        y, a, b = _data(n)
        delong_test(y, a, b)
        seconds = _best(lambda y=y, a=a, b=b: delong_test(y, a, b), repeats)
        scaling.append(
            {"n": n, "delong_test_s": seconds, "us_per_n_log2_n": seconds / (n * np.log2(n)) * 1e6}
        )
        print(
            f"n = {n:>9,}: delong_test {seconds * 1e3:9.2f} ms "
            f"({scaling[-1]['us_per_n_log2_n'] * 1e3:.3f} ns per n log2 n)"
        )
    logn = np.log([s["n"] for s in scaling])
    logt = np.log([s["delong_test_s"] for s in scaling])
    exponent = float(np.polyfit(logn, logt, 1)[0])
    big = [s for s in scaling if s["n"] >= 10_000]  # above the fixed per-call overhead
    exponent_large = (
        float(
            np.polyfit(np.log([s["n"] for s in big]), np.log([s["delong_test_s"] for s in big]), 1)[
                0
            ]
        )
        if len(big) >= 2
        else float("nan")
    )
    nlogn_exponent = float(np.polyfit(logn, np.log(np.exp(logn) * logn), 1)[0])

    head = _compare(sizes[-1], args.repeats)
    tied = _compare(sizes[-1], args.repeats, decimals=2)
    for row in (head, tied):
        print(
            f"n = {row['n']:,} (ties: {row['ties']}): delong_test "
            f"{row['delong_test_s'] * 1e3:.1f} ms, roc_auc_score "
            f"{row['roc_auc_score_s'] * 1e3:.1f} ms (two scores "
            f"{row['roc_auc_score_two_scores_s'] * 1e3:.1f} ms): ratio "
            f"{row['ratio_to_one_roc_auc_score']:.2f}x to one call, "
            f"{row['ratio_to_two_roc_auc_scores']:.2f}x to two"
        )
    print(
        f"scaling exponent (time ~ n^b) over {sizes[0]:,}-{sizes[-1]:,}: b = {exponent:.3f} "
        f"(n log n over this range: {nlogn_exponent:.3f}; quadratic: 2); "
        f"n >= 10,000: b = {exponent_large:.3f}"
    )
    result = {
        "benchmark": "bench_delong",
        **run_info(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "repeats": args.repeats,
        "goal_ratio": 3.0,
        "ratio_to_one_roc_auc_score": head["ratio_to_one_roc_auc_score"],
        "ratio_to_two_roc_auc_scores": head["ratio_to_two_roc_auc_scores"],
        "goal_met": bool(head["ratio_to_one_roc_auc_score"] <= 3.0),
        "headline": head,
        "tied": tied,
        "scaling": scaling,
        "scaling_exponent": exponent,
        "scaling_exponent_n_ge_1e4": exponent_large,
        "n_log_n_exponent_same_range": nlogn_exponent,
    }
    write_result(args.output, result)
    return result


if __name__ == "__main__":
    main()
