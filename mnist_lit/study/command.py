"""``mnist-lit study``: its options, the run from tuning to verdicts, and the files it
writes at the end (results and comparisons as CSV, the pictures, ``summary.md``)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from mnist_lit.runs.catalog import LOSSES, OPTIMIZERS
from mnist_lit.runs.errors import MnistLitError
from mnist_lit.runs.options import add_run_options, check_run_options
from mnist_lit.runs.parser import OneMessageParser
from mnist_lit.runs.quiet import RUN_NOTICES, quiet
from mnist_lit.study.plan import CONFIG_OPTIMIZER, STUDY_LOSSES, STUDY_NETWORKS, Plan, make_plan

HELP = (
    "The fair loss comparison: tune each loss's learning rate per network, train it with "
    "several seeds, test once, and compare with paired tests."
)


STUDY_DIR = "outputs/study"
QUICK_STUDY_DIR = "outputs/study_quick"
# The fewest rates a tuning can choose between: with two, a rate chosen at the grid's edge
# has the rate beyond it tried too (mnist_lit.study.halving); one rate has no grid to step on.
MIN_TRIALS = 2


def build_parser() -> OneMessageParser:
    parser = OneMessageParser(
        prog="mnist-lit study",
        description=HELP + " Writes results.csv, comparisons.csv, summary.md and PNGs; "
        "a rerun continues.",
        formatter_class=argparse.HelpFormatter,
    )
    parser.add_argument(
        "--study-dir",
        help=f"(default: {STUDY_DIR}, or {QUICK_STUDY_DIR} with --quick, so that a quick "
        "try never blocks the full study)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few-minute version: 3 trials, 3 seeds, 1 short epoch",
    )
    parser.add_argument(
        "--networks",
        nargs="+",
        metavar="NETWORK",
        help=f"of {', '.join(STUDY_NETWORKS)}, or a config file of your own that mnist-lit "
        "fit --config trains, with its own rate range as nets/wide.yaml:0.001,1, else the "
        "MLP's (default: the three)",
    )
    parser.add_argument(
        "--losses",
        nargs="+",
        metavar="LOSS",
        help=f"of {', '.join(LOSSES)}, or a class path (my_losses.Hinge, from the working "
        "folder), each with arguments and a label as LABEL=LOSS:ARG=VALUE,... "
        f"(margin2=my_losses.Hinge:margin=2) (default: {' '.join(STUDY_LOSSES)})",
    )
    parser.add_argument(
        "--control",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train the first loss again on as many other seeds at its tuned rate, and "
        "compare it with itself by the same tests: a negative control (default: on)",
    )
    parser.add_argument(
        "--n-trials",
        type=int,
        help=f"learning rates tried per loss, a log grid, at least {MIN_TRIALS} (default: 8)",
    )
    parser.add_argument(
        "--optimizer",
        choices=list(OPTIMIZERS),
        default=CONFIG_OPTIMIZER,
        help="the optimiser of every fit: the configs' own SGD (with the CNN's momentum), or "
        f"Adam over a rate grid of its own (default: {CONFIG_OPTIMIZER})",
    )
    parser.add_argument(
        "--label-noise",
        type=float,
        default=0.0,
        help="share of the training labels moved to another class in every fit, by its "
        "seed; validation and test stay clean (default: 0)",
    )
    add_run_options(parser, "0 1 2 3 4", "10, 10, 8 for the three networks")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="fits run at once on this machine, each in a process of its own (a Dask "
        "LocalCluster on loopback; 1: in this process), at most one per core; the results "
        "are the same for any N (default: 1)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the fits on a running Dask cluster instead, e.g. tcp://10.0.0.5:8786; "
        "every worker needs mnist-lit installed and MNIST in --data-dir "
        "(docs/distributed.md)",
    )
    parser.add_argument(
        "--slurm-jobs",
        type=int,
        default=0,
        metavar="N",
        help="run the fits on N Dask workers submitted as SLURM jobs of one core each "
        "(dask-jobqueue; partition, account, memory and time from Dask's jobqueue.slurm "
        "config), stopped at the end (docs/distributed.md)",
    )
    parser.add_argument(
        "--slurm-interface",
        default="lo",
        metavar="NAME",
        help="the network interface, on this machine and on every node, that the Dask "
        "scheduler, its workers and their dashboards listen on: the cluster's private "
        "network, e.g. ib0 (default: lo, a single-node SLURM)",
    )
    return parser


def main(argv: Sequence[str]) -> None:
    """Run ``mnist-lit study``; a user's mistake ends in a :class:`MnistLitError`."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    check_run_options(parser, args, "workers")
    if args.n_trials is not None and args.n_trials < MIN_TRIALS:
        parser.error(
            f"--n-trials must be at least {MIN_TRIALS}, got {args.n_trials}: one rate leaves "
            "nothing to tune"
        )
    from mnist_lit.data.datamodule import check_label_noise

    try:
        check_label_noise(args.label_noise, "--label-noise")
    except ValueError as error:  # the core's plain error, said as the command's one line
        raise MnistLitError(str(error)) from None
    try:
        import distributed  # noqa: F401
        import scipy  # noqa: F401
    except ImportError as error:
        raise MnistLitError(
            f"the study needs Dask's distributed and SciPy, which are not installed ({error}): "
            "pip install 'mnist-lit[tune]'."
        ) from None
    from mnist_lit.study.choices import check_choices, distinct, parse_loss, parse_network
    from mnist_lit.study.cluster import open_engine
    from mnist_lit.study.folder import StudyFolder
    from mnist_lit.study.report import write_report
    from mnist_lit.study.runner import StudySetup, run_study

    if "" not in sys.path and os.getcwd() not in sys.path:
        # A user's loss (my_losses.Hinge) imports from the working folder, as in `mnist-lit
        # fit`, here and in the local workers, which start with this process's path.
        sys.path.insert(0, os.getcwd())

    networks = [parse_network(spec) for spec in args.networks or ()]
    losses = [parse_loss(spec) for spec in args.losses or ()]
    distinct([n.name for n in networks], "--networks")
    distinct([loss.name for loss in losses], "--losses")
    plan = make_plan(
        args.quick,
        networks=list(networks),
        losses=list(losses),
        n_trials=args.n_trials,
        seeds=args.seeds,
        epochs=args.epochs,
        val_size=args.val_size,
        label_noise=args.label_noise,
        optimizer=args.optimizer,
        control=args.control,
    )
    check_choices(plan, args.data_dir, args.accelerator)
    if args.slurm_jobs and args.scheduler is not None:
        raise MnistLitError("--slurm-jobs starts its own Dask cluster: leave out --scheduler.")
    if args.slurm_jobs < 0:
        raise MnistLitError(f"--slurm-jobs must be a positive number, got {args.slurm_jobs}.")
    folder = StudyFolder(Path(args.study_dir or (QUICK_STUDY_DIR if args.quick else STUDY_DIR)))
    with folder.locked(), _disk_full_said(folder.root):
        folder.check_plan(plan)
        # Workers may run on other machines: they find MNIST at the same absolute path.
        setup = StudySetup(plan, str(Path(args.data_dir).resolve()), args.accelerator)
        workers = capped_workers(args.workers, plan) if args.scheduler is None else 0
        folder.begin_invocation(workers)
        ended = False
        try:
            # Lightning's notices would repeat for every fit run in this process.
            with (
                quiet(RUN_NOTICES),
                open_engine(
                    workers, args.scheduler, args.slurm_jobs, args.slurm_interface
                ) as engine,
            ):
                folder.workers = engine.slots
                if engine.dashboard:
                    print(engine.dashboard, flush=True)
                pairs = run_study(setup, folder, engine)
            ended = True
        finally:
            # Stopped by an error: that error is the one to say, not a second on the way.
            with contextlib.suppress(*(() if ended else (OSError,))):
                folder.end_invocation(ended)
        kind = f"{'quick study' if args.quick else 'study'} ({plan.conditions()})"
        write_report(folder, pairs, kind, plan)


@contextlib.contextmanager
def _disk_full_said(root: Path) -> Iterator[None]:
    """A full disk (or quota) while the study writes, said in one line: every file is
    written atomically, so what was written before is whole, and a rerun continues."""
    try:
        yield
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f"--study-dir {root}"
        if error.filename and not Path(error.filename).resolve().is_relative_to(root.resolve()):
            where = str(error.filename)  # not the study's own folder: a fit's scratch space
        raise MnistLitError(
            f"{where}: no space left on the disk ({error.strerror}). Free space there, or "
            "move the folder to a disk with room, then run the same command again: every "
            "result written before is kept."
        ) from None


def capped_workers(asked: int, plan: Plan) -> int:
    """``asked``, or fewer where this machine has fewer cores or the study's first round
    fewer fits (said once)."""
    from mnist_lit.study.cluster import usable_cores

    first_round = len(plan.networks) * len(plan.losses) * plan.budget.n_trials
    workers = min(asked, usable_cores(), first_round)
    if workers < asked:
        print(
            f"--workers {asked}: {usable_cores()} cores here, and {first_round} fits at most "
            f"at once; running {workers}.",
            flush=True,
        )
    return workers
