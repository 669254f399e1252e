"""Coin-flip labels: the combined model's apparent AUC, in-sample vs cross-fitted deep features.

Issue H's check of the protocol. The synthetic cohort's labels are replaced by coin
flips, so no model can predict them and every apparent (training) AUC above 0.5 is
optimism. For each size and seed the combined model
(:func:`thyronet.pipelines.make_combined_model`, its CNN fine-tuned for 15 epochs
so that it memorises the noise) is fitted twice:

- ``in_sample``: ``cv=None`` (the paper's protocol): PCA, the P-value filter,
  LASSO and the classifier learn from features of the CNN fitted on the same
  patients;
- ``cross_fitted``: ``cv=3``: they learn from out-of-fold features.

Recorded per run: the AUC of the classifier on the features it was fitted on (the
apparent AUC the study reports), for the cross-fitted model also the AUC of
``predict_proba`` on the training patients (their features then come from the CNN
fitted on all of them: neither what the classifier learned from nor what a new
patient gets), and the clinical model's apparent AUC on the same labels (the
optimism that selection among 13 clinical indicators alone gives). Goal: the
cross-fitted apparent AUC within 0.5 +/- 0.1.

Run: ``python benchmarks/bench_noise_labels.py [--patients 120 300] [--seeds 5]``
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from _meta import run_info, write_result  # benchmarks/_meta.py (scripts run from their folder)
from sklearn.metrics import roc_auc_score

from thyronet.datasets import make_ptmc_cohort
from thyronet.pipelines import make_clinical_model, make_combined_model

RESULTS = Path(__file__).resolve().parent / "results"
CNN = {
    "image_size": 32,
    "backbone": "test_resnet",
    "max_epochs": 15,
    "lr": 3e-3,
    "batch_size": 16,
    "verbose": 0,
    "device": "cpu",
    "augment": False,
    "early_stopping": False,
    "validation_fraction": None,
}


def one_run(n: int, seed: int) -> dict:
    cohort = make_ptmc_cohort(n_patients=n, image_size=32, random_state=seed)
    y = np.random.default_rng(100 + seed).integers(0, 2, len(cohort))
    cohort["clnm"] = y
    row = {"patients": n, "seed": seed}
    clinical = make_clinical_model().fit(cohort, y)
    row["clinical"] = roc_auc_score(y, clinical.predict_proba(cohort)[:, 1])
    for name, cv in (("in_sample", None), ("cross_fitted", 3)):
        start = time.perf_counter()
        model = make_combined_model(n_components=8, cv=cv, random_state=seed, **CNN)
        model.set_params(classify__cv=3)
        fitted_on = model[:-1].fit_transform(cohort, y)  # what Pipeline.fit gives the classifier
        model[-1].fit(fitted_on, y)
        row[name] = roc_auc_score(y, model[-1].predict_proba(fitted_on)[:, 1])
        if cv is not None:
            row["cross_fitted_through_full_cnn"] = roc_auc_score(
                y, model.predict_proba(cohort)[:, 1]
            )
        row[f"{name}_classifier"] = model[-1].best_name_
        row[f"{name}_seconds"] = round(time.perf_counter() - start, 1)
    return row


def _stats(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {
        "mean": round(float(v.mean()), 4),
        "min": round(float(v.min()), 4),
        "max": round(float(v.max()), 4),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[120, 300])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS / "bench_noise_labels.json")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")  # LASSO convergence on noise
    start = time.perf_counter()
    runs = []
    for n in args.patients:
        for seed in range(args.seeds):
            runs.append(one_run(n, seed))
            print(json.dumps(runs[-1]), flush=True)
    summary = {}
    for n in args.patients:
        part = [r for r in runs if r["patients"] == n]
        summary[str(n)] = {
            key: _stats([r[key] for r in part])
            for key in ("in_sample", "cross_fitted", "cross_fitted_through_full_cnn", "clinical")
        }
        summary[str(n)]["cross_fitted_within_0.5_pm_0.1"] = sum(
            abs(r["cross_fitted"] - 0.5) <= 0.1 for r in part
        )
    result = {
        "benchmark": "bench_noise_labels",
        **run_info(),
        "seeds": args.seeds,
        "cnn": {k: v for k, v in CNN.items() if k != "verbose"},
        "combined": "make_combined_model(n_components=8, classify__cv=3), cv=None vs cv=3",
        "apparent_auc": summary,
        "seconds": round(time.perf_counter() - start, 1),
        "runs": runs,
    }
    write_result(args.output, result)
    return result


if __name__ == "__main__":
    main()
