"""What the decomposition needs to know about a target: its frozen model, which `nn.Linear`
layers to decompose, which of them share (transposed) subcomponents, and how to draw a batch."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import torch
from torch import Tensor, nn

from spd.config import ConfigError
from spd.kernels import uniform

# (batch_size, generator) -> a batch of the target's inputs, (batch_size, n_features) for the toy
# models
BatchSampler = Callable[[int, torch.Generator], Tensor]


class LazyActivation(Protocol):
    """An activation a target keeps in a cheaper form than a dense tensor (e.g. factored)."""

    def dense(self) -> Tensor:
        """The activation as a tensor, e.g. (batch, d_out) for a layer's output."""
        ...


class LinearWithOwnProduct(nn.Linear):
    """An `nn.Linear` that computes x W^T its own way, `product(x, weight)` (e.g. returning a
    `LazyActivation`); the masked component forward uses the same `product` with U. No bias."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)

    def product(self, x: Tensor, weight: Tensor) -> Tensor | LazyActivation:
        """x W^T: x (batch, k) and weight (d_out, k) -> (batch, d_out); k = d_in in the layer's
        own forward, C in the masked component forward (weight U: (d_out, C))."""
        raise NotImplementedError

    # by design a LazyActivation where nn.Linear returns a Tensor
    def forward(self, x: Tensor) -> Tensor | LazyActivation:  # type: ignore[override]
        """x: (batch, d_in) -> (batch, d_out), lazy where `product` makes it so."""
        return self.product(x, self.weight)


def linear_product(module: nn.Linear, x: Tensor, weight: Tensor) -> Tensor | LazyActivation:
    """x W^T (no bias) as `module` computes it with `weight` in place of its own: x (..., k) and
    weight (d_out, k) -> (..., d_out), e.g. the masked inner activations (batch, C) and U."""
    return module.product(x, weight) if isinstance(module, LinearWithOwnProduct) else x @ weight.T


def dense(activation: Tensor | LazyActivation) -> Tensor:
    """The activation as a tensor of its shape, e.g. (batch, d_out)."""
    return activation if isinstance(activation, Tensor) else activation.dense()


@dataclass(frozen=True)
class Target:
    """`model` maps a batch of inputs to outputs, (batch, n_features) -> (batch, n_features) for
    the toy models; `sample_batch(batch_size, generator)` draws (batch_size, n_features) inputs."""

    model: nn.Module
    decomposed_modules: tuple[str, ...]
    sample_batch: BatchSampler
    tied_modules: Mapping[str, str] = field(default_factory=dict)
    """module -> source module: its subcomponents are the source's, transposed (U<->V^T)."""
    relu_input_modules: tuple[str, ...] = ()
    """Layers whose output goes through a ReLU into the next layer: APD's activation
    reconstruction compares ReLU(their output) between target and top-k pass."""

    def __post_init__(self) -> None:
        names = dict(self.model.named_modules())
        for name in self.decomposed_modules:
            if not isinstance(names.get(name), nn.Linear):
                raise TypeError(f"decomposed module '{name}' is not an nn.Linear of the target")
        for tied, source in self.tied_modules.items():
            if tied not in self.decomposed_modules or source not in self.decomposed_modules:
                raise ValueError(f"tied modules '{tied}' -> '{source}' must both be decomposed")
            if source in self.tied_modules:
                raise ValueError(f"tied module '{tied}' points at '{source}', itself tied")

    def fingerprint(self) -> str:
        """A hash of the target's weights: a training state resumes only on the same target."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def restricted_to(self, modules: Sequence[str] | None) -> Target:
        """The same target decomposing only `modules` (all when None); a tie is kept when both of
        its modules are decomposed, else the tied module gets its own subcomponents."""
        if modules is None:
            return self
        unknown = [name for name in modules if name not in self.decomposed_modules]
        if unknown:
            known = ", ".join(self.decomposed_modules)
            raise ConfigError(
                f"bad config key 'decomposition.modules': the target has no decomposable layer "
                f"'{unknown[0]}' (it has: {known})"
            )
        kept = tuple(name for name in self.decomposed_modules if name in modules)
        ties = {t: s for t, s in self.tied_modules.items() if t in kept and s in kept}
        relu_inputs = tuple(name for name in self.relu_input_modules if name in kept)
        return replace(
            self, decomposed_modules=kept, tied_modules=ties, relu_input_modules=relu_inputs
        )


def sparse_feature_batch(
    batch_size: int,
    n_features: int,
    feature_probability: float,
    generator: torch.Generator,
    low: float,
    high: float = 1.0,
) -> Tensor:
    """Each feature independently active with `feature_probability`, value uniform in [low, high).
    Returns (batch_size, n_features)."""
    active = uniform((batch_size, n_features), generator, torch.float32) < feature_probability
    values = uniform((batch_size, n_features), generator, torch.float32) * (high - low) + low
    return values * active
