"""Toy families: each a `Family` object (see `base`) that binds its target, metrics and figures;
`registry.family` finds one by name or by import path."""
