"""Progress lines on long runs: elapsed time and an ETA at the mean rate so far."""

import re

from spd.config import TMSTargetConfig
from spd.families.tms import model as tms
from spd.optim.loop import _timing, clock


def test_clock_and_eta():
    assert clock(3725) == "1:02:05"
    assert (
        _timing(9, 0, 100, 20.0) == " | elapsed 0:00:20, ETA 0:03:00"
    )  # 10 steps in 20 s, 90 to go
    assert _timing(1009, 1000, 2000, 5.0) == " | elapsed 0:00:05, ETA 0:08:15"  # resumed at 1000
    # resumed after 10 min of earlier steps: elapsed counts them, the ETA is this process's rate
    assert _timing(1009, 1000, 2000, 5.0, 600.0) == " | elapsed 0:10:05, ETA 0:08:15"
    assert _timing(0, 0, 100, 1.0) == ""  # one step: no rate yet


def test_target_training_reports_progress_with_elapsed_time_and_eta():
    config = TMSTargetConfig(n_features=5, d_hidden=2, steps=50, batch_size=64)
    lines: list[str] = []
    tms.train_once(config, 0, "cpu", lines.append)
    progress = [line for line in lines if line.startswith("  target seed 0 step ")]
    assert progress[0].startswith("  target seed 0 step 1/50 total ")
    assert progress[-1].startswith("  target seed 0 step 50/50 total ")
    assert all(
        re.search(r"\| elapsed \d+:\d\d:\d\d, ETA \d+:\d\d:\d\d$", line) for line in progress[1:]
    )
