from mnist_lit.models.classifier import MNISTClassifier
from mnist_lit.models.nets import CNN, MLP, SoftmaxRegression

__all__ = ["CNN", "MLP", "MNISTClassifier", "SoftmaxRegression"]
