"""The docstrings' examples are tests too: the tutorial's numbers live there. pytest's
``--doctest-modules`` collects them from every module of the package, so a new module's
examples run without being listed anywhere."""

import pytest


def test_every_modules_examples_are_collected(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.getoption("doctestmodules")
    assert "mnist_lit" in pytestconfig.getini("testpaths")
