"""Toy Models of Superposition, top to bottom: `model` (the target, its data and training, the
ground truth), `metrics` (a decomposition scored against that ground truth), `verdict` (the
recovery criteria), `figures` (the family's PDF page), and `family` (all of it as a `Family`)."""

from spd.families.tms.family import CI_CURVES_FILE, TMS, WEIGHTS_FILE, TMSFamily

__all__ = ["CI_CURVES_FILE", "TMS", "WEIGHTS_FILE", "TMSFamily"]
