from mnist_lit.data.batches import TensorPairs
from mnist_lit.data.datamodule import MNISTDataModule

__all__ = ["MNISTDataModule", "TensorPairs"]
