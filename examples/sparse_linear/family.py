"""y = W x on sparse features, W of shape (d_out, n_features) with n_features > d_out: more
features than dimensions, so the columns of W lie in superposition. Each feature's mechanism is
its column, W[:, j] e_j^T: one rank-one subcomponent per feature, n_features alive in all.

W is not trained: its columns are random unit vectors drawn from the config's seed."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from spd.evaluate.causal_importance_metrics import ci_pattern_rows
from spd.families.base import Family
from spd.families.tms.metrics import feature_match
from spd.targets.base import Target, sparse_feature_batch

NAME = "sparse_linear.family:SparseLinear"
LAYER = "linear"
MMCS_MIN = 0.999
ML2R_RANGE = (0.98, 1.04)


class SparseLinearConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    family: Literal["sparse_linear.family:SparseLinear"]
    n_features: Annotated[int, Field(gt=0)] = 5
    d_out: Annotated[int, Field(gt=0)] = 3
    feature_probability: Annotated[float, Field(gt=0, le=1)] = 0.05
    seed: Annotated[int, Field(ge=0)] = 0


class SparseLinearModel(nn.Module):
    def __init__(self, n_features: int, d_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, d_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class SparseLinear(Family):
    name = NAME
    config_model = SparseLinearConfig

    def build_model(self, config: SparseLinearConfig) -> SparseLinearModel:
        model = SparseLinearModel(config.n_features, config.d_out)
        generator = torch.Generator().manual_seed(config.seed)
        columns = torch.randn(config.d_out, config.n_features, generator=generator)
        with torch.no_grad():
            model.linear.weight.copy_(columns / columns.norm(dim=0, keepdim=True))
        return model

    def batch_sampler(self, config: SparseLinearConfig):
        def sample(batch_size: int, generator: torch.Generator) -> torch.Tensor:
            return sparse_feature_batch(
                batch_size, config.n_features, config.feature_probability, generator, low=0.0
            )

        return sample

    def train(self, config, device, log, state_file, checkpoint_every):
        log(
            f"  W: {config.d_out} x {config.n_features}, unit columns from seed {config.seed} (not trained)"
        )
        return self.build_model(config).to(device), {"seed_used": config.seed}

    def as_target(self, model: SparseLinearModel, config: SparseLinearConfig) -> Target:
        return Target(
            model=model, decomposed_modules=(LAYER,), sample_batch=self.batch_sampler(config)
        )

    def metric_rows(self, model, ci, eval_config):
        rows = list(ci_pattern_rows(LAYER, ci.probes[LAYER], eval_config))
        with torch.no_grad():
            U, V = model.factors(LAYER)
            cosines, ratios = feature_match(U, V, model.target.model.linear.weight)
            mmcs, ml2r = cosines.mean().item(), ratios.mean().item()
        return rows + [(LAYER, "mmcs", mmcs, "cosine"), (LAYER, "ml2r", ml2r, "ratio")]

    def expected_alive(self, config: SparseLinearConfig) -> dict[str, int]:
        return {LAYER: config.n_features}

    def recovery_failures(self, rows, config: SparseLinearConfig) -> list[str]:
        value = {(str(r["layer"]), str(r["metric"])): float(r["value"]) for r in rows}
        failures = []
        if value[(LAYER, "mmcs")] < MMCS_MIN:
            failures.append(f"MMCS {value[(LAYER, 'mmcs')]:.4f} < {MMCS_MIN}")
        low, high = ML2R_RANGE
        if not low <= value[(LAYER, "ml2r")] <= high:
            failures.append(f"ML2R {value[(LAYER, 'ml2r')]:.4f} outside [{low}, {high}]")
        alive = int(value[(LAYER, "alive_subcomponents")])
        if alive != config.n_features:
            failures.append(f"{LAYER}: {alive} alive subcomponents, expected {config.n_features}")
        if errors := int(value.get((LAYER, "ci_pattern_errors"), 0)):
            failures.append(f"{LAYER}: {errors} CI-pattern errors")
        return failures
