"""Target models: what every family's target shares (`base`), and `build_target`, the only door
into a family's model (`spd.families.<family>.model`)."""

from spd.targets.base import Target
from spd.targets.registry import build_target, load_target, train_target

__all__ = ["Target", "build_target", "load_target", "train_target"]
