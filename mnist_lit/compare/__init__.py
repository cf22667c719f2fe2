"""``mnist-lit compare``: train several losses on the same data, network, seed and initial
weights, and write what they did epoch by epoch.

Outputs, in ``--output-dir`` (default ``outputs/compare/<preset>/``):

- ``metrics.csv``: one row per loss, seed and epoch. Epoch 0 is the untrained network.
  Columns: validation and test accuracy, cross-entropy on logits and expected calibration
  error; ``dcdz``, the mean absolute per-sample gradient of the training loss with respect
  to the logits, and ``saturated``, the share of output activations within 0.01 of 0 or 1
  (for epochs >= 1 averaged over that epoch's training steps; for epoch 0 measured on the
  validation set at the initial weights, before any update).
- ``curves.png``: the learning curves, mean over seeds with a band of one standard deviation.
- ``summary.md``: the Markdown table also printed at the end (mean ± std over seeds).

:mod:`~mnist_lit.compare.experiment` trains and measures, :mod:`~mnist_lit.compare.report`
writes it, :mod:`~mnist_lit.compare.command` holds the options.
"""

from mnist_lit.compare.experiment import PRESETS, run_comparison, saturated_sigmoid_mlp

__all__ = ["PRESETS", "run_comparison", "saturated_sigmoid_mlp"]
