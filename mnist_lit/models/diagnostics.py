"""The loss study's measurements of a batch of outputs, written once for the classifier
and for ``mnist-lit compare``, and the reliability diagram's bins."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

# An output counts as saturated when its activation is this close to 0 or 1: there the
# sigmoid's slope a(1 - a) is below 0.0099, under 4% of its maximum 0.25.
SATURATION_MARGIN = 0.01


def output_probabilities(logits: Tensor, activation: str) -> Tensor:
    """The loss's view of the outputs: ``softmax`` over classes or ``sigmoid`` per class."""
    if activation == "sigmoid":
        return logits.sigmoid()
    if activation == "softmax":
        return logits.softmax(dim=-1)
    raise ValueError(f"activation must be 'softmax' or 'sigmoid', got {activation!r}")


def saturated_share(probs: Tensor, margin: float = SATURATION_MARGIN) -> Tensor:
    """Fraction of output activations within ``margin`` of 0 or 1."""
    return ((probs < margin) | (probs > 1 - margin)).float().mean()


def per_sample_dcdz(grad: Tensor) -> Tensor:
    r"""Mean absolute per-sample gradient :math:`|\partial C_x / \partial z_k|`.

    ``grad`` is the gradient ``(B, C)`` of a loss that averages over the batch, so each
    entry is :math:`\partial C_x / \partial z_k` divided by ``B``; times ``B`` undoes it.

    Example:
        >>> import torch
        >>> round(per_sample_dcdz(torch.tensor([[0.1, -0.1], [0.2, 0.0]])).item(), 4)
        0.2
    """
    return grad.abs().mean() * len(grad)


def brier_score(probs: Tensor, labels: Tensor) -> Tensor:
    r"""The multiclass Brier score of ``probs`` ``(B, C)`` for integer ``labels`` ``(B,)``:
    :math:`\sum_k (p_k - y_k)^2` with :math:`y` one-hot, averaged over the batch (0 for
    certain and right, 2 for certain and wrong).

    Example:
        >>> import torch
        >>> round(brier_score(torch.tensor([[0.7, 0.2, 0.1]]), torch.tensor([0])).item(), 4)
        0.14
    """
    one_hot = F.one_hot(labels, probs.shape[-1]).to(probs.dtype)
    return (probs - one_hot).square().sum(-1).mean()


def reliability_bins(confidence: Tensor, correct: Tensor, n_bins: int = 15) -> Tensor:
    r"""Predictions in ``n_bins`` equal-width confidence bins: a ``(3, n_bins)`` tensor of
    each bin's count, sum of ``confidence`` (the top probabilities) and number
    ``correct``. Bins :math:`[k/n, (k+1)/n)`, as torchmetrics' calibration error has
    them; 1 joins the last. Sums, so that the bins of batches (or processes) add up.

    Example:
        >>> import torch
        >>> reliability_bins(torch.tensor([0.05, 0.95, 1.0]), torch.tensor([0, 1, 0]), 2)
        tensor([[1.0000, 2.0000],
                [0.0500, 1.9500],
                [0.0000, 1.0000]])
    """
    which = (confidence * n_bins).long().clamp(0, n_bins - 1)
    values = torch.stack([torch.ones_like(confidence), confidence, correct.to(confidence)])
    bins = torch.zeros(3, n_bins, dtype=values.dtype, device=values.device)
    return bins.index_add_(1, which, values)


class ReliabilityBins(Metric):
    """:func:`reliability_bins` of the top probability of ``probs`` ``(B, C)`` against
    ``target`` ``(B,)``, summed over the batches (and, by torchmetrics, the processes)."""

    full_state_update = False

    def __init__(self, n_bins: int = 15) -> None:
        super().__init__()
        self.n_bins = n_bins
        self.add_state("bins", torch.zeros(3, n_bins), dist_reduce_fx="sum")
        self.bins: Tensor

    def update(self, probs: Tensor, target: Tensor) -> None:
        confidence, predicted = probs.float().max(dim=-1)
        self.bins += reliability_bins(confidence, predicted == target, self.n_bins)

    def compute(self) -> Tensor:
        return self.bins
