"""The ``thyronet`` command line: ``thyronet demo``, ``thyronet plugins``."""

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
        print(f"error: {out / 'manifest.csv'} already exists; choose another --out",
              file=sys.stderr)
        return 2
    quiet = args.quiet
    if not quiet:
        print(f"Generating the synthetic PTMC cohort ({args.n_patients} patients, "
              f"{args.image_size} px) in {out} ...")
    make_ptmc_cohort(n_patients=args.n_patients, image_size=args.image_size, out_dir=out,
                     random_state=args.random_state)
    cohort = load_cohort(out / "manifest.csv")
    fuser = DualChannelFuser(image_size=min(args.image_size, 128), verbose=0 if quiet else 1)
    preview = cohort.head(8)
    fused = fuser.fit_transform(preview)
    fig = plot_fused_pairs(fused, labels=preview["clnm"].tolist(),
                           ids=preview["patient_id"].tolist(),
                           channel_names=fuser.get_feature_names_out())
    target = out / "fused_preview.png"
    fig.savefig(target, dpi=120)
    counts = cohort.groupby("cohort")["clnm"].agg(["size", "mean"])
    if not quiet:
        print(counts.rename(columns={"size": "patients", "mean": "CLNM rate"}).round(3))
        print(f"Wrote {out / 'manifest.csv'} and {target}")
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
    return parser


def main(argv=None) -> int:
    """Entry point of the ``thyronet`` command."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
