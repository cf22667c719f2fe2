"""Tuning: ``mnist-lit tune``, hyperparameter search for any config on Optuna, and
``mnist-lit lr_find``, Lightning's learning-rate range test.

- :mod:`~mnist_lit.tuning.search` reads a search file (dotted config keys and ranges);
- :mod:`~mnist_lit.tuning.engine` is the Optuna study: storage, trials, pruning, resuming;
- :mod:`~mnist_lit.tuning.outputs` writes ``best.yaml``, ``trials.csv`` and the plots;
- :mod:`~mnist_lit.tuning.command` holds tune's options;
- :mod:`~mnist_lit.tuning.lr_find` runs the range test.

Optuna is imported only when a tune runs (``pip install 'mnist-lit[tune]'``).
"""
