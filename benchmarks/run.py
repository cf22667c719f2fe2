"""Train the tutorial's model four ways, side by side, and print a Markdown table.

(a) the tutorial's plain PyTorch loop, (b) the in-memory floor, (c) ``mnist-lit fit`` with
``configs/seed_cross_entropy.yaml`` as shipped, (d) the same with the progress bar off.
Each run is its own process, so peak resident memory is its own; the variants take turns in
every repeat so that machine noise falls on all of them alike, and the median is quoted.
MNIST's ``.gz`` files are extracted (or downloaded) once, before any variant is timed.
Each invocation writes its logs under ``--work-dir``; a failed variant's log stays there.

    python benchmarks/run.py --data-dir data --repeats 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from mnist_lit.data.datamodule import download_mnist

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MNIST_LIT = str(Path(sys.executable).with_name("mnist-lit"))
CONFIG = str(REPO / "configs" / "seed_cross_entropy.yaml")
VARIANTS = {
    "a": "tutorial loop (DataLoader, ToTensor)",
    "b": "in-memory floor (plain PyTorch)",
    "c": "`mnist-lit fit`, as shipped",
    "d": "`mnist-lit fit`, progress bar off",
}
LOG_TAIL_LINES = 20


def failure_report(command: list[str], log: Path) -> str:
    """The failed command, where its log is, and the log's last lines (the error is there)."""
    tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return "\n".join(
        [f"failed: {' '.join(command)}", f"log: {log}", "last lines of the log:"]
        + [f"  {line}" for line in tail]
    )


def run_process(command: list[str], log: Path, cwd: Path = REPO) -> tuple[float, float]:
    """Run ``command`` in ``cwd``; return (wall seconds, peak resident MiB) of that process
    alone."""
    start = time.perf_counter()
    with open(log, "w") as out:
        # PYTHONPATH: the console script must find benchmarks.fit_timer.
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        }
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(failure_report(command, log))
    return wall, usage.ru_maxrss / 1024  # Linux reports KiB


def plain_loop(script: str, data_dir: str, epochs: int, work: Path) -> dict[str, float]:
    log = work / f"{script}.log"
    command = [PYTHON, str(REPO / "benchmarks" / script), "--data-dir", data_dir]
    wall, rss = run_process([*command, "--epochs", str(epochs)], log)
    result = json.loads(log.read_text().strip().splitlines()[-1])
    return {**result, "wall_seconds": wall, "peak_rss_mib": rss}


def lightning_fit(data_dir: str, epochs: int, work: Path, progress_bar: bool) -> dict[str, float]:
    # Each variant in a folder of its own: every logger writes to its logs/ there.
    folder = work / f"bar{int(progress_bar)}"
    folder.mkdir(exist_ok=True)
    timing = work / "timing.json"
    common = [f"--data.data_dir={Path(data_dir).resolve()}"]
    fit = [
        MNIST_LIT, "fit", "--config", CONFIG, *common, f"--trainer.max_epochs={epochs}",
        f"--trainer.enable_progress_bar={progress_bar}",
        "--trainer.callbacks+=benchmarks.fit_timer.FitTimer",
        f"--trainer.callbacks.output={timing}",
    ]  # fmt: skip
    wall, rss = run_process(fit, work / f"fit_bar{int(progress_bar)}.log", folder)
    result = json.loads(timing.read_text())
    # Untimed: the test accuracy of the final weights, as the plain loops report it.
    test = [MNIST_LIT, "test", "--config", CONFIG, *common, "--ckpt_path=last"]
    test += ["--trainer.enable_progress_bar=false"]
    run_process(test, work / f"test_bar{int(progress_bar)}.log", folder)
    runs = (folder / "logs" / "seed_cross_entropy").glob("version_*")
    *_, test_run = sorted(runs, key=os.path.getmtime)
    with open(test_run / "metrics.csv") as f:
        test_acc = float(next(csv.DictReader(f))["test/acc"])
    return {**result, "test_acc": test_acc, "wall_seconds": wall, "peak_rss_mib": rss}


def measure(variant: str, data_dir: str, epochs: int, work: Path) -> dict[str, float]:
    if variant == "a":
        return plain_loop("tutorial_loop.py", data_dir, epochs, work)
    if variant == "b":
        return plain_loop("floor_loop.py", data_dir, epochs, work)
    return lightning_fit(data_dir, epochs, work, progress_bar=variant == "c")


def machine() -> str:
    cpu = "unknown CPU"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch threads"
    )


def table(medians: dict[str, dict[str, float]]) -> str:
    a, b = medians["a"], medians["b"]
    rows = [
        "| variant | train time | per step | speed-up vs (a) | time vs floor (b) "
        "| process wall | peak RSS | RSS vs (b) | test acc |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, m in medians.items():
        rows.append(
            f"| ({key}) {VARIANTS[key]} | {m['train_seconds']:.1f} s "
            f"| {1000 * m['train_seconds'] / m['steps']:.2f} ms "
            f"| {a['train_seconds'] / m['train_seconds']:.1f}x "
            f"| {m['train_seconds'] / b['train_seconds']:.2f}x "
            f"| {m['wall_seconds']:.1f} s | {m['peak_rss_mib']:.0f} MiB "
            f"| {m['peak_rss_mib'] / b['peak_rss_mib']:.2f}x | {100 * m['test_acc']:.2f}% |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data", help="folder with MNIST/raw/")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default="abcd", help="which of a, b, c, d to run")
    parser.add_argument(
        "--work-dir",
        default=REPO / "outputs" / "benchmarks",
        type=Path,
        help="logs and training outputs go to a new folder here; kept when a variant fails",
    )
    args = parser.parse_args()
    if not {"a", "b"} <= set(args.variants):
        parser.error("--variants must include a and b: the ratios are taken against them")
    data_dir = str(Path(args.data_dir).resolve())
    # Once, untimed: (a) and (b) read only extracted files, and no variant should pay for it.
    try:
        download_mnist(data_dir)
    except ValueError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")

    # Absolute: the variants run in the repository root, whatever the current folder.
    work_dir = args.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=work_dir))
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in args.variants}
    for repeat in range(args.repeats):
        for variant in args.variants:
            result = measure(variant, data_dir, args.epochs, work)
            runs[variant].append(result)
            print(f"repeat {repeat + 1} ({variant}): {json.dumps(result)}", file=sys.stderr)
    # Reached only when every variant succeeded: a failure exits above and keeps its log.
    shutil.rmtree(work)
    medians = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in runs.items()}
    print(f"{args.epochs} epochs, median of {args.repeats} runs; {machine()}\n")
    print(table(medians))


if __name__ == "__main__":
    main()
