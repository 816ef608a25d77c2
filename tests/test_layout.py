"""The run folder's files are named once, in spd.pipeline.layout: the Snakemake rules build their
outputs from it, and dvc.yaml's literal paths agree with it."""

import copy
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import TINY_APD, TINY_RESID_MLP, TINY_TMS

from spd.families.registry import family
from spd.pipeline import layout

REPO = Path(__file__).parents[1]
RUN_FOLDER = re.compile(r"^results/runs/[^/]+/seed[^/]+/([^/]+)$")
TARGET_FOLDER = re.compile(r"^data/targets/[^/]+/([^/]+)$")


def _spd_evaluation(family_name: str) -> set[str]:
    tables = layout.COMMON_SPD_TABLES + family(family_name).evaluation_tables
    return {*layout.EVALUATE_OUTPUTS, *tables}


def _names(paths: list[str], folder: re.Pattern) -> set[str]:
    return {match[1] for path in paths if (match := folder.match(path))}


def test_dvc_stages_write_and_read_the_layouts_files():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    # The main job's experiments are TMS SPD runs.
    assert _names(stages["train_target"]["outs"], TARGET_FOLDER) == set(layout.TRAIN_TARGET_OUTPUTS)
    assert _names(stages["decompose"]["outs"], RUN_FOLDER) == set(layout.DECOMPOSE_OUTPUTS)
    assert _names(stages["decompose"]["deps"], TARGET_FOLDER) == {layout.TARGET_FILE}
    assert _names(stages["evaluate"]["outs"], RUN_FOLDER) == _spd_evaluation("tms")
    assert _names(stages["evaluate"]["deps"], RUN_FOLDER) == set(layout.DECOMPOSE_OUTPUTS)
    assert _names(stages["evaluate"]["deps"], TARGET_FOLDER) == {layout.TARGET_FILE}


def _dry_run_jobs(workdir: Path) -> list[tuple[str, list[str], list[str]]]:
    """(rule, inputs, outputs) of every job `snakemake -n` plans for a fresh tree."""
    targets = [
        "all",
        "results/figures/resid_mlp.pdf",
        f"results/runs/tiny_apd/seed0/{layout.RUN_RECORD_FILE}",
    ]
    result = subprocess.run(
        ["snakemake", "-n", "--cores", "1", *targets, "--config", "params=tiny.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = []
    for block in re.split(r"\n(?=rule \w+:)", result.stdout + result.stderr):
        rule = re.match(r"rule (\w+):", block)
        if rule is None:
            continue
        fields = dict(re.findall(r"^\s+(input|output): (.*)$", block, re.MULTILINE))
        jobs.append(
            (
                rule[1],
                fields.get("input", "").split(", "),
                fields.get("output", "").split(", "),
            )
        )
    return jobs


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_snakemake_rules_write_and_read_the_layouts_files(tmp_path: Path):
    shutil.copy(REPO / "Snakefile", tmp_path)
    shutil.copytree(REPO / "workflow", tmp_path / "workflow")
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    tms = {k: copy.deepcopy(v) for k, v in TINY_TMS.items() if k != "name"}
    apd = copy.deepcopy(tms) | {"decomposition": TINY_APD}
    resid = {k: copy.deepcopy(v) for k, v in TINY_RESID_MLP.items() if k != "name"}
    params = {"seeds": [0], "experiments": {"tiny_a": tms, "tiny_apd": apd, "tiny_resid": resid}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(params))
    evaluation_reads = {layout.DECOMPOSITION_FILE, layout.RUN_CONFIG_FILE}
    expected = {
        "train_target": (set(), set(layout.TRAIN_TARGET_OUTPUTS)),
        "decompose": ({layout.TARGET_FILE}, set(layout.DECOMPOSE_OUTPUTS)),
        "evaluate_tms": (evaluation_reads, _spd_evaluation("tms")),
        "evaluate_resid_mlp": (evaluation_reads, _spd_evaluation("resid_mlp")),
        "evaluate_apd": (evaluation_reads, set(layout.EVALUATE_OUTPUTS)),
    }
    seen = set()
    for rule, inputs, outputs in _dry_run_jobs(tmp_path):
        folder_files = _names(inputs, RUN_FOLDER) | _names(inputs, TARGET_FOLDER)
        made = _names(outputs, RUN_FOLDER) | _names(outputs, TARGET_FOLDER)
        if rule in expected:
            seen.add(rule)
            reads, writes = expected[rule]
            assert made == writes, rule
            assert folder_files - {layout.TARGET_FILE} == reads - {layout.TARGET_FILE}, rule
            assert (layout.TARGET_FILE in folder_files) == (rule != "train_target"), rule
        else:
            assert not made, f"rule {rule} writes into a run folder: {made}"
            known = {name for files in expected.values() for name in files[1]}
            assert folder_files <= known, f"rule {rule} reads {folder_files - known}"
    assert seen == set(expected)
