import pytest
import torch

from spd.decomp.losses import (
    faithfulness_loss,
    importance_minimality_loss,
    layerwise_reconstruction_loss,
    reconstruction_mse,
)


def test_faithfulness_sums_squared_errors_over_all_entries_of_all_matrices():
    w1, uv1 = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 2.0]])  # error 1
    w2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    uv2 = torch.tensor([[1.0, 2.0], [0.0, -1.0]])  # errors 4 + 4
    # (1 + 8) / (2 + 4) entries
    assert faithfulness_loss([w1, w2], [uv1, uv2]).item() == pytest.approx(9 / 6)


def test_reconstruction_mse_is_mean_over_batch_and_outputs():
    out = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    assert reconstruction_mse(out, target).item() == pytest.approx((4 + 9) / 4)


def test_importance_minimality_sums_layers_and_subcomponents_and_averages_batch():
    layer_a = torch.tensor([[0.5, 1.0], [0.0, 0.2]])
    layer_b = torch.tensor([[1.0], [0.4]])
    # p = 2: example 0: 0.25 + 1 + 1 = 2.25; example 1: 0 + 0.04 + 0.16 = 0.2
    value = importance_minimality_loss([layer_a, layer_b], pnorm=2.0)
    assert value.item() == pytest.approx((2.25 + 0.2) / 2)
    # p = 1: example 0: 2.5, example 1: 0.6
    assert importance_minimality_loss([layer_a, layer_b], pnorm=1.0).item() == pytest.approx(1.55)


def test_layerwise_loss_is_the_mean_over_layers():
    losses = [torch.tensor(1.0), torch.tensor(2.0), torch.tensor(6.0)]
    assert layerwise_reconstruction_loss(losses).item() == pytest.approx(3.0)
