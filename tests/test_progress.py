"""Progress lines on long runs: elapsed time and an ETA at the mean rate so far."""

from spd.decomp.loop import _clock, _timing


def test_clock_and_eta():
    assert _clock(3725) == "1:02:05"
    assert (
        _timing(9, 0, 100, 20.0) == " | elapsed 0:00:20, ETA 0:03:00"
    )  # 10 steps in 20 s, 90 to go
    assert _timing(1009, 1000, 2000, 5.0) == " | elapsed 0:00:05, ETA 0:08:15"  # resumed at 1000
    assert _timing(0, 0, 100, 1.0) == ""  # one step: no rate yet
