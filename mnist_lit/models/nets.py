"""Networks: each maps images ``(B, 1, 28, 28)`` to logits ``(B, 10)``.

No softmax inside: the loss decides what to do with the logits, so any network can be
trained with any loss. Each network with arguments records them (Lightning's
``HyperparametersMixin``), so that a checkpoint can name the network it holds and build it
again.
"""

from __future__ import annotations

from collections.abc import Sequence

from lightning.pytorch.core.mixins import HyperparametersMixin
from torch import Tensor, nn

from mnist_lit.data.mnist import IMAGE_PIXELS, NUM_CLASSES


class SoftmaxRegression(nn.Module):
    """The tutorial's model: one ``Linear(784, 10)``; softmax lives in the loss."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(IMAGE_PIXELS, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.flatten(1))  # (B, 784) -> (B, 10)


_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


# How an MLP's weights start: PyTorch's default, or Nielsen's N(0, 1).
INITS = ("default", "normal")


class MLP(HyperparametersMixin, nn.Module):
    """Fully connected network ``784 -> hidden... -> 10``.

    Args:
        hidden_sizes: width of each hidden layer; ``[30]`` and ``[100]`` are Nielsen's
            classic 784-30-10 and 784-100-10 networks.
        activation: one of ``relu``, ``sigmoid``, ``tanh``, ``gelu``.
        init: ``default``, PyTorch's (uniform, scaled by each layer's inputs), or ``normal``,
            every weight and bias drawn from N(0, 1) as in Nielsen's book, chapters 1 to 3.
    """

    def __init__(
        self, hidden_sizes: Sequence[int] = (100,), activation: str = "relu", init: str = "default"
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"MLP activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        if init not in INITS:
            raise ValueError(f"MLP init must be one of {list(INITS)}, got {init!r}")
        if not hidden_sizes or any(size <= 0 for size in hidden_sizes):
            raise ValueError(f"MLP hidden_sizes must be positive widths, got {list(hidden_sizes)}")
        self.save_hyperparameters()  # so that a checkpoint can rebuild it
        self.hidden_sizes = list(hidden_sizes)
        self.activation, self.init = activation, init
        layers: list[nn.Module] = [nn.Flatten()]
        width = IMAGE_PIXELS
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), _ACTIVATIONS[activation]()]
            width = size
        layers.append(nn.Linear(width, NUM_CLASSES))
        self.layers = nn.Sequential(*layers)
        for layer in self.layers if init == "normal" else ():
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight)
                nn.init.normal_(layer.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class CNN(HyperparametersMixin, nn.Module):
    """A small LeNet-style network: two conv blocks, then two linear layers.

    ``conv(1->c1, 5) -> relu -> maxpool -> conv(c1->c2, 5) -> relu -> maxpool ->
    linear(c2*4*4 -> hidden) -> relu -> dropout -> linear(hidden -> 10)``.
    """

    def __init__(
        self, channels: tuple[int, int] = (16, 32), hidden: int = 128, dropout: float = 0.25
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # so that a checkpoint can rebuild it
        self.channels, self.hidden, self.dropout = tuple(channels), hidden, dropout
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size=5),  # (B, c1, 24, 24)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, c1, 12, 12)
            nn.Conv2d(c1, c2, kernel_size=5),  # (B, c2, 8, 8)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, c2, 4, 4)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 4 * 4, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, NUM_CLASSES),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
