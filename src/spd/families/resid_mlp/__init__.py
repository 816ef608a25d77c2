"""The residual MLP, top to bottom: `model` (the target, its data and training, the ground
truth), `metrics` (a decomposition scored against that ground truth), `verdict` (the recovery
criteria), `figures` (the family's PDF page), and `family` (all of it as a `Family`)."""

from spd.families.resid_mlp.family import NEURON_CONTRIBUTIONS_FILE, RESID_MLP, ResidMLPFamily

__all__ = ["NEURON_CONTRIBUTIONS_FILE", "RESID_MLP", "ResidMLPFamily"]
