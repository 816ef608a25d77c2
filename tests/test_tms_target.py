"""TMS target training (docs/method.md, "Toy models"): the tied W, and the reference implementation's way of tying."""

import torch
import torch.nn.functional as F

from spd.config import TMSTargetConfig
from spd.families.tms import model as tms

LR, WEIGHT_DECAY = 0.05, 0.1


def _config(tied_adam: str) -> TMSTargetConfig:
    return TMSTargetConfig(
        n_features=5,
        d_hidden=2,
        steps=1,
        batch_size=64,
        lr=LR,
        weight_decay=WEIGHT_DECAY,
        tied_adam=tied_adam,
    )


def _first_batch_gradients(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The initial W, and the gradients of the first batch's loss through linear1 and linear2."""
    torch.manual_seed(seed)
    model = tms.build_model(_config("joint"))
    W1 = model.linear1.weight.detach().clone().requires_grad_(True)
    W2 = model.linear1.weight.detach().T.clone().requires_grad_(True)
    x = tms.batch_sampler(_config("joint"))(64, torch.Generator().manual_seed(seed))
    F.mse_loss(F.relu(F.linear(F.linear(x, W1), W2, model.linear2.bias)), x).backward()
    return W1.detach(), W1.grad, W2.grad


def _first_adam_step(gradient: torch.Tensor) -> torch.Tensor:
    return LR * gradient / (gradient.abs() + 1e-8)  # Adam's first step: m / sqrt(v) = sign(g)


def test_joint_tying_takes_one_adam_step_on_the_summed_gradient():
    W0, g1, g2 = _first_batch_gradients(seed=0)
    model, _ = tms.train_once(_config("joint"), 0, "cpu", log=lambda line: None)
    expected = W0 * (1 - LR * WEIGHT_DECAY) - _first_adam_step(g1 + g2.T)
    torch.testing.assert_close(model.linear1.weight, expected)
    torch.testing.assert_close(model.linear2.weight, expected.T)


def test_per_layer_tying_takes_two_adam_steps_and_two_weight_decays():
    W0, g1, g2 = _first_batch_gradients(seed=0)
    model, _ = tms.train_once(_config("per_layer"), 0, "cpu", log=lambda line: None)
    decay = 1 - LR * WEIGHT_DECAY  # AdamW on CPU: decay then step, one parameter after the other
    expected = (W0 * decay - _first_adam_step(g1)) * decay - _first_adam_step(g2).T
    torch.testing.assert_close(model.linear1.weight, expected)
    torch.testing.assert_close(model.linear2.weight, expected.T)
    # the trained target no longer shares storage: it is frozen and saved like any other
    assert model.linear2.weight.data_ptr() != model.linear1.weight.data_ptr()
    assert not any(param.requires_grad for param in model.parameters())


def test_zero_bias_init_zeroes_linear2_bias_and_keeps_the_random_stream():
    torch.manual_seed(3)
    default = tms.build_model(TMSTargetConfig(n_features=5, d_hidden=2))
    after_default = torch.rand(1)
    torch.manual_seed(3)
    zeroed = tms.build_model(TMSTargetConfig(n_features=5, d_hidden=2, zero_bias_init=True))
    assert torch.equal(zeroed.linear2.bias, torch.zeros(5))
    assert default.linear2.bias.abs().sum() > 0
    assert torch.equal(zeroed.linear1.weight, default.linear1.weight)
    assert torch.equal(torch.rand(1), after_default)


def test_xavier_normal_init_draws_w_at_the_apd_codes_scale_after_the_default_init():
    config = TMSTargetConfig(n_features=400, d_hidden=50, weight_init="xavier_normal")
    torch.manual_seed(5)
    default = tms.build_model(TMSTargetConfig(n_features=400, d_hidden=50))
    expected = torch.empty(50, 400).normal_(0.0, (2 / (50 * (400 + 1))) ** 0.5)
    torch.manual_seed(5)
    xavier = tms.build_model(config)
    assert torch.equal(xavier.linear1.weight, expected)  # drawn after nn.Linear's init
    assert torch.equal(xavier.linear2.bias, default.linear2.bias)
    instances = tms.build_model(config.model_copy(update={"init_instances": 3}))
    std = instances.linear1.weight.std().item()
    assert abs(std - (2 / (50 * 403)) ** 0.5) < 0.02 * std


def test_target_training_follows_its_lr_schedule(monkeypatch):
    from spd.optim import schedules

    rates: list[float] = []
    real_step = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    config = _config("joint").model_copy(update={"steps": 4, "lr_schedule": "linear"})
    tms.train_once(config, 0, "cpu", log=lambda line: None)
    assert rates == [schedules.linear_decay(LR, 4)(t) for t in range(4)]
    assert rates == [LR, 0.75 * LR, 0.5 * LR, 0.25 * LR]
