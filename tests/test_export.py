"""``mnist-lit export``: ONNX and torch.export files that take uint8 pixels, carry the
checkpoint's pixel scaling, and are written only once they give the checkpoint's outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mnist_lit.cli import main
from mnist_lit.data.mnist import PIXEL_MEAN, PIXEL_STD
from mnist_lit.data.raw_files import read_split
from mnist_lit.export import command as export_command
from mnist_lit.models import MNISTClassifier
from mnist_lit.runs.inference import PixelClassifier
from tests.cli_helpers import FAST, TUTORIAL, cli_error, console


def _test_images(data_dir: Path, n: int) -> torch.Tensor:
    images, _ = read_split(str(data_dir), train=False)
    return images[:n]


@torch.no_grad()
def _net_logits(checkpoint: Path, x: torch.Tensor) -> np.ndarray:
    net = MNISTClassifier.load_from_checkpoint(checkpoint, map_location="cpu").net.eval()
    return net(x).numpy()


def test_onnx_file_takes_pixels_of_any_batch_and_gives_the_checkpoints_outputs(
    small_checkpoints: dict[str, Path],
    fake_mnist_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import onnxruntime

    checkpoint, output = small_checkpoints["tutorial"], tmp_path / "tutorial.onnx"
    main(["export", "--ckpt_path", str(checkpoint), "--data.data_dir", str(fake_mnist_dir),
          "--output", str(output)])  # fmt: skip
    out = capsys.readouterr().out
    assert f"wrote {output} (" in out and "KiB, onnx" in out
    assert "check on 200 test images (onnxruntime): max |logit difference|" in out
    assert "same digit on 200 of 200: passed" in out
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    (pixels,) = session.get_inputs()
    assert (pixels.name, pixels.type, pixels.shape[1:]) == ("pixels", "tensor(uint8)", [28, 28])
    for batch in (1, 7):
        images = _test_images(fake_mnist_dir, batch)
        logits, probabilities = session.run(None, {"pixels": images.numpy()})
        expected = _net_logits(checkpoint, images.unsqueeze(1).float() / 255)
        np.testing.assert_allclose(logits, expected, atol=1e-5)
        np.testing.assert_allclose(probabilities, torch.tensor(expected).softmax(-1), atol=1e-6)


def test_pt2_program_carries_the_checkpoints_normalisation(
    small_checkpoints: dict[str, Path],
    fake_mnist_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    checkpoint, output = small_checkpoints["mlp"], tmp_path / "mlp.pt2"
    main(["export", "--ckpt_path", str(checkpoint), "--format", "pt2",
          "--data.data_dir", str(fake_mnist_dir), "--output", str(output)])  # fmt: skip
    assert "normalize=True" in capsys.readouterr().out
    program = torch.export.load(str(output)).module()
    images = _test_images(fake_mnist_dir, 5)
    logits, _ = program(images)
    scaled = images.unsqueeze(1).float() / 255
    expected = _net_logits(checkpoint, (scaled - PIXEL_MEAN) / PIXEL_STD)
    np.testing.assert_allclose(logits.detach().numpy(), expected, atol=1e-5)
    assert not np.allclose(logits.detach().numpy(), _net_logits(checkpoint, scaled), atol=1e-3)


def test_an_export_that_differs_from_the_checkpoint_is_not_written(
    small_checkpoints: dict[str, Path],
    fake_mnist_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def write_unnormalised(format_name: str, model: PixelClassifier, net: str, path: Path) -> None:
        wrong = PixelClassifier(model.net, normalize=not model.normalize)  # a scaling bug
        export_command.FORMATS[format_name].write(wrong, path)

    monkeypatch.setattr(export_command, "write_model", write_unnormalised)
    output = tmp_path / "mlp.pt2"
    err = cli_error(
        ["export", "--ckpt_path", str(small_checkpoints["mlp"]), "--format", "pt2",
         "--data.data_dir", str(fake_mnist_dir), "--output", str(output)],
        capsys,
    )  # fmt: skip
    assert "does not give the checkpoint's outputs" in err and "FAILED" in err
    assert "nothing written" in err
    assert list(tmp_path.iterdir()) == []  # neither the file nor a partial one


def test_best_and_last_name_the_newest_runs_checkpoints(
    small_checkpoints: dict[str, Path],
    fake_mnist_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    checkpoints = small_checkpoints["tutorial"].parent
    monkeypatch.chdir(checkpoints.parents[3])  # where logs/ is
    main(["export", "--ckpt_path", "best", "--experiment", "seed_cross_entropy",
          "--format", "pt2", "--data.data_dir", str(fake_mnist_dir)])  # fmt: skip
    (best,) = checkpoints.glob("best-*.ckpt")
    written = Path("logs/seed_cross_entropy/version_0/checkpoints") / f"{best.stem}.pt2"
    assert written.is_file()  # beside the checkpoint, by default
    assert f"wrote {written} (" in capsys.readouterr().out


def test_a_file_that_is_not_a_checkpoint_is_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.ckpt"
    notes.write_text("not a checkpoint")
    err = cli_error(["export", "--ckpt_path", str(notes)], capsys)
    assert f"--ckpt_path {notes} is not a readable Lightning checkpoint" in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--ckpt_path", "missing.ckpt"], "--ckpt_path missing.ckpt: no such file"),
        (["--ckpt_path", "best"], "no best checkpoint under logs/default/version_*/checkpoints"),
        (["--ckpt_path", "CKPT", "--format", "tflite"], "--format"),
        (["--ckpt_path", "CKPT", "--output", "model.bin"], "file's name ends in .onnx"),
        (["--ckpt_path", "CKPT", "--output", "no/such/model.onnx"], "no/such does not exist"),
        (["--ckpt_path", "FOREIGN"], "does not rebuild an MNISTClassifier"),
        ([], "the following arguments are required: ckpt_path"),
    ],
    ids=["missing", "no-runs", "format", "suffix", "folder", "not-ours", "no-checkpoint"],
)  # fmt: skip
def test_a_bad_option_is_one_message(
    options: list[str],
    message: str,
    small_checkpoints: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    foreign = tmp_path / "foreign.ckpt"  # a Lightning checkpoint of some other module
    torch.save({"state_dict": {"layer.weight": torch.ones(2)}, "hyper_parameters": {"width": 2}},
               foreign)  # fmt: skip
    paths = {"CKPT": str(small_checkpoints["tutorial"]), "FOREIGN": str(foreign)}
    err = cli_error(["export", *(paths.get(option, option) for option in options)], capsys)
    assert message in err


def test_onnx_without_its_packages_names_the_extra(
    small_checkpoints: dict[str, Path],
    fake_mnist_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    err = cli_error(
        ["export", "--ckpt_path", str(small_checkpoints["tutorial"]),
         "--data.data_dir", str(fake_mnist_dir), "--output", str(tmp_path / "m.onnx")],
        capsys,
    )  # fmt: skip
    assert "--format onnx needs a package that is not installed" in err
    assert "pip install 'mnist-lit[export]'" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.real_data
def test_the_tutorials_model_exports_checked_on_the_10000_test_images(
    real_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = [f"--data.data_dir={real_mnist_dir}", *FAST]
    main(["fit", "--config", TUTORIAL, "--trainer.max_epochs=1", *data])
    result = console(
        "export", "--ckpt_path", "last", "--experiment", "seed_cross_entropy",
        "--data.data_dir", str(real_mnist_dir), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "check on 10,000 test images (onnxruntime)" in result.stdout
    assert "same digit on 10,000 of 10,000: passed" in result.stdout
