"""The loss study's speed, read from finished study folders: a Markdown table and a CSV.

For each folder: its conditions (from ``study.yaml``), the fits it ran, the wall time of
its invocations (``invocations.csv``) against its target, and, per network, each fit's
fixed cost and cost per epoch: a least-squares line through the tuning trials' seconds
against the epochs each trained (rounds of 1, 3 and the full length give the spread).

    python benchmarks/study_table.py docs/study/quick docs/study/default docs/study/adam \\
        --csv benchmarks/study_results.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
from pathlib import Path

import numpy as np
import yaml

# Minutes each study may take on 2 CPU cores, by its folder's name.
TARGETS = {"default": 60.0, "quick": 3.0}


def cpu() -> str:
    """The processor's name and the cores this process may use."""
    name = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as file:
        for line in file:
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name}, {len(os.sched_getaffinity(0))} cores"


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


def conditions(plan: dict) -> str:
    budget = plan["budget"]
    epochs = "/".join(str(budget["epochs"][n]) for n in plan["networks"])
    parts = [
        plan["optimizer"],
        f"label noise {plan['label_noise']:.0%}",
        f"{', '.join(plan['networks'])}",
        f"{len(plan['losses'])} losses, {budget['n_trials']} rates, "
        f"{len(budget['seeds'])} seeds, {epochs} epochs",
    ]
    if budget["train_fraction"] < 1:
        parts.append(f"{budget['train_fraction']:.0%} of each epoch")
    return "; ".join(parts)


def fixed_cost(trials: list[dict[str, str]], network: str) -> tuple[float, float]:
    """Seconds per fit and per epoch for ``network``: least squares through its trials."""
    points = [
        (int(t["epochs"]), float(t["seconds"]))
        for t in trials
        if t["network"] == network and t["seconds"] and int(t["epochs"] or 0) > 0
    ]
    epochs, seconds = np.array(points, dtype=float).T
    if len(set(epochs)) < 2:
        return float("nan"), float(seconds.sum() / epochs.sum())
    slope, intercept = np.polyfit(epochs, seconds, 1)
    return float(intercept), float(slope)


def measure(folder: Path) -> dict[str, object]:
    plan = yaml.safe_load((folder / "study.yaml").read_text())
    trials = rows_of(folder / "tuning_trials.csv")
    results = rows_of(folder / "results.csv")
    invocations = rows_of(folder / "invocations.csv")
    wall = sum(float(r["seconds"]) for r in invocations) / 60
    recorded = sum(float(t["seconds"] or 0) for t in trials) + sum(
        float(r["seconds"]) for r in results
    )
    costs = {n: fixed_cost(trials, n) for n in plan["networks"]}
    target = TARGETS.get(folder.name)
    return {
        "study": folder.name,
        "conditions": conditions(plan),
        "tuning_fits": len(trials),
        "seed_fits": len(results),
        "fit_minutes": round(recorded / 60, 1),
        "wall_minutes": round(wall, 1),
        "invocations": len(invocations),
        "workers": "/".join(dict.fromkeys(r["workers"] for r in invocations)),
        "target_minutes": target or "",
        "met": "" if target is None else ("yes" if wall <= target else "no"),
        **{f"{n}_fixed_s": round(c[0], 2) for n, c in costs.items()},
        **{f"{n}_per_epoch_s": round(c[1], 2) for n, c in costs.items()},
    }


def seconds(value: object) -> str:
    """``1.1 s``; ``-`` where there is nothing to fit (one length of run only, or none)."""
    return "-" if value is None or value != value else f"{value} s"


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        f"Measured on {cpu()}.",
        "",
        "| study | conditions | fits (tuning + seeds) | wall time | target | met? | fit time "
        "(sum over workers) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        calls = f", {r['invocations']} invocations" if r["invocations"] != 1 else ""
        workers = f"{r['workers']} worker{'s' * (r['workers'] != '1')}"
        target = f"{r['target_minutes']} min" if r["target_minutes"] else "-"
        lines.append(
            f"| {r['study']} | {r['conditions']} | {r['tuning_fits']} + {r['seed_fits']} | "
            f"{r['wall_minutes']} min ({workers}{calls}) | {target} | "
            f"{r['met'] or '-'} | {r['fit_minutes']} min |"
        )
    columns = dict.fromkeys(k for r in rows for k in r)
    networks = [k.removesuffix("_fixed_s") for k in columns if k.endswith("_fixed_s")]
    lines += [
        "",
        "Each fit's cost, seconds = fixed + per epoch x epochs, fitted to the tuning trials:",
        "",
        "| study | " + " | ".join(f"{n}: fixed, per epoch" for n in networks) + " |",
        "|---|" + "---|" * len(networks),
    ]
    for r in rows:
        cells = [seconds(r.get(f"{n}_fixed_s")) + ", " + seconds(r.get(f"{n}_per_epoch_s"))
                 for n in networks]  # fmt: skip
        lines.append(f"| {r['study']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="finished study folders")
    parser.add_argument("--csv", type=Path, help="also write the rows to this CSV file")
    args = parser.parse_args()
    rows = [measure(folder) for folder in args.folders]
    if args.csv:
        columns = list(dict.fromkeys(k for r in rows for k in r))
        with args.csv.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
    print(table(rows))


if __name__ == "__main__":
    main()
