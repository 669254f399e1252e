"""Validation AUC of a fused-view SkorchCNN trained on the synthetic PTMC cohort (CPU).

Goal (issue B): a fused dual-channel ``SkorchCNN`` reaches validation AUC >= 0.70
within 10 minutes on a 2-core CPU. The synthetic cohort
(:func:`thyronet.datasets.make_ptmc_cohort`) is fused with ``DualChannelFuser``
(strategy ``stack``: longitudinal + transverse ROI crops as two channels) at
``--size`` px; the CNN trains on the ``train`` cohort and is early-stopped on, and
scored on, the ``validation`` cohort (training from random weights: no pretrained
weights are downloaded). For reference the script also reports the oracle AUC of
the cohort's true risk on the same patients.

The validation cohort also chooses the epoch (early stopping), as the paper's
validation set did, so its AUC is slightly optimistic; the AUC on the ``test``
cohort (another centre and scanner, never used in training) is reported beside it.

Run: ``python benchmarks/bench_cnn_synthetic.py [--patients 461] [--size 96] [--seed 0]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _meta import run_info  # benchmarks/_meta.py (scripts run from their folder)

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=461)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--backbone", default="test_resnet")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--patience", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=1)
    args = parser.parse_args(argv)

    from sklearn.metrics import roc_auc_score

    from thyronet import DualChannelFuser, SkorchCNN
    from thyronet.datasets import make_ptmc_cohort

    t0 = time.perf_counter()
    cohort = make_ptmc_cohort(
        n_patients=args.patients, image_size=args.size, random_state=args.seed
    )
    images = DualChannelFuser(image_size=args.size, strategy="stack").fit_transform(cohort)
    train = (cohort["cohort"] == "train").to_numpy()
    valid = (cohort["cohort"] == "validation").to_numpy()
    test = (cohort["cohort"] == "test").to_numpy()
    y = cohort["clnm"].to_numpy()
    data_s = time.perf_counter() - t0

    cnn = SkorchCNN(
        args.backbone,
        lr=args.lr,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        patience=args.patience,
        class_weight="balanced",
        random_state=args.seed,
        verbose=args.verbose,
    )
    t1 = time.perf_counter()
    cnn.fit(images[train], y[train], X_val=images[valid], y_val=y[valid])
    fit_s = time.perf_counter() - t1
    auc = float(roc_auc_score(y[valid], cnn.predict_proba(images[valid])[:, 1]))
    oracle = float(roc_auc_score(y[valid], cohort.loc[valid, "oracle_risk"]))
    test_auc = float(roc_auc_score(y[test], cnn.predict_proba(images[test])[:, 1]))
    total_s = time.perf_counter() - t0
    result = {
        "benchmark": "bench_cnn_synthetic",
        **run_info(),
        "patients": args.patients,
        "train_patients": int(train.sum()),
        "validation_patients": int(valid.sum()),
        "fusion": "stack (longitudinal, transverse)",
        "image_shape": list(images.shape[1:]),
        "backbone": args.backbone,
        "pretrained": False,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "max_epochs": args.epochs,
        "patience": args.patience,
        "class_weight": "balanced",
        "augment": True,
        "epochs_run": cnn.n_epochs_,
        "best_epoch": cnn.best_epoch_,
        "validation_auc": round(auc, 4),
        "oracle_validation_auc": round(oracle, 4),
        "test_auc_other_centre": round(test_auc, 4),
        "data_seconds": round(data_s, 1),
        "fit_seconds": round(fit_s, 1),
        "total_seconds": round(total_s, 1),
        "goal_auc": 0.70,
        "goal_seconds": 600,
        "goal_met": bool(auc >= 0.70 and total_s <= 600),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_cnn_synthetic.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
