"""Stochastic Parameter Decomposition: components, causal importance, masks, losses, training."""
