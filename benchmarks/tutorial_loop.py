"""(a) The tutorial's plain PyTorch loop: torchvision DataLoader, ToTensor per sample.

Softmax in the model, then CrossEntropyLoss (softmax twice), SGD lr 0.5, batch 64, trained on
all 60,000 training images, tested at the end. Prints one JSON line of measurements.
"""

import argparse
import json
import time

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(42)

    to_tensor = transforms.ToTensor()
    train = datasets.MNIST(args.data_dir, train=True, transform=to_tensor)
    test = datasets.MNIST(args.data_dir, train=False, transform=to_tensor)
    train_loader = DataLoader(train, batch_size=64, shuffle=True)
    test_loader = DataLoader(test, batch_size=64)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.Softmax(dim=1))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)

    start = time.perf_counter()
    steps = 0
    for _ in range(args.epochs):
        for images, labels in train_loader:
            optimizer.zero_grad()
            loss_fn(model(images), labels).backward()
            optimizer.step()
            steps += 1
    train_seconds = time.perf_counter() - start

    correct = 0
    with torch.no_grad():
        for images, labels in test_loader:
            correct += (model(images).argmax(1) == labels).sum().item()
    result = {"train_seconds": train_seconds, "steps": steps, "test_acc": correct / len(test)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
