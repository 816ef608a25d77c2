"""Metrics of a decomposition against the target's ground truth, as tidy Parquet rows."""
