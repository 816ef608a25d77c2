import copy

import pandas as pd
import pytest
import torch
import yaml
from conftest import TINY_TMS

from spd.cli import main
from spd.config import TMSTargetConfig
from spd.decomp.apd import APDModel, batch_topk_mask, schatten_terms, simplicity_loss
from spd.targets import tms


def _apd_on_tms(identity: bool = False) -> APDModel:
    config = TMSTargetConfig(n_features=5, d_hidden=2, identity_layer=identity)
    torch.manual_seed(0)
    model = tms.build_model(config)
    model.tie_weights()
    with torch.no_grad():
        model.linear2.bias.fill_(0.3)  # keep ReLU inputs away from its kink
    for param in model.parameters():
        param.requires_grad_(False)
    return APDModel(tms.as_target(model, config), C=4, m=2, generator=torch.Generator().manual_seed(1))


def _finite_difference_attributions(model: APDModel, x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """A_c = sum_o (d/dt f_o with every layer's output moved by t * (its input) P_{c,l})^2, by
    central differences, one component at a time."""
    inputs = {}
    handles = [
        model.target.model.get_submodule(name).register_forward_hook(
            lambda _m, args, _out, name=name: inputs.__setitem__(name, args[0].detach())
        )
        for name in model.module_names
    ]
    model.target.model(x)
    for handle in handles:
        handle.remove()
    scores = torch.zeros(x.shape[0], model.C)
    for c in range(model.C):
        shifts = {name: inputs[name] @ model.component_weights(name)[c].T for name in model.module_names}

        def shifted(t: float, shifts: dict[str, torch.Tensor] = shifts) -> torch.Tensor:
            hooks = [
                model.target.model.get_submodule(name).register_forward_hook(
                    lambda _m, _args, out, name=name: out + t * shifts[name]
                )
                for name in model.module_names
            ]
            try:
                return model.target.model(x)
            finally:
                for hook in hooks:
                    hook.remove()

        derivative = (shifted(eps) - shifted(-eps)) / (2 * eps)  # (B, outputs)
        scores[:, c] = derivative.pow(2).sum(dim=1)
    return scores


@pytest.mark.parametrize("identity", [False, True])
def test_attributions_match_finite_differences(identity):
    model = _apd_on_tms(identity)
    x = torch.rand(6, 5)
    with torch.no_grad():
        expected = _finite_difference_attributions(model, x)
    attributions, output = model.attributions(x)
    torch.testing.assert_close(attributions, expected, rtol=2e-2, atol=1e-4)
    torch.testing.assert_close(output, model.target.model(x))


def test_batch_topk_keeps_the_largest_entries_over_the_whole_batch():
    attributions = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.0], [0.3, 0.4, 0.7], [0.6, 0.0, 0.05]])
    mask = batch_topk_mask(attributions, topk=1.25)  # int(1.25 * 4) = 5 entries of 12
    assert mask.sum() == 5
    expected = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
    expected[0, 2] = 1.0  # 0.9, 0.8, 0.7, 0.6, 0.5
    assert torch.equal(mask, expected)
    assert batch_topk_mask(attributions, topk=0.2).sum() == 0  # int(0.8) = 0


def test_schatten_surrogate_by_hand():
    A = torch.tensor([[[3.0, 0.0], [4.0, 1.0]]])  # C=1, d_in=2, m=2: column norms^2 25, 1
    B = torch.tensor([[[1.0, 0.0, 0.0], [2.0, 2.0, 1.0]]])  # m=2, d_out=3: row norms^2 1, 9
    # p = 1: sqrt(25 * 1) + sqrt(1 * 9) = 8; p = 2: 25 + 9 = 34
    assert schatten_terms(A, B, 1.0).item() == pytest.approx(8.0)
    assert schatten_terms(A, B, 2.0).item() == pytest.approx(34.0)


def test_simplicity_loss_counts_only_active_components():
    model = _apd_on_tms()
    per_component = sum(schatten_terms(*model.factors(n), 1.0) for n in model.module_names)
    mask = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 1.0, 0]])
    expected = (2 * per_component[0] + per_component[2]) / (20 * 2)  # N = 10 + 10 (tied, twice)
    assert simplicity_loss(model, mask, 1.0, 20).item() == pytest.approx(expected.item())


def test_tiny_apd_decomposition_end_to_end(tmp_path):
    config = copy.deepcopy(TINY_TMS)
    config["decomposition"] = {
        "method": "apd", "C": 5, "m": 3, "topk": 0.211, "simplicity_coeff": 0.7, "schatten_p": 1.0,
        "lr": 3e-2, "steps": 40, "batch_size": 64, "log_every": 10,
    }
    path = tmp_path / "apd.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    assert main(["run", "--config", str(path), "--out", str(out)]) == 0
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert set(metrics["metric"]) == {"mmcs", "ml2r"} and set(metrics["method"]) == {"apd"}
    losses = pd.read_parquet(out / "losses.parquet")
    assert {"faithfulness", "minimality", "simplicity", "total"} <= set(losses.columns)
    assert list(losses["step"]) == [0, 10, 20, 30, 39]
