from mnist_lit.data.batches import EpochOrder, InMemoryBatches
from mnist_lit.data.datamodule import MNISTDataModule

__all__ = ["EpochOrder", "InMemoryBatches", "MNISTDataModule"]
