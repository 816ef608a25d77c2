"""A frozen target network plus, for each decomposed `nn.Linear`, its subcomponents and CI gates.

Forward hooks on the target's decomposed layers either record the layer's input (clean pass) or
replace the layer's output by the masked component forward y = U (m * (V x)) + b.

Shapes: x is a batch of the target's inputs, (batch, n_features) for the toy models, and its
output (batch, n_outputs), n_outputs = n_features for the toy models; a decomposed layer reads
(batch, d_in) and writes (batch, d_out).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import cast

import torch
from torch import Tensor, nn

from spd.config import SPDConfig
from spd.decomp.causal_importance import CausalImportanceGates
from spd.decomp.components import LinearComponents
from spd.decomp.hooks import TargetHooks
from spd.decomp.masks import StochasticMask, apply_mask
from spd.targets.base import LazyActivation, Target, linear_product


def _key(module_name: str) -> str:
    """nn.ModuleDict keys may not contain dots."""
    return module_name.replace(".", "-")


class ComponentModel(TargetHooks, nn.Module):
    """The frozen target with, per decomposed module, its subcomponents U: (d_out, C) and
    V: (C, d_in) and its C causal-importance gates."""

    def __init__(
        self,
        target: Target,
        C: int,
        d_gate: int,
        fused_gates: bool,
        generator: torch.Generator,
        tied_adam: str = "joint",
    ) -> None:
        super().__init__()
        self._target = target  # plain attribute: the frozen target is not part of our state
        self.C = C
        self.module_names = target.decomposed_modules
        # every decomposed module is an nn.Linear: Target checks it
        self._linears: dict[str, nn.Linear] = {
            name: cast(nn.Linear, target.model.get_submodule(name)) for name in self.module_names
        }
        self.components = nn.ModuleDict(
            {
                _key(name): LinearComponents.initialised_from(
                    self._linears[name].weight, C, generator
                )
                for name in self.module_names
                if name not in target.tied_modules
            }
        )
        # "per_layer": a tied module gets parameters of its own that share its source's storage
        self._shared_storage_ties = tied_adam == "per_layer"
        if self._shared_storage_ties:
            for name, source in target.tied_modules.items():
                self.components[_key(name)] = LinearComponents.tied_to(self._components(source))
        self.gates = nn.ModuleDict(
            {
                _key(name): CausalImportanceGates(C, d_gate, fused_gates)
                for name in self.module_names
            }
        )
        device = next(iter(self._linears.values())).weight.device
        self.gates.to(device)
        self._masks: Mapping[str, Tensor | StochasticMask] = {}
        self._recorded_inputs: dict[str, Tensor] | None = None
        # The last clean pass: its input, each layer's input, and V x computed on those (with the
        # version of V it used), so that every pass on the same data reuses one V x per layer.
        self._clean_x: Tensor | None = None
        self._clean_inputs: dict[str, Tensor] = {}
        self._clean_inner: dict[str, tuple[int, Tensor]] = {}
        self._masked_x: Tensor | None = None
        self._hook_layers(
            ((name, self._linears[name]) for name in self.module_names), self._make_hook
        )

    @classmethod
    def from_config(
        cls, target: Target, config: SPDConfig, generator: torch.Generator
    ) -> ComponentModel:
        """The untrained decomposition `config` describes, on a target already restricted to its modules."""
        return cls(target, config.C, config.d_gate, config.fused_gates, generator, config.tied_adam)

    @property
    def target(self) -> Target:
        return self._target

    def _make_hook(self, name: str):  # returns a torch forward hook
        def hook(
            module: nn.Linear, args: tuple[Tensor, ...], output: Tensor
        ) -> Tensor | LazyActivation | None:
            """args[0]: the layer's input (batch, d_in), output: (batch, d_out), either possibly
            lazy (e.g. a residual stream kept factored). Returns the masked output (batch, d_out)
            where `self._masks` has a mask for the layer, else None (the output unchanged)."""
            if self._recorded_inputs is not None:
                self._recorded_inputs[name] = args[0]
            mask = self._masks.get(name)
            if mask is None:
                return None
            layer_input = args[0]
            if len(self._masks) == 1 and self._masked_x is self._clean_x:
                # every other layer runs the target's weights: the input is the clean pass's
                layer_input = self._clean_inputs.get(name, layer_input)
            return self.masked_linear(name, layer_input, mask)

        return hook

    def factors(self, name: str) -> tuple[Tensor, Tensor]:
        """(U, V) of a decomposed module, (d_out, C) and (C, d_in); a tied module reuses its
        source's, transposed."""
        source = self.target.tied_modules.get(name)
        if source is not None and not self._shared_storage_ties:
            components = self._components(source)
            return components.V.T, components.U.T
        components = self._components(name)
        return components.U, components.V

    def _components(self, name: str) -> LinearComponents:
        return cast(LinearComponents, self.components[_key(name)])

    def target_weight(self, name: str) -> Tensor:
        """The frozen target's weight of a decomposed module, (d_out, d_in)."""
        return self._linears[name].weight

    def inner_acts(self, name: str, layer_input: Tensor) -> Tensor:
        """h = V x for every subcomponent: (..., C) of a layer input (..., d_in), a tensor or a
        residual stream kept factored; computed once per clean-pass input."""
        _, V = self.factors(name)
        if layer_input is not self._clean_inputs.get(name):
            return layer_input @ V.T
        cached = self._clean_inner.get(name)
        if cached is None or cached[0] != V._version:
            cached = (V._version, layer_input @ V.T)
            self._clean_inner[name] = cached
        return cached[1]

    def masked_linear(
        self, name: str, layer_input: Tensor, mask: Tensor | StochasticMask
    ) -> Tensor | LazyActivation:
        """U (m * (V x)) + b for a layer input (..., d_in) and a mask (..., C) (a tensor, or a
        StochasticMask of that shape): (..., d_out), lazy where the layer's own product is."""
        U, _ = self.factors(name)
        masked_inner = apply_mask(self.inner_acts(name, layer_input), mask)
        output = linear_product(self._linears[name], masked_inner, U)
        bias = self._linears[name].bias
        # a layer with a bias is a plain nn.Linear, whose product is a Tensor
        return output if bias is None else cast(Tensor, output) + bias

    @torch.no_grad()
    def forward_recording_inputs(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Clean target forward of x: (batch, n_features); returns its output (batch, n_outputs)
        and each decomposed layer's input, (batch, d_in) per module name (a layer reading the
        residual MLP's stream gets it as a `FactoredResidual`, not a tensor)."""
        self._recorded_inputs = {}
        try:
            output = self.target.model(x)
            self._clean_x, self._clean_inputs, self._clean_inner = x, self._recorded_inputs, {}
            return output, self._recorded_inputs
        finally:
            self._recorded_inputs = None

    @contextmanager
    def _using_masks(self, masks: Mapping[str, Tensor | StochasticMask]) -> Iterator[None]:
        """Within it, the layers named in `masks` (per module name, (batch, C)) run masked."""
        self._masks = masks
        try:
            yield
        finally:
            self._masks = {}
            self._masked_x = None

    def forward_masked(self, x: Tensor, masks: Mapping[str, Tensor | StochasticMask]) -> Tensor:
        """Layers named in `masks` use their masked components; the others the target weights.
        x: (batch, n_features); masks: per module name, (batch, C), a tensor or a StochasticMask.
        Returns the target's output, (batch, n_outputs)."""
        with self._using_masks(masks):
            self._masked_x = x
            return self.target.model(x)

    def causal_importances(
        self, layer_inputs: Mapping[str, Tensor], alpha: float
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Lower- and upper-leaky causal importances, (batch, C) per decomposed module, from the
        layer inputs `forward_recording_inputs` returns (per module name, (batch, d_in))."""
        lower, upper = {}, {}
        for name in self.module_names:
            inner = self.inner_acts(name, layer_inputs[name])
            gates = cast(CausalImportanceGates, self.gates[_key(name)])
            lower[name], upper[name] = gates.causal_importances(inner, alpha)
        return lower, upper
