"""``mnist-lit tune``: its options, and the run from search file to ``best.yaml``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from mnist_lit.runs.errors import MnistLitError
from mnist_lit.runs.parser import OneMessageParser
from mnist_lit.runs.quiet import RUN_NOTICES, quiet
from mnist_lit.tuning.search import load_search
from mnist_lit.tuning.spec import OBJECTIVES, TuneSpec

HELP = "Search a config's options with Optuna; each trial is a normal fit. Writes best.yaml."


def build_parser() -> OneMessageParser:
    parser = OneMessageParser(
        prog="mnist-lit tune",
        description=HELP + " Fit options (e.g. --data.data_dir DIR) go after `--`.",
        formatter_class=argparse.HelpFormatter,
    )
    parser.add_argument(
        "--config", action="append", required=True, metavar="CFG", help="a config (repeatable)"
    )
    parser.add_argument(
        "--search", required=True, metavar="FILE", help="e.g. configs/search/lr.yaml"
    )
    parser.add_argument(
        "--n-trials",
        type=int,
        required=True,
        metavar="N",
        help="finished trials the study should hold",
    )
    parser.add_argument(
        "--study-dir", required=True, metavar="DIR", help="folder for the trials and results"
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="an Optuna database URL shared by several workers, e.g. "
        "postgresql://user:password@host/db (default: sqlite in --study-dir)",
    )
    parser.add_argument("--study-name", help="(default: the name of --study-dir)")
    parser.add_argument(
        "--timeout", type=float, metavar="S", help="stop starting trials after S seconds"
    )
    parser.add_argument(
        "--objective",
        choices=sorted(OBJECTIVES),
        default="acc",
        help="best validation accuracy (acc) or cross-entropy (ce) of a trial (default: acc)",
    )
    parser.add_argument(
        "--seed", type=int, help="seeds the sampler (one worker only; default: random)"
    )
    parser.add_argument(
        "--pruner", choices=["median", "none"], default="median", help="(default: median)"
    )
    heartbeat = (
        "seconds between a trial's signs of life; a trial silent for twice as long is taken "
        "as dead and run again (default: 30)"
    )
    parser.add_argument("--heartbeat", type=int, metavar="S", default=30, help=heartbeat)
    return parser


def parse_spec(argv: Sequence[str]) -> TuneSpec:
    """``tune``'s own options, and the fit options after ``--``."""
    argv = list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = build_parser()
    args = parser.parse_args(argv[:split])
    if args.n_trials < 1:
        parser.error(f"--n-trials must be at least 1, got {args.n_trials}")
    if args.heartbeat < 1:
        parser.error(f"--heartbeat must be at least 1, got {args.heartbeat}")
    for config in args.config:
        if not Path(config).is_file():
            raise MnistLitError(f"--config {config}: no such file.")
    options = vars(args)  # the other options are named as TuneSpec's fields
    return TuneSpec(
        configs=tuple(options.pop("config")),
        search=load_search(options.pop("search")),
        study_dir=Path(options.pop("study_dir")),
        fit_args=tuple(argv[split + 1 :]),
        **options,
    )


def main(argv: Sequence[str]) -> None:
    """Tune, then write ``best.yaml``, ``trials.csv`` and the plots into the study folder;
    a user's mistake ends in a :class:`MnistLitError`."""
    spec = parse_spec(argv)
    try:
        import optuna  # noqa: F401  (the extra's package, asked for first)

        from mnist_lit.tuning import outputs
        from mnist_lit.tuning.engine import tune
    except ImportError as error:
        raise MnistLitError(
            f"tuning needs Optuna and SciPy, which are not installed ({error}): "
            "pip install 'mnist-lit[tune]'."
        ) from None
    # A line per trial from Optuna; Lightning's per-run notices would bury them.
    with quiet({"optuna": logging.INFO, **RUN_NOTICES}):
        study, base = tune(spec)
    outputs.write_trials_csv(spec.study_dir / "trials.csv", study, spec.search)
    plots = outputs.write_plots(spec.study_dir, study)
    best = outputs.best_trial(study)
    if best is None:
        print(f"no trial of {study.study_name} completed (all pruned or failed): no best.yaml")
        return
    best_yaml = spec.study_dir / "best.yaml"
    outputs.write_best_config(best_yaml, base, best, spec.monitor)
    print(
        f"best trial {best.number}: {spec.monitor} {best.value:.4f} with {best.params}\n"
        f"wrote {best_yaml}, {spec.study_dir / 'trials.csv'}" + "".join(f", {p}" for p in plots),
        flush=True,
    )
