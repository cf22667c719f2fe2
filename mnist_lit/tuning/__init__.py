"""Tuning before training: ``mnist-lit lr_find``, Lightning's learning-rate range test on
any config (:mod:`~mnist_lit.tuning.lr_find`), and the refusal of batch-size scaling, which
does not fit the in-memory batches (:mod:`~mnist_lit.tuning.command`)."""
