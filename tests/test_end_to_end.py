import pandas as pd

from spd.cli import main
from spd.families.tms import CI_CURVES_FILE
from spd.pipeline.layout import (
    DECOMPOSITION_FILE,
    LOSSES_FILE,
    METRICS_FILE,
    TARGET_FILE,
    RunFolder,
)


def _run(config, out):
    assert main(["run", "--config", str(config), "--out", str(out)]) == 0
    return pd.read_parquet(RunFolder(out).metrics)


def test_tiny_tms_run_writes_every_output_with_expected_rows(tiny_config_path, tmp_path):
    metrics = _run(tiny_config_path, tmp_path / "a")
    for name in (TARGET_FILE, DECOMPOSITION_FILE, LOSSES_FILE, METRICS_FILE):
        assert (tmp_path / "a" / name).is_file()
    expected = {
        "alive_subcomponents",
        "alive_on_probes",
        "ci_l0@0.01",
        "ci_l0@0.1",
        "ci_pattern_errors",
        "ci_errors_weak_diagonal",
        "ci_errors_off_diagonal",
        "ci_errors_shared",
        "mmcs",
        "mmcs_std",
        "ml2r",
        "ml2r_std",
    }
    assert set(metrics["metric"]) == expected
    assert set(metrics["layer"]) == {"linear1", "linear2"}
    assert set(metrics.columns) >= {
        "experiment",
        "seed",
        "layer",
        "metric",
        "value",
        "unit",
        "config_hash",
    }
    losses = pd.read_parquet(RunFolder(tmp_path / "a").losses)
    assert list(losses["step"]) == [0, 10, 20, 29]
    curves = pd.read_parquet(tmp_path / "a" / CI_CURVES_FILE)
    assert set(curves.columns) == {
        "experiment",
        "seed",
        "layer",
        "subcomponent",
        "feature",
        "x",
        "ci",
    }
    assert curves.x.min() == 0.0 and curves.x.max() == 1.0 and set(curves.feature) <= set(range(5))


def test_same_seed_gives_bit_identical_metrics(tiny_config_path, tmp_path):
    first = _run(tiny_config_path, tmp_path / "a")
    second = _run(tiny_config_path, tmp_path / "b")
    pd.testing.assert_frame_equal(first, second, check_exact=True)


def test_different_seed_gives_different_decomposition(tiny_config_path, tmp_path):
    first = _run(tiny_config_path, tmp_path / "a")
    assert (
        main(
            ["run", "--config", str(tiny_config_path), "--out", str(tmp_path / "b"), "--seed", "1"]
        )
        == 0
    )
    second = pd.read_parquet(RunFolder(tmp_path / "b").metrics)
    assert not first["value"].equals(second["value"])


def test_non_finite_loss_stops_the_run_naming_the_step(
    tiny_config_path, tmp_path, monkeypatch, capsys
):
    from spd.decomp import train

    real_losses = train.spd_losses

    def poisoned(*args, **kwargs):
        losses = real_losses(*args, **kwargs)
        losses["total"] = losses["total"] * float("nan")
        return losses

    monkeypatch.setattr(train, "spd_losses", poisoned)
    assert main(["run", "--config", str(tiny_config_path), "--out", str(tmp_path / "x")]) == 3
    err = capsys.readouterr().err
    assert "non-finite loss at step 0" in err and "tms_tiny" in err
    assert not RunFolder(tmp_path / "x").decomposition.exists()


def test_non_finite_parameter_stops_the_run_and_keeps_the_last_good_state(
    tiny_config_path, tmp_path, monkeypatch, capsys
):
    import torch

    from spd.decomp.component_model import ComponentModel
    from spd.optim import loop

    real_step = loop.training_step

    def corrupting(run, step):
        losses = real_step(run, step)
        # the decomposition's step 19 (target training runs the same loop first): after its
        # losses were checked, just before the save due after it
        if step == 19 and isinstance(run.model, ComponentModel):
            with torch.no_grad():
                next(run.model.parameters())[0] = float("inf")
        return losses

    monkeypatch.setattr(loop, "training_step", corrupting)
    out = tmp_path / "x"
    assert (
        main(
            [
                "run",
                "--config",
                str(tiny_config_path),
                "--out",
                str(out),
                "--checkpoint-every",
                "10",
            ]
        )
        == 3
    )
    err = capsys.readouterr().err
    assert "non-finite parameter" in err and "after step 19" in err and "tms_tiny, config" in err
    state = torch.load(RunFolder(out).decomposition_state, weights_only=True)
    assert state["next_step"] == 10
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert not RunFolder(out).decomposition.exists()
