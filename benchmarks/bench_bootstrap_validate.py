"""Harrell's bootstrap validation of the clinical pipeline: time of 1,000 refits, n_jobs=2 vs 1.

Goal (issue I): ``bootstrap_validate(make_clinical_model(), cohort, y,
n_bootstrap=1000)`` on the 461 patients of the synthetic PTMC cohort (clinical
table only; images are not used by the clinical model, so 16 px frames are
generated). Every refit runs the whole pipeline: clinical encoding, scaling,
P-value filter, LASSO (cross-validated) and the classifier selection (CV over
logistic regression, LightGBM and naive Bayes), at the pipeline's default
settings unless ``--alphas`` / ``--cv`` lighten them.

Reported: wall time with ``n_jobs=1`` and ``n_jobs=2`` (the same bootstrap
samples, the same result), the speed-up, seconds per refit, the corrected AUC,
the time 1,000 refits take at the measured rate (when ``--n-bootstrap`` is
smaller), and the 1-minute load average before and after each run: on a
machine shared with other work (``machine_loaded``) the speed-up understates
what two free cores give.

Run: ``python benchmarks/bench_bootstrap_validate.py [--n-bootstrap 1000] [--patients 461]``
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from _meta import run_info, write_result  # benchmarks/_meta.py (scripts run from their folder)

from thyronet.datasets import make_ptmc_cohort
from thyronet.metrics import bootstrap_validate
from thyronet.pipelines import make_clinical_model

RESULTS = Path(__file__).resolve().parent / "results"


def _run(cohort, n_bootstrap: int, n_jobs: int, alphas, cv) -> tuple[float, dict]:
    model = make_clinical_model()
    if alphas is not None:
        model.set_params(lasso__alphas=alphas)
    if cv is not None:
        model.set_params(classify__cv=cv)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    table = bootstrap_validate(
        model, cohort, cohort["clnm"], n_bootstrap=n_bootstrap, random_state=0, n_jobs=n_jobs
    )
    seconds = time.perf_counter() - start
    return seconds, {
        "n_jobs": n_jobs,
        "seconds": seconds,
        "seconds_per_refit": seconds / (n_bootstrap + 1),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "table": table,
    }


def machine_loaded(runs: dict) -> bool:
    """Whether other work shared the machine: load before the first run, or more load
    during a run than its own ``n_jobs`` processes explain (the n_jobs=2 run starts
    with the load the n_jobs=1 run left, which is not other work)."""
    first = runs[min(runs)]
    return first["load_average_before"] > 0.5 or any(
        r["load_average_after"] > r["n_jobs"] + 0.5 for r in runs.values()
    )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--patients", type=int, default=461)
    parser.add_argument("--alphas", type=int, default=None, help="LASSO path length")
    parser.add_argument("--cv", type=int, default=None, help="folds of the classifier selection")
    parser.add_argument("--output", type=Path, default=RESULTS / "bench_bootstrap_validate.json")
    args = parser.parse_args(argv)

    cohort = make_ptmc_cohort(n_patients=args.patients, image_size=16, random_state=0)
    runs = {}
    for n_jobs in (1, 2):
        seconds, run = _run(cohort, args.n_bootstrap, n_jobs, args.alphas, args.cv)
        runs[n_jobs] = run
        print(
            f"n_jobs={n_jobs}: {seconds:.1f} s for {args.n_bootstrap} refits "
            f"(load average {run['load_average_before']:.1f} -> {run['load_average_after']:.1f})"
        )
    pd.testing.assert_frame_equal(runs[1]["table"], runs[2]["table"])  # same samples, same result
    table = runs[1].pop("table")
    runs[2].pop("table")
    speedup = runs[1]["seconds"] / runs[2]["seconds"]
    loaded = machine_loaded(runs)
    print(
        f"speed-up n_jobs=2 over n_jobs=1: {speedup:.2f}x; corrected AUC "
        f"{table.loc['auc', 'corrected']:.3f} (apparent {table.loc['auc', 'apparent']:.3f})"
    )
    result = {
        "benchmark": "bench_bootstrap_validate",
        **run_info(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "patients": args.patients,
        "n_bootstrap": args.n_bootstrap,
        "lasso_alphas": args.alphas if args.alphas is not None else "pipeline default",
        "classifier_cv": args.cv if args.cv is not None else "pipeline default",
        "seconds_n_jobs_1": runs[1]["seconds"],
        "seconds_n_jobs_2": runs[2]["seconds"],
        "speedup_n_jobs_2": speedup,
        "seconds_1000_refits_n_jobs_1_at_this_rate": runs[1]["seconds_per_refit"] * 1001,
        "seconds_1000_refits_n_jobs_2_at_this_rate": runs[2]["seconds_per_refit"] * 1001,
        "machine_loaded": bool(loaded),
        "runs": [runs[1], runs[2]],
        "auc": {k: float(v) for k, v in table.loc["auc"].items()},
        "slope": {k: float(v) for k, v in table.loc["slope"].items()},
    }
    write_result(args.output, result)
    return result


if __name__ == "__main__":
    main()
