"""An example toy family outside the package: a linear map on sparse features in superposition.

Put `examples/` on PYTHONPATH and name it in a target config as
`family: "sparse_linear.family:SparseLinear"`."""
