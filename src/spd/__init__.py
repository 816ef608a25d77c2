"""spd-pipeline: Stochastic Parameter Decomposition, its toy targets and ground-truth evaluation."""
