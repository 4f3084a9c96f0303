"""End to end against PyTorch: same initial weights, same full batches, same optimizer."""

from __future__ import annotations

import numpy as np
import pytest

from app.nn.training import Trainer
from tests.nn.helpers import tiny_dataset


@pytest.mark.parametrize(
    ("task", "n_out", "output_activation", "loss"),
    [
        ("classification", 1, "sigmoid", "cross_entropy"),
        ("classification", 3, "softmax", "cross_entropy"),
        ("regression", 2, "linear", "mse"),
        ("classification", 1, "sigmoid", "mse"),
    ],
)
@pytest.mark.parametrize(
    ("optimizer", "activation"), [("sgd", "tanh"), ("momentum", "relu"), ("adam", "sigmoid")]
)
def test_training_matches_torch(
    task: str, n_out: int, output_activation: str, loss: str, optimizer: str, activation: str
) -> None:
    torch = pytest.importorskip("torch")
    data = tiny_dataset(task, 3, n_out, n=40, n_test=0)
    lr = 0.05
    trainer = Trainer(
        data,
        hidden_layers=[6, 5],
        activation=activation,
        output_activation=output_activation,
        loss=loss,
        learning_rate=lr,
        optimizer=optimizer,
        momentum=0.8,
        batch_size=None,
        l2=0.01,
        dtype="float64",
        seed=2,
    )
    net = trainer.network
    assert net.biases is not None
    acts = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid}
    layers: list[torch.nn.Module] = []
    for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        lin = torch.nn.Linear(w.shape[1], w.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(w))
            lin.bias.copy_(torch.tensor(b))
        layers.append(lin)
        if i < net.n_layers - 1:
            layers.append(acts[activation]())
    if output_activation == "sigmoid":
        layers.append(torch.nn.Sigmoid())
    model = torch.nn.Sequential(*layers)
    x = torch.tensor(data.x_train)
    if loss == "cross_entropy" and output_activation == "softmax":
        y = torch.tensor(data.y_train)
        loss_fn: torch.nn.Module = torch.nn.CrossEntropyLoss()
    elif task == "classification":
        y = torch.tensor(data.y_train, dtype=torch.float64)[:, None]
        loss_fn = torch.nn.BCELoss() if loss == "cross_entropy" else torch.nn.MSELoss()
    else:
        y = torch.tensor(data.y_train)
        loss_fn = torch.nn.MSELoss()
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    groups = [{"params": weights, "weight_decay": 0.01}, {"params": biases, "weight_decay": 0.0}]
    if optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=lr)
    elif optimizer == "momentum":
        opt = torch.optim.SGD(groups, lr=lr, momentum=0.8)
    else:  # Adam's weight_decay adds wd·W to the gradient: our l2
        opt = torch.optim.Adam(groups, lr=lr)
    for _ in range(8):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        ours = trainer.train_epoch()
        with torch.no_grad():  # softmax: the model's outputs are logits, as CE wants
            expected = float(loss_fn(model(x), y))
        assert ours.train_loss == pytest.approx(expected, rel=1e-9, abs=1e-12)
    for ours_w, theirs in zip(net.weights, weights, strict=True):
        np.testing.assert_allclose(ours_w, theirs.detach().numpy(), rtol=1e-9, atol=1e-12)
