"""(b) The floor: the same model and optimiser over in-memory tensors, no DataLoader, no framework.

Prints one JSON line of measurements.
"""

import argparse
import json
import time

import torch
from torch import nn
from torchvision import datasets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(42)

    train = datasets.MNIST(args.data_dir, train=True)
    test = datasets.MNIST(args.data_dir, train=False)
    images = train.data.flatten(1).float().div_(255)  # (60000, 784)
    labels = train.targets
    model = nn.Sequential(nn.Linear(784, 10), nn.Softmax(dim=1))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)

    start = time.perf_counter()
    steps = 0
    for _ in range(args.epochs):
        for idx in torch.randperm(len(labels)).split(64):
            optimizer.zero_grad()
            loss_fn(model(images[idx]), labels[idx]).backward()
            optimizer.step()
            steps += 1
    train_seconds = time.perf_counter() - start

    with torch.no_grad():
        predicted = model(test.data.flatten(1).float().div_(255)).argmax(1)
    test_acc = (predicted == test.targets).float().mean().item()
    print(json.dumps({"train_seconds": train_seconds, "steps": steps, "test_acc": test_acc}))


if __name__ == "__main__":
    main()
