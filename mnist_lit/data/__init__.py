from mnist_lit.data.batches import EpochShuffle, TensorPairs
from mnist_lit.data.datamodule import MNISTDataModule

__all__ = ["EpochShuffle", "MNISTDataModule", "TensorPairs"]
