"""What a command costs before it does anything: the CPU seconds (user + system) of
``mnist-lit --help``, of shell completion and of each command's ``--help``, against
importing Lightning's CLI alone, each in a fresh process; and which heavy packages each
imports (those of one command only: Optuna, LitServe, ONNX, Dask, MLflow, W&B).

    python benchmarks/startup.py --repeats 3 > benchmarks/startup.md
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys

HEAVY = ("optuna", "litserve", "onnx", "onnxruntime", "distributed", "mlflow", "wandb")
PROBE = (
    "import sys, runpy; sys.argv = {argv!r}\n"
    "try:\n    runpy.run_module('mnist_lit', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    "print('heavy:', *(h for h in {heavy!r} if h in sys.modules), file=sys.stderr)"
)
COMMANDS = {
    "import lightning.pytorch.cli": None,
    "mnist-lit --help": ["--help"],
    "mnist-lit --print_completion bash": ["--print_completion", "bash"],
    **{f"mnist-lit {c} --help": [c, "--help"] for c in ("fit", "study", "tune", "serve", "export")},
}


def cpu_seconds(argv: list[str] | None) -> tuple[float, str]:
    """One fresh process: its CPU seconds, and the heavy packages it imported."""
    code = (
        "import lightning.pytorch.cli"
        if argv is None
        else PROBE.format(argv=["mnist-lit", *argv], heavy=HEAVY)
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    said = [line for line in done.stderr.splitlines() if line.startswith("heavy:")]
    return used, said[-1].removeprefix("heavy:").strip() if said else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {name: [] for name in COMMANDS}
    heavy: dict[str, str] = {}
    for _ in range(args.repeats):  # the commands take turns, so noise falls on all alike
        for name, argv in COMMANDS.items():
            used, imported = cpu_seconds(argv)
            seconds[name].append(used)
            heavy[name] = imported if argv is not None else "-"
    base = statistics.median(seconds["import lightning.pytorch.cli"])
    print("| command | CPU seconds (median) | against importing Lightning | heavy packages |")
    print("|---|---|---|---|")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"| `{name}` | {median:.2f} | {median / base:.2f}x | {heavy[name] or 'none'} |")


if __name__ == "__main__":
    main()
