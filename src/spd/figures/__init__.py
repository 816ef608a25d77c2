"""Figures from the evaluation tables (Parquet -> PDF)."""
