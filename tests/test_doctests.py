"""The docstrings' examples are tests too: the tutorial's numbers live there."""

import doctest
import importlib

import pytest

MODULES = [
    "mnist_lit.diagnostics",
    "mnist_lit.information",
    "mnist_lit.losses.cross_entropy",
    "mnist_lit.losses.quadratic",
    "mnist_lit.losses.binary",
    "mnist_lit.losses.square",
    "mnist_lit.study.plan",
    "mnist_lit.study.stats",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0
    assert result.failed == 0
