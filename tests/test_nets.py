from pathlib import Path

import pytest
import torch
import yaml

from mnist_lit.cli import main
from mnist_lit.models import CNN, MLP, SoftmaxRegression
from tests.cli_helpers import fake_data


@pytest.mark.parametrize(
    "net",
    [
        pytest.param(SoftmaxRegression(), id="softmax-regression"),
        pytest.param(MLP([30], activation="sigmoid"), id="mlp-784-30-10"),
        pytest.param(MLP([100, 50]), id="mlp-two-hidden"),
        pytest.param(CNN(), id="cnn"),
    ],
)
def test_images_to_ten_logits(net: torch.nn.Module) -> None:
    out = net(torch.rand(5, 1, 28, 28))
    assert out.shape == (5, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_softmax_regression_is_the_tutorials_linear_layer() -> None:
    assert sum(p.numel() for p in SoftmaxRegression().parameters()) == 784 * 10 + 10


def test_mlp_sizes() -> None:
    assert sum(p.numel() for p in MLP([30]).parameters()) == 784 * 30 + 30 + 30 * 10 + 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"activation": "swish"}, "activation"), ({"hidden_sizes": [0]}, "hidden_sizes"),
     ({"init": "xavier"}, "init must be one of")],
)  # fmt: skip
def test_mlp_rejects_bad_options(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MLP(**kwargs)


def test_nielsens_initialisation_draws_every_weight_and_bias_from_a_standard_normal() -> None:
    torch.manual_seed(0)
    nielsen, default = MLP([30], "sigmoid", init="normal"), MLP([30], "sigmoid")
    for name, parameter in nielsen.named_parameters():
        assert abs(float(parameter.mean())) < 0.5 and 0.7 < float(parameter.std()) < 1.3, name
    # PyTorch's default scales each layer by its inputs: a first layer's weights are tiny.
    assert float(default.layers[1].weight.abs().max()) <= 1 / 784**0.5


def test_the_nielsen_config_trains_his_network(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", "configs/nielsen.yaml", "--trainer.max_epochs=1",
          *fake_data(fake_mnist_dir)])  # fmt: skip
    config = yaml.safe_load((tmp_path / "logs/nielsen/version_0/config.yaml").read_text())
    assert config["model"]["net"]["init_args"] == {
        "hidden_sizes": [30], "activation": "sigmoid", "init": "normal"
    }  # fmt: skip
    assert config["model"]["loss"]["class_path"] == "mnist_lit.losses.SigmoidQuadratic"
    assert config["data"]["batch_size"] == 10 and config["trainer"]["max_epochs"] == 1
