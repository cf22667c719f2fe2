"""mnist_lit: MNIST with PyTorch Lightning, and why classifiers use cross-entropy.

The core, which imports nothing of the commands: the data module, the LightningModule and
its networks, the losses."""

from mnist_lit.data import MNISTDataModule
from mnist_lit.losses import CrossEntropy, Quadratic, SoftmaxTwiceCrossEntropy
from mnist_lit.models import CNN, MLP, MNISTClassifier, SoftmaxRegression

__all__ = [
    "CNN",
    "MLP",
    "CrossEntropy",
    "MNISTClassifier",
    "MNISTDataModule",
    "Quadratic",
    "SoftmaxRegression",
    "SoftmaxTwiceCrossEntropy",
]
