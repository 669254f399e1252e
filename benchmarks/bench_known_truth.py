"""Known-truth benchmark: AUC of the five models and the oracle against training-set size, seeds.

For each training-set size ``n_train`` and each seed, a fresh synthetic training cohort
(``center_A``) is drawn and the five models of the paper are fitted with one fixed CPU
recipe: DL_L, DL_C and DL_F (:func:`thyronet.pipelines.make_dl_model`), Combined
(:func:`~thyronet.pipelines.make_combined_model` on the fitted DL_F, cross-fitted with
``cv`` when ``--cv`` is given and the installed thyronet supports it) and Clinical
(:func:`~thyronet.pipelines.make_clinical_model`); plus the oracle (a logistic model on
the clinical table and the true image traits, ``truth_*``) and, for the fusion
comparison, the two-stream plugin (``twostream_test_resnet``, shared trunk, late
fusion) and late averaging of the DL_L and DL_C probabilities.

All models are evaluated on two fixed held-out cohorts from the same generator: one from
the training centre (``same_centre``) and one from the other centre's scanner
(``other_centre``). Reported: mean AUC and a 95 % t-interval across seeds per model and
``n_train``, the paired differences DL_F - DL_L, DL_F - DL_C, Combined - DL_F and
Combined - Clinical (paired by seed), and the AUC of the true risk (the ceiling).

Usage::

    python benchmarks/bench_known_truth.py                       # full: 4 sizes x 5 seeds
    python benchmarks/bench_known_truth.py --n-train 250 500 --seeds 3   # reduced

A run with fewer sizes or seeds than the full configuration is recorded as
``"reduced": true``. The learning-curve figure goes to ``docs/assets/known_truth.png``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks._meta import run_info  # noqa: E402
from thyronet.datasets import CLINICAL_COLUMNS, make_ptmc_cohort  # noqa: E402
from thyronet.datasets._synthetic import TRUTH_COLUMNS, cohort_sizes  # noqa: E402
from thyronet.pipelines import (  # noqa: E402
    make_clinical_model,
    make_combined_model,
    make_dl_model,
)

FULL_N_TRAIN = (250, 500, 1000, 2000)
FULL_SEEDS = 5
MODELS = ("DL_L", "DL_C", "DL_F", "Combined", "Clinical", "Oracle")
FUSIONS = ("DL_F", "DL_F_twostream", "DL_late_average")
DIFFERENCES = {
    "DL_F-DL_L": ("DL_F", "DL_L"),
    "DL_F-DL_C": ("DL_F", "DL_C"),
    "Combined-DL_F": ("Combined", "DL_F"),
    "Combined-Clinical": ("Combined", "Clinical"),
    "twostream-stack": ("DL_F_twostream", "DL_F"),
    "late_average-stack": ("DL_late_average", "DL_F"),
}
TEST_SEED = 987_654
FIGURE = HERE.parent / "docs" / "assets" / "known_truth.png"


def recipe(image_size: int, epochs: int) -> dict:
    """The one CNN recipe every DL model gets (fixed, CPU-sized)."""
    return {
        "image_size": image_size,
        "backbone": "test_resnet",
        "pretrained": False,
        "max_epochs": epochs,
        "lr": 1e-3,
        "batch_size": 32,
        "patience": 5,
        "validation_fraction": 0.2,
        "num_threads": 2,
        "verbose": 0,
    }


def _centre_a(n: int, seed: int, size: int) -> pd.DataFrame:
    """``n`` centre-A patients (the generator's train + validation cohorts)."""
    total = math.ceil(n * 461 / 379) + 2
    frame = make_ptmc_cohort(total, image_size=size, random_state=seed)
    return frame[frame["center"] == "center_A"].head(n).reset_index(drop=True)


def _test_cohorts(n_test: int, size: int) -> dict[str, pd.DataFrame]:
    total = n_test
    while cohort_sizes(total)["test"] < n_test:
        total += max(1, n_test // 10)
    frame = make_ptmc_cohort(total, image_size=size, random_state=TEST_SEED)
    same = frame[frame["center"] == "center_A"].head(n_test).reset_index(drop=True)
    other = frame[frame["center"] == "center_B"].head(n_test).reset_index(drop=True)
    return {"same_centre": same, "other_centre": other}


def _oracle_X(frame: pd.DataFrame, columns=None) -> pd.DataFrame:
    truth = [c for group in TRUTH_COLUMNS.values() for c in group]
    X = pd.get_dummies(frame[list(CLINICAL_COLUMNS)], drop_first=True).astype(float)
    X = pd.concat([X, frame[truth]], axis=1)
    return X if columns is None else X.reindex(columns=columns, fill_value=0.0)


def _ci(values) -> tuple[float, float, float]:
    v = np.asarray(values, dtype=float)
    mean = float(v.mean())
    if v.size < 2:
        return mean, mean, mean
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return mean, float(mean - half), float(mean + half)


def fit_and_score(train, tests, cnn_recipe, cv):
    """AUC of every model on every test cohort for one training cohort."""
    y = train["clnm"].to_numpy()
    models = {}
    for name, view in (("DL_L", "longitudinal"), ("DL_C", "transverse"), ("DL_F", "fused")):
        models[name] = make_dl_model(view, **cnn_recipe).fit(train, y)
    two = dict(cnn_recipe, backbone="twostream_test_resnet")
    models["DL_F_twostream"] = make_dl_model("fused", **two).fit(train, y)
    combined_kw = {"n_components": min(64, len(train) // 4)}
    if cv and "cv" in inspect.signature(make_combined_model).parameters:
        combined_kw["cv"] = cv
    models["Combined"] = make_combined_model(models["DL_F"], **combined_kw).fit(train, y)
    models["Clinical"] = make_clinical_model().fit(train, y)
    X = _oracle_X(train)
    oracle = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    out = {}
    for cohort, test in tests.items():
        yt = test["clnm"].to_numpy()
        proba = {k: m.predict_proba(test)[:, 1] for k, m in models.items()}
        proba["DL_late_average"] = (proba["DL_L"] + proba["DL_C"]) / 2
        proba["Oracle"] = oracle.predict_proba(_oracle_X(test, X.columns))[:, 1]
        out[cohort] = {k: float(roc_auc_score(yt, p)) for k, p in proba.items()}
    return out


def summarise(raw, n_train, seeds):
    """Means, CIs and paired differences from ``raw[n][seed][cohort][model]``."""
    names = (*MODELS, *FUSIONS[1:])
    cohorts = list(raw[n_train[0]][seeds[0]])
    auc_mean, auc_ci, diffs = {}, {}, {}
    for c in cohorts:
        auc_mean[c], auc_ci[c], diffs[c] = {}, {}, {}
        for m in names:
            cis = [_ci([raw[n][s][c][m] for s in seeds]) for n in n_train]
            auc_mean[c][m] = [round(x[0], 4) for x in cis]
            auc_ci[c][m] = [[round(x[1], 4), round(x[2], 4)] for x in cis]
        for label, (a, b) in DIFFERENCES.items():
            cis = [_ci([raw[n][s][c][a] - raw[n][s][c][b] for s in seeds]) for n in n_train]
            diffs[c][label] = {
                "mean": [round(x[0], 4) for x in cis],
                "ci": [[round(x[1], 4), round(x[2], 4)] for x in cis],
            }
    return auc_mean, auc_ci, diffs


def plot(result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cohorts = list(result["auc_mean"])
    fig, axes = plt.subplots(1, len(cohorts), figsize=(5.2 * len(cohorts), 4.8), sharey=True)
    n = np.array(result["n_train"])
    for ax, c in zip(np.atleast_1d(axes), cohorts, strict=True):
        for m in (*MODELS, "DL_F_twostream", "DL_late_average"):
            mean = np.array(result["auc_mean"][c][m])
            lo, hi = np.array(result["auc_ci"][c][m]).T
            style = "--" if m in ("Oracle", "DL_F_twostream", "DL_late_average") else "-"
            ax.plot(n, mean, style, marker="o", ms=3, label=m)
            ax.fill_between(n, lo, hi, alpha=0.15)
        ax.axhline(result["oracle_auc"][c], color="k", lw=0.8, label="true risk (ceiling)")
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(n, [str(v) for v in n])
        ax.set_xlabel("training patients")
        ax.set_title(c.replace("_", " "))
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("test AUC (mean, 95% CI over seeds)")
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n-train", type=int, nargs="+", default=list(FULL_N_TRAIN))
    parser.add_argument("--seeds", type=int, default=FULL_SEEDS, help="number of seeds")
    parser.add_argument("--n-test", type=int, default=2000, help="patients per test cohort")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--cv", type=int, default=None, help="cross-fit the combined model")
    parser.add_argument("--out", default=str(HERE / "results" / "bench_known_truth.json"))
    parser.add_argument("--figure", default=str(FIGURE), help="learning-curve PNG")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    cnn_recipe = recipe(args.image_size, args.epochs)
    tests = _test_cohorts(args.n_test, args.image_size)
    seeds = list(range(args.seeds))
    raw = {}
    for n in args.n_train:
        raw[n] = {}
        for s in seeds:
            t0 = time.perf_counter()
            train = _centre_a(n, 10_000 + 97 * s + n, args.image_size)
            raw[n][s] = fit_and_score(train, tests, dict(cnn_recipe, random_state=s), args.cv)
            same = raw[n][s]["same_centre"]
            print(
                f"n={n} seed={s} {time.perf_counter() - t0:.0f}s "
                + " ".join(f"{k}={v:.3f}" for k, v in same.items()),
                flush=True,
            )
        _write(args, raw, list(raw), seeds, tests, cnn_recipe, start)  # after every size
    return 0


def _write(args, raw, n_train, seeds, tests, cnn_recipe, start) -> None:
    """Write the JSON and the figure for the sizes done so far."""
    auc_mean, auc_ci, diffs = summarise(raw, n_train, seeds)
    reduced = sorted(n_train) != list(FULL_N_TRAIN) or args.seeds < FULL_SEEDS
    combined_cv = args.cv if "cv" in inspect.signature(make_combined_model).parameters else None
    result = {
        "benchmark": "bench_known_truth",
        **run_info(),
        "reduced": reduced,
        "n_train": list(n_train),
        "seeds": len(seeds),
        "n_test": {c: len(t) for c, t in tests.items()},
        "models": [*MODELS, *FUSIONS[1:]],
        "auc_mean": auc_mean,
        "auc_ci": auc_ci,
        "differences": diffs,
        "oracle_auc": {
            c: round(float(roc_auc_score(t["clnm"], t["oracle_risk"])), 4) for c, t in tests.items()
        },
        "recipe": {
            **{k: v for k, v in cnn_recipe.items() if k not in ("verbose", "num_threads")},
            "augment": "SkorchCNN default",
            "combined": "make_combined_model(fitted DL_F, n_components=min(64, n/4), "
            f"cv={combined_cv})",
            "clinical": "make_clinical_model()",
            "oracle": "StandardScaler + LogisticRegression on clinical dummies + truth_*",
            "training_cohort": "center_A patients of make_ptmc_cohort (train + validation)",
        },
        "seconds": round(time.perf_counter() - start, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, Path(args.figure))
    print(f"wrote {out} and {args.figure} in {result['seconds']} s")


if __name__ == "__main__":
    raise SystemExit(main())
