from mnist_lit.data.batches import EpochOrder, InMemoryBatches, PredictBatch
from mnist_lit.data.datamodule import MNISTDataModule

__all__ = ["EpochOrder", "InMemoryBatches", "MNISTDataModule", "PredictBatch"]
