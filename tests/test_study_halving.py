"""The study's successive halving: which rates each round trains, and the grid's edge."""

from __future__ import annotations

import itertools

import pytest

from mnist_lit.study.halving import chosen, ranked, wanted

GRID = (0.01, 0.1, 1.0, 10.0)


def at_edge(grid, rounds, finished, extensions):
    """Whether the chosen rate is the smallest or largest rate tried."""
    tried = {rate for rate, _ in wanted(grid, rounds, finished, extensions)}
    return chosen(grid, rounds, finished, extensions) in (min(tried), max(tried))


def run_rounds(accuracy, grid=GRID, rounds=3, extensions=2):
    """Finish every unit called for, round after round, with ``accuracy(rate, round)``."""
    finished = {}
    while True:
        new = [u for u in wanted(grid, rounds, finished, extensions) if u not in finished]
        if not new:
            return finished
        for rate, k in new:
            finished[(rate, k)] = accuracy(rate, k)


def peaked(best):
    """Accuracy highest at ``best``, falling off on the log scale, the same each round."""
    from math import log10

    return lambda rate, k: 0.9 - 0.01 * abs(log10(rate) - log10(best)) + 0.001 * k


def test_each_round_trains_the_better_half_of_the_one_before():
    finished = run_rounds(peaked(0.1))
    by_round = {k: sorted(r for r, j in finished if j == k) for k in range(3)}
    assert by_round == {0: list(GRID), 1: [0.01, 0.1], 2: [0.01, 0.1]}
    assert chosen(GRID, 3, finished, 2) == 0.1
    assert not at_edge(GRID, 3, finished, 2)


def test_a_later_round_waits_for_the_whole_round_before():
    first = {(rate, 0): 0.5 for rate in GRID[:-1]}
    assert wanted(GRID, 3, first, 2) == [(rate, 0) for rate in GRID]
    assert chosen(GRID, 3, first, 2) is None


def test_diverged_rates_are_never_promoted():
    finished = run_rounds(lambda rate, k: None if rate >= 1 else 0.9 + rate)
    assert {r for r, k in finished if k > 0} == {0.01, 0.1}
    assert chosen(GRID, 3, finished, 2) == 0.1


def test_a_round_smaller_than_planned_still_leads_to_the_finalists():
    grid = tuple(10.0**e for e in range(-4, 4))  # 8 rates: rounds of 4, then 2, planned
    finished = run_rounds(lambda rate, k: None if rate > 0.01 else 0.9 + rate, grid=grid)
    assert sorted(r for r, k in finished if k == 1) == [0.0001, 0.001, 0.01]
    assert sorted(r for r, k in finished if k == 2) == [0.001, 0.01]
    assert chosen(grid, 3, finished, 2) == 0.01


def test_ties_go_to_the_smaller_rate_in_any_order():
    results = {1.0: 0.9, 0.1: 0.9, 10.0: 0.8}
    for order in itertools.permutations(results):
        assert ranked({rate: results[rate] for rate in order}) == [0.1, 1.0, 10.0]


def test_a_chosen_rate_at_the_top_edge_extends_the_grid_until_it_is_inside():
    finished = run_rounds(peaked(100.0))
    extensions = sorted(r for r, k in finished if r not in GRID)
    assert extensions == [100.0, 1000.0]
    assert all(k == 2 for r, k in finished if r in extensions)  # at the full budget
    assert chosen(GRID, 3, finished, 2) == 100.0
    assert not at_edge(GRID, 3, finished, 2)


def test_a_chosen_rate_at_the_bottom_edge_extends_downwards():
    finished = run_rounds(peaked(0.01))
    assert sorted(r for r, _ in finished if r not in GRID) == [0.001]
    assert chosen(GRID, 3, finished, 2) == 0.01


def test_a_diverged_neighbour_beyond_the_edge_bounds_the_choice():
    finished = run_rounds(lambda rate, k: None if rate > 10 else 0.5 + rate / 100)
    assert (100.0, 2) in finished and finished[(100.0, 2)] is None
    assert chosen(GRID, 3, finished, 2) == 10.0
    assert not at_edge(GRID, 3, finished, 2)


def test_the_extensions_are_bounded_and_the_edge_reported():
    finished = run_rounds(lambda rate, k: 0.5 + rate / 1e6)
    tried = {r for r, _ in finished}
    assert tried - set(GRID) == {100.0, 1000.0}
    assert at_edge(GRID, 3, finished, 2)
    unextended = run_rounds(lambda rate, k: 0.5 + rate / 1e6, extensions=0)
    assert {r for r, _ in unextended} == set(GRID)


def test_one_round_trains_the_grid_at_full_length():
    finished = run_rounds(peaked(0.1), rounds=1)
    assert sorted(finished) == [(rate, 0) for rate in GRID]


def test_every_finalist_diverged_is_an_error():
    finished = run_rounds(lambda rate, k: 0.5 if k == 0 else None)
    with pytest.raises(ValueError, match="diverged"):
        chosen(GRID, 3, finished, 2)
