"""Two "nodes" on loopback, launched as ``docs/distributed.md`` says: ``torchrun --nnodes 2
--nproc-per-node 1``, one CPU process each over gloo, each in its own working folder with its
own copy of the data, as two machines would have. They fit, test and predict; the
checkpoint and the metrics are those of one process with the same global batch."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mnist_lit.cli import main
from tests.cli_helpers import CONSOLE_SCRIPT, TUTORIAL, fake_data, free_port
from tests.digit_images import draw_one, draw_zero

TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
NODES = ["--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.num_nodes=2",
         "--trainer.strategy=ddp"]  # fmt: skip
RUN = "logs/seed_cross_entropy/version_0"


def _on_two_nodes(folders: list[Path], *args: str) -> None:
    """Run ``mnist-lit args`` on both nodes at once, each in its folder; both must succeed."""
    port = free_port()
    processes = [
        subprocess.Popen(
            [
                TORCHRUN,
                "--nnodes=2",
                "--nproc-per-node=1",
                f"--node-rank={rank}",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                "-m",
                "mnist_lit",
                *args,
                *NODES,
            ],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank, folder in enumerate(folders)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], "\n\n".join(outputs)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
def test_two_nodes_fit_test_and_predict_as_one_process(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = [tmp_path / f"node{rank}" for rank in range(2)]
    for node in nodes:  # each machine has its own copy of the four files
        shutil.copytree(fake_mnist_dir / "MNIST" / "raw", node / "data" / "MNIST" / "raw")
    data = fake_data(Path("data"))  # relative: each node reads its own copy
    fit = ["fit", "--config", TUTORIAL, *data, "--trainer.max_epochs=2", "--seed_everything=3"]
    # Two processes of 32 images a step: the global batch of one process of 64.
    _on_two_nodes(nodes, *fit, "--data.batch_size=32")

    single = tmp_path / "single"
    single.mkdir()
    shutil.copytree(fake_mnist_dir / "MNIST" / "raw", single / "data" / "MNIST" / "raw")
    monkeypatch.chdir(single)
    main([*fit, "--data.batch_size=64"])

    # Only the first node writes the run: its metrics and checkpoint are the single run's.
    assert not (nodes[1] / "logs").exists()
    two, one = _csv(nodes[0] / RUN / "metrics.csv"), _csv(single / RUN / "metrics.csv")
    assert [row.keys() for row in two] == [row.keys() for row in one]
    for row_two, row_one in zip(two, one, strict=True):
        for key, value in row_one.items():
            if value and key != "step":
                assert float(row_two[key]) == pytest.approx(float(value), abs=1e-4), key
    (checkpoint,) = (nodes[0] / RUN / "checkpoints").glob("best-*.ckpt")
    weights = torch.load(checkpoint, weights_only=True)["state_dict"]
    (one_checkpoint,) = (single / RUN / "checkpoints").glob("best-*.ckpt")
    for name, value in torch.load(one_checkpoint, weights_only=True)["state_dict"].items():
        assert torch.allclose(weights[name], value, atol=1e-5), name

    # The second machine gets the checkpoint as a user copies it; both nodes test it.
    shutil.copytree(nodes[0] / "logs", nodes[1] / "logs")
    ckpt = f"--ckpt_path={checkpoint.relative_to(nodes[0])}"
    _on_two_nodes(nodes, "test", "--config", TUTORIAL, *data, ckpt)
    tested = _csv(nodes[0] / "logs/seed_cross_entropy/version_1/metrics.csv")
    main(["test", "--config", TUTORIAL, *data, f"--ckpt_path={one_checkpoint}"])
    tested_once = _csv(single / "logs/seed_cross_entropy/version_1/metrics.csv")
    assert float(tested[-1]["test/acc"]) == pytest.approx(float(tested_once[-1]["test/acc"]))

    # Predict: each node its share of the images, one CSV on the first, every image once.
    for node in [*nodes, single]:
        (node / "digits").mkdir()
        for i in range(5):
            image = draw_zero((60 + 10 * i, 70)) if i % 2 else draw_one((80, 90), i < 3, 0.3)
            image.save(node / "digits" / f"{i}.png")
    predict = ["predict", "--config", TUTORIAL, *data, ckpt, "--data.predict_path=digits",
               "--predictions.path=predictions.csv"]  # fmt: skip
    _on_two_nodes(nodes, *predict)
    main([*predict[:-1], f"--ckpt_path={one_checkpoint}", "--predictions.path=predictions.csv"])
    rows = _csv(nodes[0] / "predictions.csv")
    assert [row["file"] for row in rows] == [f"digits/{i}.png" for i in range(5)]
    assert rows == _csv(single / "predictions.csv")
    assert not (nodes[1] / "predictions.csv").exists()


@pytest.mark.slow
def test_two_nodes_under_slurm_read_what_srun_sets(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SLURM launch of docs/distributed.md, with the variables srun sets for
    ``--nodes=2 --ntasks-per-node=1``: Lightning takes the ranks and the main address
    from them, and the fit is the single process's."""
    nodes = [tmp_path / f"node{rank}" for rank in range(2)]
    for node in [*nodes, tmp_path / "single"]:
        shutil.copytree(fake_mnist_dir / "MNIST" / "raw", node / "data" / "MNIST" / "raw")
    fit = ["fit", "--config", TUTORIAL, *fake_data(Path("data")), "--trainer.max_epochs=1"]
    port = str(free_port())
    processes = []
    for rank, node in enumerate(nodes):
        srun = {
            **{"SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": "2"},
            **{"SLURM_PROCID": str(rank), "SLURM_LOCALID": "0", "SLURM_NODEID": str(rank)},
            **{"SLURM_NODELIST": "127.0.0.1", "SLURM_JOB_NAME": "mnist", "MASTER_PORT": port},
        }
        processes.append(
            subprocess.Popen(
                [CONSOLE_SCRIPT, *fit, "--data.batch_size=32", *NODES],
                cwd=node,
                env={**os.environ, **srun},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], "\n\n".join(outputs)
    assert "SLURM auto-requeueing enabled" in outputs[1]  # Lightning took it for SLURM
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in outputs[1]

    monkeypatch.chdir(tmp_path / "single")
    main([*fit, "--data.batch_size=64"])
    two, one = _csv(nodes[0] / RUN / "metrics.csv"), _csv(tmp_path / "single" / RUN / "metrics.csv")
    for key in ("val/acc", "val/ce", "train/loss"):
        (a,), (b,) = ([float(r[key]) for r in rows if r[key]] for rows in (two, one))
        assert a == pytest.approx(b, abs=1e-4), key
