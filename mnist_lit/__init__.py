"""mnist_lit: MNIST with PyTorch Lightning, and why classifiers use cross-entropy."""

from mnist_lit.data import MNISTDataModule
from mnist_lit.errors import MnistLitError
from mnist_lit.losses import CrossEntropy, Quadratic, SoftmaxTwiceCrossEntropy
from mnist_lit.models import CNN, MLP, MNISTClassifier, SoftmaxRegression

__all__ = [
    "CNN",
    "MLP",
    "CrossEntropy",
    "MNISTClassifier",
    "MNISTDataModule",
    "MnistLitError",
    "Quadratic",
    "SoftmaxRegression",
    "SoftmaxTwiceCrossEntropy",
]
