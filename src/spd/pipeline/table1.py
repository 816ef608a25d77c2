"""Stage `spd table1`: Table 1 (MMCS and ML2R over seeds) of evaluated run folders."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from spd.io import atomic_write, read_parquet, write_parquet
from spd.pipeline.layout import METRICS_FILE, run_tables
from spd.pipeline.log import log


def table1(runs: list[Path], out_stem: Path) -> None:
    """Writes Table 1 of the run folders `runs` to OUT_STEM.parquet and OUT_STEM.md."""
    from spd.evaluate.table1 import table1 as make_table1
    from spd.evaluate.table1 import table1_markdown

    metrics = pd.concat(read_parquet(paths[0]) for paths in run_tables(runs, [METRICS_FILE]))
    table = make_table1(metrics)
    write_parquet(table, out_stem.with_suffix(".parquet"))
    markdown = table1_markdown(table)
    atomic_write(out_stem.with_suffix(".md"), lambda tmp: tmp.write_text(markdown))
    log(markdown.rstrip())
    log(f"Table 1 saved to {out_stem}.md and {out_stem}.parquet")
