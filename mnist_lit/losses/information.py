"""Entropy, cross-entropy and KL divergence of discrete distributions, by the book.

These work on probabilities, not logits: they are for reasoning about a prediction, as the
tutorial does by hand. Training uses :mod:`mnist_lit.losses`.

The tutorial's worked example writes :math:`\\log_2` but its numbers (0.916 and 0.0202) are
natural logarithms, i.e. nats. Pass ``base=2`` for bits (1.32 and 0.0291).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

Distribution = Tensor | Sequence[float]
_SUM_TOLERANCE = 1e-6


def _as_distribution(p: Distribution, name: str) -> Tensor:
    """``p`` as float64 with probabilities on its last axis; ``ValueError`` if it is not one."""
    tensor = torch.as_tensor(p, dtype=torch.float64)
    if tensor.ndim == 0 or tensor.shape[-1] == 0:
        raise ValueError(f"{name} must hold probabilities along its last axis, got {p!r}")
    if not torch.isfinite(tensor).all() or (tensor < 0).any():
        raise ValueError(f"{name} must hold non-negative finite probabilities, got {p!r}")
    sums = tensor.sum(dim=-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=_SUM_TOLERANCE, rtol=0):
        raise ValueError(f"{name} must sum to 1 along its last axis, got sums {sums.tolist()}")
    return tensor


def entropy(p: Distribution, base: float = math.e) -> Tensor:
    r"""Entropy of ``p``: the average surprise of its outcomes.

    .. math:: H(p) = -\sum_i p_i \log p_i \qquad (0 \log 0 = 0)

    Args:
        p: probabilities along the last axis; leading axes are a batch.
        base: of the logarithm: ``math.e`` for nats (default), 2 for bits.

    Example:
        >>> round(entropy([0.5, 0.5], base=2).item(), 4)
        1.0
        >>> round(entropy([1.0, 0.0, 0.0, 0.0, 0.0]).item(), 4)
        0.0
    """
    return cross_entropy(p, p, base)  # H(p) = H(p, p)


def cross_entropy(p: Distribution, q: Distribution, base: float = math.e) -> Tensor:
    r"""Cross-entropy of prediction ``q`` against the true distribution ``p``.

    .. math:: H(p, q) = -\sum_i p_i \log q_i

    Infinite when ``q`` gives zero probability to an outcome ``p`` allows.

    Args:
        p: the true probabilities (e.g. a one-hot label), along the last axis.
        q: the predicted probabilities, same shape.
        base: of the logarithm: ``math.e`` for nats (default), 2 for bits.

    Example:
        The tutorial's label and its two predictions; with a one-hot label the
        cross-entropy is :math:`-\log q_{\text{true}}`:

        >>> label = [1, 0, 0, 0, 0]
        >>> q1 = [0.4, 0.3, 0.05, 0.05, 0.2]
        >>> q2 = [0.98, 0.01, 0, 0, 0.01]
        >>> f"{cross_entropy(label, q1):.3f} nats, {cross_entropy(label, q2):.4f} nats"
        '0.916 nats, 0.0202 nats'
        >>> bits1, bits2 = cross_entropy(label, q1, base=2), cross_entropy(label, q2, base=2)
        >>> f"{bits1:.2f} bits, {bits2:.4f} bits"
        '1.32 bits, 0.0291 bits'
    """
    p = _as_distribution(p, "p")
    q = _as_distribution(q, "q")
    if p.shape != q.shape:
        raise ValueError(
            f"p and q must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}"
        )
    if base <= 0 or base == 1:
        raise ValueError(
            f"base must be positive and not 1 (2 for bits, math.e for nats), got {base}"
        )
    terms = torch.where(p > 0, -p * (q.log() / math.log(base)), torch.zeros_like(p))
    return terms.sum(dim=-1)


def kl_divergence(p: Distribution, q: Distribution, base: float = math.e) -> Tensor:
    r"""Kullback-Leibler divergence of ``q`` from ``p``: the extra cost of coding ``p`` with ``q``.

    .. math:: D_{KL}(p \,\|\, q) = \sum_i p_i \log \frac{p_i}{q_i} = H(p, q) - H(p)

    For a one-hot ``p``, :math:`H(p) = 0`, so it equals the cross-entropy: minimising
    cross-entropy against labels is minimising the KL divergence.

    Example:
        >>> label = [1, 0, 0, 0, 0]
        >>> q1 = [0.4, 0.3, 0.05, 0.05, 0.2]
        >>> f"{kl_divergence(label, q1):.3f} nats"
        '0.916 nats'
        >>> round(kl_divergence([0.5, 0.5], [0.9, 0.1], base=2).item(), 4)
        0.737
    """
    return cross_entropy(p, q, base) - entropy(p, base)
