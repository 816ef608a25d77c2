"""Target models: one module per toy family; `build_target` is the only door into them."""

from spd.targets.base import Target
from spd.targets.registry import build_target, load_target, train_target

__all__ = ["Target", "build_target", "load_target", "train_target"]
