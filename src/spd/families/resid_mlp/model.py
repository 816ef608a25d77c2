"""Residual MLP toy models (docs/method.md, "Toy models"): model, data, labels, training, and ground truth.

r_0 = W_E x;  r_{k+1} = r_k + W_out^k ReLU(W_in^k r_k);  output = W_E^T r_L.
W_E (d_embed x n_features; d_embed is the paper's d_resid) is random with unit-norm columns and
frozen; there are no biases. As nn.Linear weights, W_in^k: (d_mlp, d_embed) and W_out^k:
(d_embed, d_mlp).
Each feature's ground-truth mechanism is its own direction through W_in; W_out acts as one
dense mechanism spanning all layers.

The residual stream is never formed densely: it is kept as the sum of its low-rank writes
(`FactoredResidual`), which spares the batch x d_embed products that dominate a dense forward.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from pathlib import Path
from typing import cast

import einops
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spd.checkpointing import checkpointing_for, load_state
from spd.config import ResidMLPTargetConfig
from spd.optim import schedules
from spd.optim.loop import Optimisation, optimise
from spd.targets.base import LinearWithOwnProduct, Target, sparse_feature_batch


class FactoredResidual:
    """A (batch, d_embed) residual stream kept as the sum of its writes, each a (batch, k)
    coefficient matrix times a (k, d_embed) basis: W_E x and every W_out h are of low rank
    (k = n_features, d_mlp or C, all << d_embed), so reading the stream through a matrix M costs
    sum_j coefficients_j (basis_j M), and no batch x d_embed product is ever formed. A dense
    write (basis None, e.g. a hook's dense output) is kept as it is."""

    def __init__(self, writes: tuple[tuple[Tensor, Tensor | None], ...]) -> None:
        """writes: (coefficients, basis) pairs, (batch, k) and (k, d_embed), or a dense write
        (batch, d_embed) and None."""
        self.writes = writes

    def __add__(self, other: FactoredResidual | Tensor) -> FactoredResidual:
        """The stream plus another stream or a dense (batch, d_embed) write."""
        if isinstance(other, FactoredResidual):
            return FactoredResidual(self.writes + other.writes)
        return FactoredResidual((*self.writes, (other, None)))

    def __matmul__(self, matrix: Tensor) -> Tensor:
        """The stream times a (d_embed, n) matrix: (batch, n)."""
        reads = [c @ matrix if basis is None else c @ (basis @ matrix) for c, basis in self.writes]
        return functools.reduce(operator.add, reads)

    def dense(self) -> Tensor:
        """The stream as a (batch, d_embed) tensor."""
        terms = [c if basis is None else c @ basis for c, basis in self.writes]
        return functools.reduce(operator.add, terms)


class ResidualRead(LinearWithOwnProduct):
    """A linear layer reading the residual stream (dense or factored)."""

    def product(self, x: Tensor | FactoredResidual, weight: Tensor) -> Tensor:
        """x (batch, k), dense or factored, and weight (d_out, k) -> (batch, d_out); k = d_embed
        reading the stream, C in the masked component forward."""
        return x @ weight.T


class ResidualWrite(LinearWithOwnProduct):
    """A linear layer writing to the residual stream: its output stays factored, (x, W^T)."""

    def product(self, x: Tensor, weight: Tensor) -> FactoredResidual:
        """x (batch, k) and weight (d_embed, k) -> the write, a (batch, d_embed) stream; k = d_mlp,
        C in the masked component forward."""
        return FactoredResidual(((x, weight.T),))


class ResidMLPBlock(nn.Module):
    def __init__(self, d_embed: int, d_mlp: int) -> None:
        super().__init__()
        self.mlp_in = ResidualRead(d_embed, d_mlp)
        self.mlp_out = ResidualWrite(d_mlp, d_embed)

    def forward(self, residual: FactoredResidual) -> FactoredResidual:
        """r + W_out ReLU(W_in r), of a (batch, d_embed) stream r."""
        return residual + self.mlp_out(F.relu(self.mlp_in(residual)))


class ResidMLPModel(nn.Module):
    W_E: Tensor  # a buffer: (d_embed, n_features)

    def __init__(self, n_features: int, d_embed: int, d_mlp: int, n_layers: int) -> None:
        super().__init__()
        embedding = torch.randn(d_embed, n_features)
        self.register_buffer("W_E", embedding / embedding.norm(dim=0, keepdim=True))
        self.layers = nn.ModuleList(ResidMLPBlock(d_embed, d_mlp) for _ in range(n_layers))

    def forward(self, x: Tensor) -> Tensor:
        """x: (batch, n_features) -> W_E^T r_L: (batch, n_features)."""
        residual = FactoredResidual(((x, self.W_E.T),))
        for layer in self.layers:
            residual = layer(residual)
        return residual @ self.W_E


def build_model(config: ResidMLPTargetConfig) -> ResidMLPModel:
    return ResidMLPModel(config.n_features, config.d_embed, config.d_mlp, config.n_layers)


def labels(x: Tensor) -> Tensor:
    """The function the target learns: y_i = x_i + ReLU(x_i). x and y: (batch, n_features)."""
    return x + F.relu(x)


def batch_sampler(config: ResidMLPTargetConfig) -> Callable[[int, torch.Generator], Tensor]:
    """(batch_size, generator) -> a (batch_size, n_features) batch, active values in [-1, 1)."""

    def sample(batch_size: int, generator: torch.Generator) -> Tensor:
        return sparse_feature_batch(
            batch_size, config.n_features, config.feature_probability, generator, low=-1.0
        )

    return sample


def decomposed_modules(n_layers: int) -> tuple[str, ...]:
    return tuple(f"layers.{k}.{part}" for k in range(n_layers) for part in ("mlp_in", "mlp_out"))


def train(
    config: ResidMLPTargetConfig,
    device: str,
    log: Callable[[str], None],
    state_file: Path | None = None,
    checkpoint_every: int = 1000,
) -> tuple[ResidMLPModel, dict[str, object]]:
    """AdamW with the learning rate cosine-decayed to 0 (a half cosine); resumable like every
    training run."""
    checkpointing = checkpointing_for("target", config, state_file, checkpoint_every)
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    sample = batch_sampler(config)

    def losses(generator: torch.Generator) -> dict[str, Tensor]:
        x = sample(config.batch_size, generator)
        return {"total": F.mse_loss(model(x), labels(x))}

    run = Optimisation(
        model=model,
        optimizer=torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        ),
        generator=torch.Generator(device=device).manual_seed(config.seed),
        steps=config.steps,
        log_every=max(config.steps // 5, 1),
        learning_rate=schedules.half_cosine(config.lr, config.steps),
        losses=losses,
    )
    trained = optimise(
        run, lambda line: log(f"  target {line}"), checkpointing, load_state(checkpointing, log)
    )
    final_loss = trained.history[-1]["total"]
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model, {"seed_used": config.seed, "final_loss": final_loss}


def missing_features(model: ResidMLPModel, config: ResidMLPTargetConfig) -> list[int]:
    """None: each feature's mechanism is its own embedding direction read by the MLPs."""
    return []


def as_target(model: ResidMLPModel, config: ResidMLPTargetConfig) -> Target:
    return Target(
        model=model,
        decomposed_modules=decomposed_modules(len(model.layers)),
        sample_batch=batch_sampler(config),
        relu_input_modules=tuple(f"layers.{k}.mlp_in" for k in range(len(model.layers))),
    )


@torch.no_grad()
def neuron_contributions(model: ResidMLPModel, layer: int, W_in: Tensor | None = None) -> Tensor:
    """(n_features, d_mlp): feature i's contribution through neuron n of one layer,
    (W_in W_E[:, i])_n * (W_E[:, i]^T W_out)_n (docs/method.md); W_in defaults to the target's, or give
    one (n_features, d_mlp, d_embed) matrix per feature (e.g. its best-matching subcomponent)."""
    block = cast(ResidMLPBlock, model.layers[layer])
    write = einops.einsum(
        model.W_E, block.mlp_out.weight, "embed feature, embed mlp -> feature mlp"
    )
    if W_in is None:
        read = einops.einsum(
            block.mlp_in.weight, model.W_E, "mlp embed, embed feature -> feature mlp"
        )
    else:
        read = einops.einsum(W_in, model.W_E, "feature mlp embed, embed feature -> feature mlp")
    return read * write
