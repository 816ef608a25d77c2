"""APD, the baseline SPD replaces (docs/method.md): C parameter components, each a rank-m matrix
P_{c,l} = A_{c,l} B_{c,l} in every decomposed layer, switched on or off together by batch top-k
over gradient attributions. It shares SPD's targets, data, loop and evaluation.

Shapes follow the x @ W convention of the spec: A: (C, d_in, m), B: (C, m, d_out); a layer's
weight-convention (nn.Linear, d_out x d_in) component is P_{c,l}^T. x is a batch of the target's
inputs, (batch, n_features) for the toy models, and its output (batch, n_outputs), n_outputs =
n_features for the toy models.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import einops
import pandas as pd
import torch
from torch import Tensor, nn

from spd.checkpointing import checkpointing_for, load_state
from spd.config import APDConfig
from spd.decomp.hooks import TargetHooks
from spd.decomp.losses import faithfulness_loss, reconstruction_mse
from spd.optim import schedules
from spd.optim.loop import Optimisation, optimise
from spd.targets.base import Target, dense

SCHATTEN_EPSILON = 1e-16


def _key(module_name: str) -> str:
    return module_name.replace(".", "-")


class APDLayerComponents(nn.Module):
    """A [C, d_in, m] and B [C, m, d_out] of one layer, initialised as the published code does:
    xavier-normal on the (init_instances, C, d_in, m) and (init_instances, C, m, d_out) tensors
    its runs train, std(A) = sqrt(2 / ((C + init_instances) d_in m)) and std(B) likewise with
    d_out; the components start near zero."""

    def __init__(
        self,
        d_in: int,
        d_out: int,
        C: int,
        m: int,
        generator: torch.Generator,
        device,
        init_instances: int = 1,
    ) -> None:
        super().__init__()
        std_A = math.sqrt(2 / ((C + init_instances) * d_in * m))
        std_B = math.sqrt(2 / ((C + init_instances) * m * d_out))
        self.A = nn.Parameter(torch.randn(C, d_in, m, generator=generator, device=device) * std_A)
        self.B = nn.Parameter(torch.randn(C, m, d_out, generator=generator, device=device) * std_B)


class APDModel(TargetHooks, nn.Module):
    """A frozen target whose decomposed layers can run as sum_c s_c (x A_c) B_c (+ the frozen bias)."""

    def __init__(
        self,
        target: Target,
        C: int,
        m: int | None,
        generator: torch.Generator,
        unit_norm_A: bool = False,
        init_instances: int = 1,
    ) -> None:
        super().__init__()
        self._target = target
        self.C = C
        self.unit_norm_A = unit_norm_A
        self.module_names = target.decomposed_modules
        # every decomposed module is an nn.Linear: Target checks it
        self._linears: dict[str, nn.Linear] = {
            name: cast(nn.Linear, target.model.get_submodule(name)) for name in self.module_names
        }
        components = {}
        for name in self.module_names:
            if name in target.tied_modules:
                continue
            weight = self._linears[name].weight
            d_out, d_in = weight.shape
            components[_key(name)] = APDLayerComponents(
                d_in, d_out, C, m or min(d_in, d_out), generator, weight.device, init_instances
            )
        self.components = nn.ModuleDict(components)
        self._mask: Tensor | None = None
        self._probes: dict[str, Tensor] | None = None
        self._inputs: dict[str, Tensor] = {}
        # (A, B) per own layer while `one_parametrisation` is open (None: computed on each call)
        self._factor_cache: dict[str, tuple[Tensor, Tensor]] | None = None
        # ReLU(output) of the target's relu_input_modules: clean (attribution pass) and top-k pass.
        self.clean_activations: dict[str, Tensor] = {}
        self.masked_activations: dict[str, Tensor] = {}
        self._hook_layers(
            ((name, self._linears[name]) for name in self.module_names), self._make_hook
        )

    @classmethod
    def from_config(cls, target: Target, config: APDConfig, generator: torch.Generator) -> APDModel:
        """The untrained decomposition `config` describes, on a target already restricted to its modules."""
        return cls(target, config.C, config.m, generator, config.unit_norm_A, config.init_instances)

    @property
    def target(self) -> Target:
        return self._target

    def _own_factors(self, name: str) -> tuple[Tensor, Tensor]:
        """(A, B) of an untied layer, (C, d_in, m) and (C, m, d_out). With unit_norm_A, every
        column A[c, :, k] is normalised: a parametrisation whose gradient is the projected one (the
        radial part removed), as APD's published resid runs."""
        if self._factor_cache is not None:
            return self._factor_cache[name]
        layer = cast(APDLayerComponents, self.components[_key(name)])
        return (
            layer.A / layer.A.norm(dim=1, keepdim=True) if self.unit_norm_A else layer.A
        ), layer.B

    @contextmanager
    def one_parametrisation(self) -> Iterator[None]:
        """Within it, each layer's (A, B) is computed once and shared by every pass and loss, so the
        normalisation of A (and its backward) runs once per step instead of once per use. They are
        computed on entry, with gradients on, because the attribution pass reads them under no_grad."""
        with torch.enable_grad():
            factors = {
                name: self._own_factors(name)
                for name in self.module_names
                if name not in self.target.tied_modules
            }
        self._factor_cache = factors
        try:
            yield
        finally:
            self._factor_cache = None

    def factors(self, name: str) -> tuple[Tensor, Tensor]:
        """(A, B) of a layer, (C, d_in, m) and (C, m, d_out); a tied layer uses its source's,
        transposed (A' = B^T, B' = A^T)."""
        source = self.target.tied_modules.get(name)
        if source is not None:
            A, B = self._own_factors(source)
            return B.transpose(1, 2), A.transpose(1, 2)
        return self._own_factors(name)

    def component_weights(self, name: str) -> Tensor:
        """Each component's matrix in the nn.Linear convention: (C, d_out, d_in)."""
        A, B = self.factors(name)
        return einops.einsum(A, B, "c i m, c m o -> c o i")

    def target_weight(self, name: str) -> Tensor:
        """The frozen target's weight of a decomposed layer, (d_out, d_in)."""
        return self._linears[name].weight

    def _make_hook(self, name: str):
        def hook(module: nn.Linear, args: tuple[Tensor, ...], output: Tensor) -> Tensor | None:
            """args[0]: the layer's input (batch, d_in), output: (batch, d_out), either possibly
            lazy (`dense` makes them (batch, d_in) and (batch, d_out) tensors). Attribution pass:
            the dense output plus a zero probe of its shape; top-k pass: the masked output
            (batch, d_out); otherwise None (the output unchanged)."""
            records_activation = name in self.target.relu_input_modules
            if self._probes is not None:  # attribution pass: record a_l, expose d f / d h_l
                self._inputs[name] = dense(args[0]).detach()
                output = dense(output)
                if records_activation:
                    self.clean_activations[name] = torch.relu(output.detach())
                probe = torch.zeros_like(output, requires_grad=True)
                self._probes[name] = probe
                return output + probe
            if self._mask is None:
                return None
            A, B = self.factors(name)
            inner = einops.einsum(dense(args[0]), A, "b i, c i m -> b c m") * self._mask[:, :, None]
            masked = einops.einsum(inner, B, "b c m, c m o -> b o")
            bias = self._linears[name].bias
            masked = masked if bias is None else masked + bias
            if records_activation:
                self.masked_activations[name] = torch.relu(masked)
            return masked

        return hook

    @contextmanager
    def _masked(self, mask: Tensor) -> Iterator[None]:
        """Within it, the decomposed layers run masked by `mask`, (batch, C)."""
        self._mask = mask
        try:
            yield
        finally:
            self._mask = None

    def forward_masked(self, x: Tensor, mask: Tensor) -> Tensor:
        """Every decomposed layer runs sum_c mask[:, c] P_c (one on/off bit per component).
        x: (batch, n_features), mask: (batch, C); returns the target's output (batch, n_outputs)."""
        with self._masked(mask):
            return self.target.model(x)

    def attributions(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Gradient attributions A_c(x) = sum_o (sum_l <d f_o / d h_l, a_l P_{c,l}>)^2 (batch, C),
        and the target's output (batch, n_outputs), of x: (batch, n_features). The per-output
        backward passes run as one batched (vmapped) pass."""
        self._probes = {}
        try:
            with torch.enable_grad():
                output = self.target.model(x)
                probes = [self._probes[name] for name in self.module_names]
                with torch.no_grad():
                    contributions = []
                    for name in self.module_names:
                        A, B = self.factors(name)
                        inner = einops.einsum(self._inputs[name], A, "b i, c i m -> b c m")
                        contributions.append(einops.einsum(inner, B, "b c m, c m o -> b c o"))
                # d f_o / d h_l for every output o at once: a backward pass batched over o;
                # grads: per layer (n_outputs, batch, d_out), as contributions (batch, C, d_out).
                n_outputs = output.shape[1]
                seeds = torch.eye(n_outputs, device=x.device)[:, None, :].expand(
                    n_outputs, *output.shape
                )
                grads = torch.autograd.grad(
                    output, probes, grad_outputs=seeds, is_grads_batched=True
                )
                # summed layer by layer into the first layer's (o, batch, C) tensor
                terms = (
                    einops.einsum(g, contribution, "o b k, b c k -> o b c")
                    for g, contribution in zip(grads, contributions, strict=True)
                )
                per_output = next(terms)
                for term in terms:
                    per_output += term
                scores = per_output.pow(2).sum(dim=0)
        finally:
            self._probes = None
            self._inputs = {}
        return scores, output.detach()


def batch_topk_mask(attributions: Tensor, topk: float) -> Tensor:
    """1 at the int(topk * batch) largest entries of the (batch, C) attributions over the whole
    batch, 0 elsewhere: (batch, C)."""
    k = int(topk * attributions.shape[0])
    mask = torch.zeros_like(attributions)
    mask.view(-1)[attributions.flatten().topk(k).indices] = 1.0
    return mask


def schatten_terms(A: Tensor, B: Tensor, p: float) -> Tensor:
    """Per component: sum_k (||A[:, k]||^2 ||B[k, :]||^2 + eps)^(p/2) -> (C,).
    A: (C, d_in, m), B: (C, m, d_out)."""
    column_norms = A.pow(2).sum(dim=1)  # (C, m)
    row_norms = B.pow(2).sum(dim=2)  # (C, m)
    return (column_norms * row_norms + SCHATTEN_EPSILON).pow(p / 2).sum(dim=1)


def simplicity_loss(model: APDModel, mask: Tensor, p: float, n_entries: int) -> Tensor:
    """(1 / (N B)) sum_b sum_c s_{b,c} sum_l sum_k (||A_{c,l}[:, k]||^2 ||B_{c,l}[k, :]||^2 + eps)^(p/2).

    mask: the top-k mask s, (batch, C); N = `n_entries`, B = batch. Returns a scalar.
    """
    per_component = sum(schatten_terms(*model.factors(name), p) for name in model.module_names)
    return (mask.sum(dim=0) @ per_component) / (n_entries * mask.shape[0])


def apd_losses(model: APDModel, x: Tensor, config: APDConfig) -> dict[str, Tensor]:
    """Faithfulness, top-k minimality (reconstruction) and simplicity, and their weighted total,
    each a scalar, on x: (batch, n_features)."""
    with model.one_parametrisation():
        return _apd_losses(model, x, config)


def _apd_losses(model: APDModel, x: Tensor, config: APDConfig) -> dict[str, Tensor]:
    """`apd_losses` within one parametrisation: x (batch, n_features) -> scalars by name."""
    attributions, target_output = model.attributions(x)
    mask = batch_topk_mask(attributions, config.topk)
    names = model.module_names
    target_weights = [model.target_weight(name) for name in names]
    faithfulness = faithfulness_loss(
        target_weights, [model.component_weights(n).sum(0) for n in names]
    )
    minimality = reconstruction_mse(model.forward_masked(x, mask), target_output)
    n_entries = sum(w.numel() for w in target_weights)
    simplicity = simplicity_loss(model, mask, config.schatten_p, n_entries)
    losses = {"faithfulness": faithfulness, "minimality": minimality, "simplicity": simplicity}
    total = (
        config.faithfulness_coeff * faithfulness
        + config.minimality_coeff * minimality
        + config.simplicity_coeff * simplicity
    )
    if model.target.relu_input_modules:
        losses["activation_recon"] = activation_reconstruction_loss(model)
        total = total + config.activation_recon_coeff * losses["activation_recon"]
    return losses | {"total": total}


def activation_reconstruction_loss(model: APDModel) -> Tensor:
    """Mean over the relu_input_modules of the MSE (over batch x neurons) between the target's
    ReLU activations and the top-k pass's, each (batch, d_out) per module (d_mlp in the residual
    MLP); a scalar."""
    names = model.target.relu_input_modules
    return torch.stack(
        [reconstruction_mse(model.masked_activations[n], model.clean_activations[n]) for n in names]
    ).mean()


def apd_learning_rate(config: APDConfig) -> schedules.Schedule:
    """Linear warm-up over the first warmup_pct of steps, then constant or quarter-cosine."""
    warmup = int(config.warmup_pct * config.steps)
    after = schedules.named(config.lr_schedule, config.lr, config.steps - warmup)
    return schedules.linear_warmup(config.lr, warmup, after)


def decompose_apd(
    target: Target,
    config: APDConfig,
    log: Callable[[str], None] = print,
    state_file: Path | None = None,
    checkpoint_every: int = 1000,
) -> tuple[APDModel, pd.DataFrame, float]:
    """Run APD on `target`; returns the trained components, the loss history and the steps' wall
    time in seconds (over every process that ran part of them)."""
    target = target.restricted_to(config.modules)
    device = next(target.model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    model = APDModel.from_config(target, config, generator)
    checkpointing = checkpointing_for("apd", config, state_file, checkpoint_every, of_target=target)
    run = Optimisation(
        model=model,
        optimizer=torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0),
        generator=generator,
        steps=config.steps,
        log_every=config.log_every,
        learning_rate=apd_learning_rate(config),
        losses=lambda g: apd_losses(model, target.sample_batch(config.batch_size, g), config),
    )
    trained = optimise(run, log, checkpointing, load_state(checkpointing, log))
    return model, pd.DataFrame(trained.history), trained.seconds
