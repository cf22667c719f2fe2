"""The training DataLoader's own cost per batch, with no training: its sampler drawn by
torch's ``DistributedSampler`` (as the data module does) against a seeded
``RandomSampler``, the two taking turns in every repeat; the median of five is printed.

    OMP_NUM_THREADS=1 python benchmarks/loader.py
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Sampler

from mnist_lit.data.batches import TensorPairs, whole_batch

DATA = TensorPairs(torch.zeros(55_000, 28, 28, dtype=torch.uint8), torch.zeros(55_000).long())
SAMPLERS = {
    "DistributedSampler (the data module's)": lambda: DistributedSampler(DATA, 1, 0, seed=1),
    "RandomSampler": lambda: RandomSampler(DATA, generator=torch.Generator().manual_seed(1)),
}


def microseconds_per_batch(sampler: Sampler[int]) -> float:
    loader = DataLoader(DATA, batch_size=64, sampler=sampler, collate_fn=whole_batch)
    start, batches = time.perf_counter(), 0
    for _ in loader:
        batches += 1
    return (time.perf_counter() - start) / batches * 1e6


if __name__ == "__main__":
    times: dict[str, list[float]] = {name: [] for name in SAMPLERS}
    for _ in range(5):
        for name, make in SAMPLERS.items():
            times[name].append(microseconds_per_batch(make()))
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.1f} us |")
