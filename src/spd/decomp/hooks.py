"""The forward hooks a decomposition puts on its target's decomposed layers, kept so that they
can be taken off: a finished or discarded decomposition leaves the target as it found it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import nn
from torch.utils.hooks import RemovableHandle


class TargetHooks:
    """Mixin for models that hook their target's layers; `remove_hooks()` takes them off."""

    _hook_handles: list[RemovableHandle]

    def _hook_layers(
        self, layers: Iterable[tuple[str, nn.Module]], make_hook: Callable[[str], Callable]
    ) -> None:
        self._hook_handles = [
            layer.register_forward_hook(make_hook(name)) for name, layer in layers
        ]

    def remove_hooks(self) -> None:
        """Take this model's hooks off the target (again: nothing happens)."""
        for handle in self._hook_handles:
            handle.remove()
        self._hook_handles = []
