"""The ``thyronet`` command line: ``study``, ``predict``, ``demo``, ``plugins``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _cmd_plugins(args) -> int:
    from thyronet.plugins import describe_plugins

    rows = describe_plugins()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']} {row['version'] or '(unknown version)'}")
        for kind, names in row["registers"].items():
            print(f"    {kind}: {', '.join(names)}")
    return 0


def _cmd_demo(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from thyronet import DualChannelFuser
    from thyronet.datasets import load_cohort, make_ptmc_cohort
    from thyronet.plotting import plot_fused_pairs

    out = Path(args.out)
    if (out / "manifest.csv").exists():
        print(
            f"error: {out / 'manifest.csv'} already exists; choose another --out", file=sys.stderr
        )
        return 2
    quiet = args.quiet
    if not quiet:
        print(
            f"Generating the synthetic PTMC cohort ({args.n_patients} patients, "
            f"{args.image_size} px) in {out} ..."
        )
    make_ptmc_cohort(
        n_patients=args.n_patients,
        image_size=args.image_size,
        out_dir=out,
        random_state=args.random_state,
    )
    cohort = load_cohort(out / "manifest.csv")
    fuser = DualChannelFuser(image_size=min(args.image_size, 128), verbose=0 if quiet else 1)
    preview = cohort.head(8)
    fused = fuser.fit_transform(preview)
    fig = plot_fused_pairs(
        fused,
        labels=preview["clnm"].tolist(),
        ids=preview["patient_id"].tolist(),
        channel_names=fuser.get_feature_names_out(),
    )
    target = out / "fused_preview.png"
    fig.savefig(target, dpi=120)
    counts = cohort.groupby("cohort")["clnm"].agg(["size", "mean"])
    if not quiet:
        print(counts.rename(columns={"size": "patients", "mean": "CLNM rate"}).round(3))
        print(f"Wrote {out / 'manifest.csv'} and {target}")
    return 0


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _parse_set(items) -> dict:
    """``KEY=VALUE`` overrides; VALUE is read as TOML (``5``, ``true``, ``"x"``) or a string."""
    import tomllib

    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE; got {item!r}")
        try:
            parsed = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value.strip()
        out[key.strip()] = parsed
    return out


def _cmd_study(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from thyronet.datasets import CohortError, load_cohort, make_ptmc_cohort
    from thyronet.model_io import ModelFileError
    from thyronet.study import StudyConfig, StudyError, run_study
    from thyronet.study._interrupt import exit_code

    out = Path(args.out)
    try:
        overrides = _parse_set(args.set)
        if args.quiet:
            overrides["verbose"] = 0
        if args.demo:
            base = StudyConfig.demo()
            config = StudyConfig.from_toml(args.config, base=base) if args.config else base
        else:
            base = StudyConfig.paper()
            config = StudyConfig.from_toml(args.config) if args.config else base
        config = StudyConfig.from_dict(overrides, base=config)
        if args.demo:
            manifest = out / "cohort" / "manifest.csv"
            if manifest.exists():
                if config.verbose:
                    print(
                        f"Using the synthetic cohort already in {manifest.parent}", file=sys.stderr
                    )
            else:
                if config.verbose:
                    print(
                        f"Generating the synthetic PTMC cohort ({args.n_patients} patients, "
                        f"{args.image_size} px frames) in {manifest.parent} ...",
                        file=sys.stderr,
                    )
                make_ptmc_cohort(
                    n_patients=args.n_patients,
                    image_size=args.image_size,
                    out_dir=manifest.parent,
                    random_state=args.random_state,
                )
            cohort = load_cohort(manifest)
        else:
            cohort = load_cohort(args.manifest)
        results = run_study(cohort, config, out, resume=not args.no_resume)
    except KeyboardInterrupt as interrupt:
        print(
            f"interrupted ({interrupt or 'Ctrl-C'}): the model in training was not saved; "
            "run the same command again to resume from the finished models",
            file=sys.stderr,
        )
        return exit_code(interrupt)
    except (StudyError, CohortError, ModelFileError, ValueError, FileNotFoundError) as err:
        return _error(str(err))
    if not args.quiet:
        table = results.performance["AUC (95% CI)"].unstack("cohort")
        print(table.reindex(columns=results.cohorts).to_string())
        print(f"Report: {out / 'report.html'}")
    return 0


def _model_inputs(model) -> dict:
    """``load_cohort`` arguments that require only the columns a fitted model reads.

    The views its fusers read (``load_cohort`` keeps their ROI columns when present)
    and, when it encodes clinical indicators, those; a model of another make gets
    the full checks.
    """
    from thyronet._walk import walk_fitted
    from thyronet.clinical import ClinicalEncoder
    from thyronet.fusion import DualChannelFuser
    from thyronet.schema import CLINICAL_COLUMNS

    views: dict[str, None] = {}
    clinical: tuple[str, ...] = ()
    found = False
    for _, step in walk_fitted(model):
        if isinstance(step, DualChannelFuser) and hasattr(step, "views_"):
            views.update(dict.fromkeys(step.views_))
            found = True
        elif isinstance(step, ClinicalEncoder):
            clinical = tuple(CLINICAL_COLUMNS)
            found = True
    if not found:
        return {}
    return {
        "views": tuple(views),
        "clinical": clinical,
        "columns": [*views, *clinical],
    }


def _threshold_source(info: dict) -> str:
    """Where a saved model's threshold came from, in words, from its ``model.json``.

    ``threshold_source`` when the model records it; otherwise the study's
    ``threshold_rule`` and training cohort from its metadata.
    """
    meta = info.get("metadata") or {}
    recorded = info.get("threshold_source") or meta.get("threshold_source")
    if recorded:
        return str(recorded)
    rule = meta.get("threshold_rule")
    cohort = (meta.get("trained_on") or {}).get("cohort", "training")
    if rule == "youden":
        return f"Youden index on the {cohort} cohort"
    if rule is not None:
        return "fixed in the study settings"
    return "stored with the model"


def _cmd_predict(args) -> int:
    import numpy as np
    import pandas as pd

    from thyronet import __version__
    from thyronet.datasets import CohortError, load_cohort
    from thyronet.model_io import ModelFileError, load_model
    from thyronet.schema import ID_COLUMN

    target = Path(args.out)
    if target.exists() and not args.overwrite:
        return _error(f"{target} already exists; pass --overwrite to replace it")
    if args.threshold is not None and not 0 < args.threshold < 1:
        return _error(f"--threshold must be a probability in (0, 1); got {args.threshold}")
    try:
        model, info = load_model(args.model)
        threshold = args.threshold if args.threshold is not None else info.get("threshold")
        if threshold is None:
            return _error(f"model {args.model} stores no threshold; pass --threshold")
        cohort = load_cohort(args.manifest, label=False, **_model_inputs(model))
        proba = np.asarray(model.predict_proba(cohort))
        classes = list(getattr(model, "classes_", [0, 1]))
        prob = proba[:, classes.index(1) if 1 in classes else -1]
    except (ModelFileError, CohortError, ValueError, FileNotFoundError) as err:
        return _error(str(err))
    ids = cohort[ID_COLUMN].to_numpy() if ID_COLUMN in cohort.columns else np.arange(len(cohort))
    table = pd.DataFrame(
        {
            ID_COLUMN: ids,
            "probability": np.round(prob.astype(float), 4),
            "risk_group": np.where(prob >= threshold, "high", "low"),
            "model": info.get("name"),
            "thyronet_version": __version__,
        }
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(target, index=False, float_format="%.4f")
    if not args.quiet:
        n_high = int((table["risk_group"] == "high").sum())
        source = "--threshold" if args.threshold is not None else _threshold_source(info)
        print(
            f"{len(table)} patients: {n_high} high risk, {len(table) - n_high} low risk "
            f"(threshold {float(threshold):.4f}, threshold source: {source}; "
            f"model {info.get('name')}); wrote {target}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``thyronet`` command."""
    parser = argparse.ArgumentParser(prog="thyronet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plugins", help="list loaded plugins, their versions and registrations")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("demo", help="generate the synthetic cohort and a preview of fused pairs")
    p.add_argument("--out", default="thyronet-demo", help="output folder (default: %(default)s)")
    p.add_argument("--n-patients", type=int, default=461)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "study",
        help="run the paper's five-model study; write tables, figures, models and report.html",
        description="Fit Models 1-5 on the train cohort, choose classifiers on validation, "
        "evaluate on every cohort and write the results to --out. Re-running with the same "
        "--out resumes: finished models are loaded, not refitted.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--demo",
        action="store_true",
        help="generate the synthetic cohort in OUT/cohort and use the CPU-friendly demo preset",
    )
    source.add_argument(
        "--manifest",
        help="cohort manifest (.csv or .parquet) with a cohort column: train, validation, test",
    )
    p.add_argument(
        "--config",
        help="TOML file of study settings (default: the paper's; with --demo: the demo preset)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set max_epochs=5 (repeatable)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="refit every model even when OUT/models holds finished ones",
    )
    p.add_argument(
        "--n-patients", type=int, default=461, help="--demo: patients (default: %(default)s)"
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=128,
        help="--demo: side of the generated ultrasound frames in pixels (default: %(default)s)",
    )
    p.add_argument("--random-state", type=int, default=0, help="--demo: cohort seed")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_study)

    p = sub.add_parser("predict", help="predict CLNM probability and risk group of new patients")
    p.add_argument("--model", required=True, help="a saved model folder, e.g. DIR/models/combined")
    p.add_argument(
        "--manifest", required=True, help="manifest of the new patients (no label needed)"
    )
    p.add_argument(
        "--out",
        required=True,
        help="CSV to write: patient_id, probability (4 decimals), risk_group, model, "
        "thyronet_version",
    )
    p.add_argument(
        "--threshold",
        type=float,
        help="probability threshold of the high-risk "
        "group (default: the model's, chosen by the study's threshold rule)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_predict)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``thyronet`` command."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
