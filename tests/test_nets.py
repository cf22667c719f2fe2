import pytest
import torch

from mnist_lit.models import CNN, MLP, SoftmaxRegression


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
    [({"activation": "swish"}, "activation"), ({"hidden_sizes": [0]}, "hidden_sizes")],
)
def test_mlp_rejects_bad_options(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MLP(**kwargs)
