"""``mnist-lit study``: its options, the run from tuning to verdicts, and the files it
writes at the end (results and comparisons as CSV, the pictures, ``summary.md``)."""

from __future__ import annotations

import argparse
import csv
import datetime
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from mnist_lit.catalog import OPTIMIZERS
from mnist_lit.errors import OneMessageParser
from mnist_lit.runs.options import add_run_options, check_run_options
from mnist_lit.study.plan import CONFIG_OPTIMIZER, STUDY_LOSSES, STUDY_NETWORKS, make_plan

HELP = (
    "The fair loss comparison: tune each loss's learning rate per network, train it with "
    "several seeds, test once, and compare with paired tests."
)


def build_parser() -> OneMessageParser:
    parser = OneMessageParser(
        prog="mnist-lit study",
        description=HELP + " Writes results.csv, comparisons.csv, summary.md and PNGs; "
        "a rerun continues.",
        formatter_class=argparse.HelpFormatter,
    )
    parser.add_argument("--study-dir", default="outputs/study", help="(default: outputs/study)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few-minute version: 3 trials, 3 seeds, 1 short epoch",
    )
    parser.add_argument(
        "--networks", nargs="+", choices=list(STUDY_NETWORKS), help="(default: all)"
    )
    parser.add_argument("--losses", nargs="+", choices=STUDY_LOSSES, help="(default: all)")
    parser.add_argument(
        "--n-trials", type=int, help="learning rates tried per loss, a log grid (default: 8)"
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
        help="fits run at once, each in its own process on one CPU thread; the results are "
        "the same for any N (default: 1)",
    )
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=30,
        metavar="S",
        help="seconds between a run's signs of life; a run silent for twice as long is "
        "taken as dead and done again (default: 30)",
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="a database that workers on several machines share, e.g. "
        "postgresql://user:password@host/database; each machine keeps its own --study-dir "
        "(default: SQLite files in --study-dir)",
    )
    parser.add_argument(
        "--study-name",
        metavar="NAME",
        help="the study's name in --storage, the same on every machine (default: the name "
        "of --study-dir)",
    )
    # A worker process started by `--workers N`, and the parent whose end stops it.
    parser.add_argument("--worker-of", type=int, metavar="PID", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str]) -> None:
    """Run ``mnist-lit study``; a user's mistake ends in a :class:`MnistLitError`."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    check_run_options(parser, args, "n_trials", "workers", "heartbeat")
    from mnist_lit.data.datamodule import check_label_noise

    check_label_noise(args.label_noise, "--label-noise")
    try:
        import optuna  # noqa: F401
        import scipy  # noqa: F401
    except ImportError as error:
        from mnist_lit.tuning.command import needs_extra

        raise needs_extra(error) from None
    from mnist_lit.study.workers import Where, be_worker, run_study

    plan = make_plan(
        args.quick,
        networks=args.networks,
        losses=args.losses,
        n_trials=args.n_trials,
        seeds=args.seeds,
        epochs=args.epochs,
        val_size=args.val_size,
        label_noise=args.label_noise,
        optimizer=args.optimizer,
    )
    study_dir = Path(args.study_dir)
    name = args.study_name or study_dir.resolve().name
    where = Where(
        plan, study_dir, args.data_dir, args.accelerator, args.heartbeat, args.storage, name
    )
    if args.worker_of is not None:
        be_worker(where, args.worker_of)
        return
    start, ended = time.monotonic(), False
    try:
        results = run_study(where, args.workers, argv)
        ended = True
    finally:
        record_invocation(study_dir, time.monotonic() - start, args.workers, ended)
    kind = f"{'quick study' if args.quick else 'study'} ({plan.conditions()})"
    report(study_dir, results, kind)


INVOCATIONS = "invocations.csv"


def record_invocation(study_dir: Path, seconds: float, workers: int, ended: bool) -> None:
    """Add this invocation's wall time to ``invocations.csv``: a study resumed after a stop
    took the sum of its invocations."""
    path = study_dir / INVOCATIONS
    new = not path.is_file()
    with path.open("a", newline="") as file:
        writer = csv.writer(file)
        if new:
            writer.writerow(["started", "seconds", "workers", "host", "ended"])
        started = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds)
        host = socket.gethostname()
        writer.writerow(
            [started.isoformat(timespec="seconds"), f"{seconds:.1f}", workers, host, ended]
        )


def wall_time(study_dir: Path) -> str:
    """``18.5 min in 2 invocations (2 workers)``, from ``invocations.csv``."""
    with (study_dir / INVOCATIONS).open() as file:
        rows = list(csv.DictReader(file))
    minutes = sum(float(r["seconds"]) for r in rows) / 60
    workers = ", ".join(dict.fromkeys(r["workers"] for r in rows))
    count = f"{len(rows)} invocation{'s' * (len(rows) != 1)}"
    return f"{minutes:.1f} min in {count} ({workers} worker{'s' * (workers != '1')})"


def report(study_dir: Path, results: list, kind: str) -> None:
    """Write the CSVs, the pictures and ``summary.md``; print the summary."""
    import numpy as np

    from mnist_lit.study.report import (
        compare_losses,
        summary_markdown,
        write_comparisons_csv,
        write_results_csv,
    )

    labels = np.load(study_dir / "test_labels.npy")
    predictions = {
        (r.network, r.loss, r.seed): np.load(
            study_dir / "runs" / r.network / r.loss / f"seed_{r.seed}" / "test_predictions.npy"
        )
        for r in results
    }
    comparisons = compare_losses(results, predictions, labels)
    write_results_csv(results, study_dir / "results.csv")
    write_comparisons_csv(comparisons, study_dir / "comparisons.csv")
    trials = collect_trials(study_dir, results)
    write_pictures(study_dir, results, trials)
    recorded = sum(r.seconds for r in results) + sum(float(t["seconds"] or 0) for t in trials)
    title = f"The loss {kind}: tuned learning rates, {len({r.seed for r in results})} seeds"
    text = summary_markdown(results, comparisons, title, trials)
    text += (
        f"\n\nTraining time recorded: {recorded / 60:.1f} min (tuning and seeds); wall time: "
        f"{wall_time(study_dir)}.\n"
    )
    (study_dir / "summary.md").write_text(text)
    print("\n" + text)
    print(
        f"wrote {study_dir}/results.csv, comparisons.csv, tuning_trials.csv, summary.md, "
        "rate_sensitivity.png, accuracy.png"
    )


def collect_trials(study_dir: Path, results: list) -> list[dict[str, str]]:
    """Every tuning trial of the study, from each tune's ``trials.csv``, into
    ``tuning_trials.csv`` (network, loss, round, lr, epochs, state, value, last validation
    accuracy)."""
    rows = []
    for network, loss in dict.fromkeys((r.network, r.loss) for r in results):
        path = study_dir / "tuning" / network / loss / "trials.csv"
        with path.open() as file:
            for trial in csv.DictReader(file):
                key = next(k for k in trial if k.endswith("lr"))
                curve = trial["val_acc"].split()
                state = trial["state"].lower()
                if trial["diverged"] == "True":
                    state = "diverged"
                rows.append(
                    {
                        "network": network,
                        "loss": loss,
                        "number": trial["number"],
                        "round": trial["round"],
                        "lr": trial[key],
                        "state": state,
                        "value": trial["value"],
                        "last_val_acc": curve[-1] if curve else "",
                        "epochs": trial["epochs"],
                        "seconds": trial["seconds"],
                    }
                )
    with (study_dir / "tuning_trials.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def write_pictures(study_dir: Path, results: list, trials: list[dict[str, str]]) -> None:
    from mnist_lit.catalog import LOSSES
    from mnist_lit.study.plots import RatePoint, accuracy_intervals, rate_sensitivity
    from mnist_lit.study.stats import Interval, t_interval

    points: dict[str, dict[str, list[RatePoint]]] = {}
    for t in trials:
        acc = t["value"] if t["state"] == "complete" else t["last_val_acc"]
        point = RatePoint(float(t["lr"]), float(acc) if acc else None, t["state"], int(t["round"]))
        points.setdefault(t["network"], {}).setdefault(LOSSES[t["loss"]].label, []).append(point)
    figure = rate_sensitivity(points)
    figure.savefig(study_dir / "rate_sensitivity.png", dpi=80)
    intervals: dict[str, dict[str, Interval]] = {}
    for network, loss in dict.fromkeys((r.network, r.loss) for r in results):
        accs = [r.test_acc for r in results if (r.network, r.loss) == (network, loss)]
        intervals.setdefault(network, {})[LOSSES[loss].label] = t_interval(accs)
    accuracy_intervals(intervals).savefig(study_dir / "accuracy.png", dpi=80)
