import pandas as pd

from spd.figures.common import live_subcomponents as _alive


def test_live_subcomponents_are_ordered_by_the_probe_they_fire_on():
    # subcomponent 5 fires on probe 1, subcomponent 2 on probe 0, subcomponent 7 never above 0.1
    rows = [
        ("linear1", 0, 2, 0.9),
        ("linear1", 1, 2, 0.0),
        ("linear1", 0, 5, 0.0),
        ("linear1", 1, 5, 1.0),
        ("linear1", 0, 7, 0.05),
        ("linear1", 1, 7, 0.1),
    ]
    table = pd.DataFrame(rows, columns=["layer", "probe", "subcomponent", "ci"])
    assert _alive(table, "linear1") == [2, 5]


def test_figures_command_names_a_missing_table(tmp_path, capsys):
    from spd.cli import main

    assert main(["figures", str(tmp_path), "--out", str(tmp_path / "f.pdf")]) == 2
    assert "metrics.parquet: file not found" in capsys.readouterr().err
    assert not (tmp_path / "f.pdf").exists()
