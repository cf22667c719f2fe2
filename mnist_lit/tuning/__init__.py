"""Tuning: ``mnist-lit tune``, hyperparameter search for any config on Optuna (its options in
:mod:`~mnist_lit.tuning.command`, search files in :mod:`~mnist_lit.tuning.search`, the study
in :mod:`~mnist_lit.tuning.engine`, its files in :mod:`~mnist_lit.tuning.outputs`), and
``mnist-lit lr_find``, Lightning's learning-rate range test (:mod:`~mnist_lit.tuning.lr_find`).

Optuna is imported only when a tune runs (``pip install 'mnist-lit[tune]'``).
"""
