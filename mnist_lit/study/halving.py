"""How the study tunes a rate at full length and affords it: successive halving in rounds.

Round 0 trains every rate of the grid for one epoch; each later round trains the better
half of the round before (at least two) for longer, and the last round trains its
finalists for the network's full budget. Every round's fit starts from scratch with the
full budget's schedule and stops at its round's epochs, so a round's result is the start
of the full-length run of that rate and seed. The rate chosen is the finalist with the best
validation accuracy (the smaller rate on a tie).

The rounds are decided by the results alone: a round starts when every fit of the round
before has finished, whichever Dask worker ran it and in whatever order; Optuna's
successive-halving and Hyperband pruners instead judge a trial against the trials finished
*so far*, which depends on the number of workers.

**The grid's edge.** When the chosen rate is the smallest or largest rate tried, the next
rate beyond it (one step of the grid) is trained at the full budget as a finalist too, up
to a number of times set by the study's budget: a rate at the edge of its grid may not be
the best one.

A fit of the tuning is a ``RateRound``, ``(rate, round)``; ``finished`` maps each finished
one to its validation accuracy, or None when it diverged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

RateRound = tuple[float, int]
# Epochs of the early rounds, where shorter than the full budget.
EARLY_EPOCHS = (1, 3)


def round_epochs(full: int) -> tuple[int, ...]:
    """The epochs of each round for a network trained ``full`` epochs.

    >>> round_epochs(10), round_epochs(3), round_epochs(1)
    ((1, 3, 10), (1, 3), (1,))
    """
    return (*(e for e in EARLY_EPOCHS if e < full), full)


def round_sizes(grid_size: int, rounds: int) -> tuple[int, ...]:
    """How many rates each round trains: the grid, then half of the round before, rounded
    up, and never fewer than two finalists.

    >>> round_sizes(8, 3), round_sizes(3, 2), round_sizes(5, 1)
    ((8, 4, 2), (3, 2), (5,))
    """
    sizes = [grid_size]
    for _ in range(rounds - 1):
        sizes.append(min(sizes[-1], max(2, math.ceil(sizes[-1] / 2))))
    return tuple(sizes)


def ranked(results: Mapping[float, float | None]) -> list[float]:
    """The rates that did not diverge, best first: the higher accuracy, then the smaller
    rate."""
    complete = {rate: value for rate, value in results.items() if value is not None}
    return sorted(complete, key=lambda rate: (-complete[rate], rate))


def step_beyond(grid: Sequence[float], rate: float, up: bool) -> float:
    """One step of the evenly log-spaced ``grid`` above (or below) ``rate``, to three
    significant digits.

    >>> step_beyond((0.01, 0.1, 1.0), 1.0, up=True), step_beyond((0.01, 0.1, 1.0), 0.01, up=False)
    (10.0, 0.001)
    """
    ratio = (max(grid) / min(grid)) ** (1 / (len(grid) - 1))
    return float(f"{rate * ratio if up else rate / ratio:.3g}")


def wanted(
    grid: Sequence[float], rounds: int, finished: Mapping[RateRound, float | None], extensions: int
) -> list[RateRound]:
    """Every fit that the finished ones call for: the grid's round 0, each round whose
    round before has finished, and up to ``extensions`` rates past a chosen edge rate."""
    sizes = round_sizes(len(grid), rounds)
    fits = [(rate, 0) for rate in grid]
    for k in range(1, rounds):
        before = [(r, j) for r, j in fits if j == k - 1]
        if any(fit not in finished for fit in before):
            return fits
        fits += [(rate, k) for rate in ranked({r: finished[(r, j)] for r, j in before})[: sizes[k]]]
    last = rounds - 1
    for _ in range(extensions if len(grid) > 1 else 0):
        final = {r: finished.get((r, j)) for r, j in fits if j == last}
        if any((r, last) not in finished for r in final) or not ranked(final):
            return fits
        best = ranked(final)[0]
        tried = [r for r, _ in fits]
        if min(tried) < best < max(tried):
            return fits
        fits.append((step_beyond(grid, best, up=best == max(tried)), last))
    return fits


def chosen(
    grid: Sequence[float], rounds: int, finished: Mapping[RateRound, float | None], extensions: int
) -> float | None:
    """The tuned rate once every fit called for has finished, or None before. Raises
    ValueError when every finalist diverged."""
    fits = wanted(grid, rounds, finished, extensions)
    if any(fit not in finished for fit in fits):
        return None
    final = ranked({r: finished[(r, j)] for r, j in fits if j == rounds - 1})
    if not final:
        raise ValueError("every rate diverged")
    return final[0]
