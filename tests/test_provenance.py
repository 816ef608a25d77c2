"""A run's results carry what the run itself was: the settings it ran with, the target it was
made from, and a verdict only where there is a ground truth to score against."""

import json
from pathlib import Path

import pandas as pd
import torch
import yaml
from conftest import TINY_TMS

from spd.cli import main
from spd.config import TMSTargetConfig
from spd.pipeline.layout import RunFolder
from spd.provenance import run_record
from spd.targets.registry import fingerprint


def _run(tmp_path: Path, name: str, *extra: str) -> Path:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_TMS))
    out = tmp_path / name
    assert main(["run", "--config", str(config), "--out", str(out), *extra]) == 0
    return out


def test_a_shorter_run_has_its_own_config_hash_and_says_its_steps(tmp_path):
    full, short = _run(tmp_path, "full"), _run(tmp_path, "short", "--steps", "20")
    hashes = [set(pd.read_parquet(RunFolder(run).metrics).config_hash) for run in (full, short)]
    assert len(hashes[0]) == len(hashes[1]) == 1 and hashes[0] != hashes[1]
    records = [json.loads(RunFolder(run).record.read_text()) for run in (full, short)]
    assert [r["steps"] for r in records] == [30, 20]
    assert {records[1]["config_hash"]} == hashes[1]
    # evaluate, given the experiment, scores the shorter decomposition under its own settings
    out = tmp_path / "again"
    assert (
        main(
            [
                "evaluate",
                "--config",
                str(tmp_path / "tiny.yaml"),
                "--target",
                str(RunFolder(short).target),
                "--decomposition",
                str(RunFolder(short).decomposition),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert set(pd.read_parquet(RunFolder(out).metrics).config_hash) == hashes[1]
    summary = tmp_path / "summary.json"
    assert (
        main(
            ["summary", str(short), "--metrics", str(summary), "--losses", str(tmp_path / "l.csv")]
        )
        == 0
    )
    run = json.loads(summary.read_text())
    assert run["run"]["steps"] == 20 and run["run"]["config_hash"] in hashes[1]
    assert run["provenance"]["device"] == "cpu" and run["provenance"]["wall_s"] > 0
    assert run["verdict"]["recovered"] is False and run["verdict"]["failures"]


def test_a_target_missing_a_feature_gets_no_verdict_whoever_trained_it(tmp_path, capsys):
    run = _run(tmp_path, "run")
    payload = torch.load(RunFolder(run).target, weights_only=True)
    payload["state_dict"]["linear1.weight"][:, 4] = 0.0  # feature 4 no longer represented
    damaged = RunFolder(tmp_path / "elsewhere").target
    damaged.parent.mkdir()
    torch.save(payload, damaged)
    out = tmp_path / "scored"
    config = str(tmp_path / "tiny.yaml")
    assert main(["decompose", "--config", config, "--target", str(damaged), "--out", str(out)]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--config",
                config,
                "--target",
                str(damaged),
                "--decomposition",
                str(RunFolder(out).decomposition),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert (
        "no verdict: the target does not represent every feature (missing: 4)"
        in capsys.readouterr().err
    )
    verdict = json.loads(RunFolder(out).record.read_text())["verdict"]
    assert verdict["recovered"] is None and "missing: 4" in verdict["reason"]


def test_an_output_folder_under_a_file_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_TMS))
    (tmp_path / "file").write_text("not a folder")
    code = main(
        ["run", "--config", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "file" / "run")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [
        f"spd: error: --out {tmp_path / 'file' / 'run'}: not a folder (it or a parent is a file)"
    ]


def test_a_refused_run_creates_no_output_folder(tmp_path, capsys):
    from spd.checks import check_output_folder

    (tmp_path / "huge.yaml").write_text(
        yaml.safe_dump(TINY_TMS | {"decomposition": TINY_TMS["decomposition"] | {"C": 10**9}})
    )
    out = tmp_path / "new" / "run"
    code = main(["run", "--config", str(tmp_path / "huge.yaml"), "--out", str(out)])
    assert code == 2 and "needs about" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    check_output_folder(out)  # a folder that can be made passes, and is not made by the check
    assert not (tmp_path / "new").exists()


def test_a_run_evaluated_before_run_records_says_how_to_get_one(tmp_path, capsys):
    run = _run(tmp_path, "run")
    RunFolder(run).record.unlink()
    capsys.readouterr()
    code = main(
        [
            "summary",
            str(run),
            "--metrics",
            str(tmp_path / "s.json"),
            "--losses",
            str(tmp_path / "l.csv"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "evaluate it again with `spd evaluate`" in err[0]


def test_code_version_is_dirty_only_when_the_package_itself_changed(tmp_path):
    import subprocess

    from spd.provenance import code_version

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "code.py").write_text("x = 1\n")
    (tmp_path / "summary.json").write_text("{}\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "one")
    (tmp_path / "summary.json").write_text('{"a": 1}\n')
    assert not code_version(tmp_path / "pkg").endswith("-dirty")
    (tmp_path / "pkg" / "code.py").write_text("x = 2\n")
    assert code_version(tmp_path / "pkg").endswith("-dirty")


def test_seeds_of_one_experiment_share_their_settings_hash(tmp_path):
    hashes = [
        set(pd.read_parquet(RunFolder(_run(tmp_path, name, *extra)).metrics).config_hash)
        for name, extra in (("seed0", ()), ("seed1", ("--seed", "1")))
    ]
    assert hashes[0] == hashes[1] and len(hashes[0]) == 1  # Table 1 averages over such seeds


def test_a_new_setting_left_at_its_default_keeps_the_target_fingerprint():
    config = TMSTargetConfig.model_validate(TINY_TMS["target"])

    class WithANewSetting(TMSTargetConfig):
        new_setting: int = 3

    extended = WithANewSetting.model_validate(TINY_TMS["target"])
    weights = {"linear1.weight": torch.ones(2, 5)}
    assert fingerprint(extended, weights) == fingerprint(config, weights)
    changed = WithANewSetting.model_validate(TINY_TMS["target"] | {"new_setting": 4})
    assert fingerprint(changed, weights) != fingerprint(config, weights)


def test_a_run_shorter_than_a_tenth_of_a_second_records_its_time():
    assert run_record("cpu", 1, 0.0437)["wall_s"] == 0.044
