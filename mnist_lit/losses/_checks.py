"""Shape checks shared by every loss: cheap (no values read), so no device sync."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def check_logits_and_target(logits: Tensor, target: Tensor) -> None:
    """Raise ``ValueError`` unless ``logits`` is ``(B, C)`` and ``target`` is integer ``(B,)``."""
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (B, C), got {tuple(logits.shape)}")
    if target.shape != logits.shape[:1]:
        raise ValueError(
            f"target must have shape ({logits.shape[0]},) to match logits "
            f"{tuple(logits.shape)}, got {tuple(target.shape)}"
        )
    if target.is_floating_point():
        raise ValueError(f"target must hold integer class indices, got dtype {target.dtype}")


def one_hot_like(logits: Tensor, target: Tensor) -> Tensor:
    """One-hot ``(B, C)`` targets in the logits' dtype, as timm's losses build them inside."""
    return F.one_hot(target, num_classes=logits.shape[-1]).to(logits.dtype)
