"""``mnist-lit compare``: train several losses on the same data, network, seed and initial
weights, and write what they did epoch by epoch: ``metrics.csv`` (one row per loss, seed
and epoch, epoch 0 the untrained network), ``curves.png`` and ``summary.md``, in
``--output-dir`` (default ``outputs/compare/<preset>/``). docs/loss_study.md explains the
columns.

:mod:`~mnist_lit.compare.experiment` trains and measures, :mod:`~mnist_lit.compare.report`
writes it, :mod:`~mnist_lit.compare.command` holds the options.
"""
