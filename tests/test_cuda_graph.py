"""SPD steps replayed from a recorded CUDA graph equal eager steps up to float rounding, and a
graph run resumes from its saved state. CUDA only: skipped, with its reason, elsewhere."""

import pytest
import torch
from conftest import tiny_tms_target

from spd.config import SPDConfig
from spd.decomp.train import _train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


SPD = SPDConfig(
    C=8, d_gate=4, importance_minimality_coeff=3e-3, pnorm=1, steps=60, batch_size=64, log_every=1
)


def test_graph_steps_follow_eager_steps():
    target = tiny_tms_target("cuda")
    eager = _train(target, SPD, lambda _: None, None, 1000)
    graphed = _train(target, SPD, lambda _: None, None, 1000, cuda_graph=True)
    # same data and masks (one generator, registered with the graph); Adam's capturable arithmetic
    # differs in rounding only
    assert torch.allclose(
        torch.tensor(graphed.loss_history["total"].to_numpy()),
        torch.tensor(eager.loss_history["total"].to_numpy()),
        rtol=1e-3,
    )


def test_graph_run_resumes_from_its_saved_state(tmp_path):
    target = tiny_tms_target("cuda")
    whole = _train(target, SPD, lambda _: None, None, 1000, cuda_graph=True)
    state = tmp_path / "state.pt"
    _train(target, SPD, lambda _: None, state, 1000, stop_at=25, cuda_graph=True)
    resumed = _train(target, SPD, lambda _: None, state, 1000, cuda_graph=True)
    for name, value in whole.model.state_dict().items():
        assert torch.allclose(resumed.model.state_dict()[name], value, rtol=1e-4, atol=1e-5), name
