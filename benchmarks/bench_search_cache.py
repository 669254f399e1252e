"""Grid search of the combined model with and without the pipeline cache (``memory=``).

Goal (issue C): in ``GridSearchCV(make_combined_model(...), {CNN lr: 2 values,
LASSO min_features: 3 values}, cv=3)`` candidates that differ only downstream of
the CNN reuse the CNN fitted on their fold: 2 x 3 CNN trainings instead of
6 x 3. Reported: wall time of the same search with and without caching (a fresh
cache folder), their ratio, and the CNN trainings counted in each.

Setting (CPU-sized): a synthetic cohort of ``--patients`` patients, 32 px
images, the tiny ``test_resnet`` backbone, ``--epochs`` epochs, PCA to 8
components, ``n_jobs=1``, ``refit=False``. The ratio grows with the CNN's share
of the work (bigger images, real backbones, more epochs).

Run: ``python benchmarks/bench_search_cache.py [--patients 90] [--epochs 2]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _meta import run_info  # benchmarks/_meta.py (scripts run from their folder)

RESULTS = Path(__file__).resolve().parent / "results"


def _search(cohort, memory, epochs: int, counter: list) -> float:
    from sklearn.model_selection import GridSearchCV

    from thyronet.pipelines import make_combined_model

    model = make_combined_model(
        n_components=8,
        memory=memory,
        image_size=32,
        backbone="test_resnet",
        max_epochs=epochs,
        batch_size=16,
        verbose=0,
        random_state=0,
        device="cpu",
        augment=False,
        early_stopping=False,
        validation_fraction=None,
    ).set_params(lasso__alphas=20, classify__cv=3, pvalue__min_features=10)
    grid = {"features__dl__extract__cnn__lr": [1e-3, 3e-3], "lasso__min_features": [1, 4, 8]}
    search = GridSearchCV(model, grid, cv=3, scoring="roc_auc", refit=False, n_jobs=1)
    start = time.perf_counter()
    search.fit(cohort, cohort["clnm"])
    seconds = time.perf_counter() - start
    counter.append(search.cv_results_["mean_test_score"].tolist())
    return seconds


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=90)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)

    import torch
    from joblib import Memory

    from thyronet import SkorchCNN
    from thyronet.datasets import make_ptmc_cohort

    trainings: list[int] = []
    original = SkorchCNN.fit

    def counting_fit(cnn, *a, **k):
        trainings.append(1)
        return original(cnn, *a, **k)

    SkorchCNN.fit = counting_fit
    cohort = make_ptmc_cohort(n_patients=args.patients, image_size=32, random_state=0)
    scores: list = []
    try:
        uncached = _search(cohort, None, args.epochs, scores)
        uncached_trainings = len(trainings)
        trainings.clear()
        with tempfile.TemporaryDirectory(prefix="bench-cache-") as folder:
            cached = _search(cohort, Memory(folder, verbose=0), args.epochs, scores)
        cached_trainings = len(trainings)
    finally:
        SkorchCNN.fit = original

    result = {
        "benchmark": "bench_search_cache",
        **run_info(),
        "torch_threads": torch.get_num_threads(),
        "patients": args.patients,
        "epochs": args.epochs,
        "grid": "2 CNN lr x 3 LASSO min_features, cv=3",
        "uncached_s": round(uncached, 2),
        "cached_s": round(cached, 2),
        "speedup_ratio": round(uncached / cached, 2),
        "cnn_trainings_uncached": uncached_trainings,
        "cnn_trainings_cached": cached_trainings,
        "same_scores": scores[0] == scores[1],
        "goal_met": cached_trainings == 6 and uncached_trainings == 18,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_search_cache.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
