"""Generated bad inputs through the command line: mutated params files, damaged or foreign
checkpoints, odd command-line values. Each run ends in success (exit 0) or in a one-line error
(`spd: error: ...` as the last stderr line, no traceback) with a non-zero exit code, and a failed
run leaves the files already in --out as they were.

A few mutated params files also go through `snakemake -n`: the workflow refuses a bad one in a
`spd: error:` line before planning any job.

Hypothesis runs derandomized and without an example database, so every run draws the same cases.
"""

from __future__ import annotations

import copy
import io
import itertools
import math
import re
import shutil
import subprocess
from contextlib import redirect_stderr
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY_RESID_MLP, TINY_TMS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spd.cli import main
from spd.config import APDConfig, EvalConfig, ResidMLPTargetConfig, SPDConfig, TMSTargetConfig
from spd.pipeline.layout import (
    DECOMPOSITION_FILE,
    LOSSES_FILE,
    METRICS_FILE,
    TARGET_FILE,
    RunFolder,
)

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)
OUTPUTS = (TARGET_FILE, DECOMPOSITION_FILE, METRICS_FILE, LOSSES_FILE)
_counter = itertools.count()
REPO = Path(__file__).parents[1]
# The plain CI-MLP gates: no compiled kernel to build or wait for.
TINY = copy.deepcopy(TINY_TMS)
TINY["decomposition"]["fused_gates"] = False
TINY_RESID = copy.deepcopy(TINY_RESID_MLP)
TINY_RESID["decomposition"]["fused_gates"] = False

# Training budgets a generated config is held to when its command trains, so that a mutation
# that leaves the config valid finishes in well under a second.
TARGET_CAPS = {"steps": 20, "max_seed_tries": 2}
DECOMPOSITION_CAPS = {"steps": 4, "restarts": 2, "restart_steps": 2}
EVALUATION_CAPS = {"steps": None, "n_random": 200}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished tiny TMS run: target.pt, decomposition.pt and every table."""
    root = tmp_path_factory.mktemp("finished")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    assert main(["run", "--config", str(root / "tiny.yaml"), "--out", str(root / "run")]) == 0
    return root / "run"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("generated")


def _case_dir(scratch: Path) -> Path:
    path = scratch / f"case{next(_counter)}"
    path.mkdir()
    return path


def _prepared_out(case: Path, finished: Path) -> Path:
    out = case / "out"
    out.mkdir()
    for name in OUTPUTS:
        shutil.copyfile(finished / name, out / name)
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def run_cli(argv: list[str], out: Path | None) -> tuple[int, list[str]]:
    """Run `spd argv`; assert it succeeds or fails in one line leaving `out`'s files as they were."""
    before = _snapshot(out) if out is not None and out.is_dir() else None
    stderr = io.StringIO()
    threads = torch.get_num_threads()
    with redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse: usage line, then `spd: error: ...`, exit 2
            code = exit_.code
        finally:
            torch.set_num_threads(threads)  # a --threads value holds for the whole process
    text = stderr.getvalue()
    lines = text.strip().splitlines()
    assert "Traceback" not in text, text
    if code == 0:
        return code, lines
    assert isinstance(code, int) and code != 0, (argv, code, text)
    # argparse names the subcommand: `spd decompose: error: ...` after its usage lines
    assert lines and re.match(r"spd( [a-z-]+)?: error: ", lines[-1]), (argv, text)
    if before is not None:
        assert _snapshot(out) == before, (argv, lines[-1])
        assert sorted(p.name for p in out.iterdir()) == sorted(before), (argv, lines[-1])
    return code, lines


# -- values ---------------------------------------------------------------------------------

HUGE = [2**31, 2**63, 2**64, 10**30]
BAD_VALUES = st.one_of(
    st.sampled_from(
        [
            None,
            True,
            False,
            "",
            "x",
            "1e3",
            "nan",
            [],
            [1],
            {},
            {"a": 1},
            -1,
            0,
            -(10**30),
            0.5,
            -0.5,
            1e300,
            math.nan,
            math.inf,
            -math.inf,
            *HUGE,
        ]
    ),
    st.integers(min_value=-5, max_value=5),
    st.text(max_size=8),
    st.lists(st.integers(min_value=-2, max_value=2), max_size=3),
)

EDGE_VALUES = st.sampled_from(
    [
        1,
        2,
        3,
        0,
        1e-9,
        1e-3,
        0.999,
        1.0,
        1e9,
        "constant",
        "cosine",
        "per_layer",
        "joint",
        "apd",
        "spd",
        "tms",
        "resid_mlp",
        [0, 1],
        ["linear1"],
        ["linear2"],
        ["linear1", "linear1"],
    ]
)


def _typo(key: str, data: st.DataObject) -> str:
    kind = data.draw(st.sampled_from(["drop", "double", "swap", "case", "suffix"]))
    if not key:
        return "x"
    i = data.draw(st.integers(min_value=0, max_value=len(key) - 1))
    if kind == "drop":
        new = key[:i] + key[i + 1 :]
    elif kind == "double":
        new = key[:i] + key[i] + key[i:]
    elif kind == "swap" and len(key) > 1:
        i = min(i, len(key) - 2)
        new = key[:i] + key[i + 1] + key[i] + key[i + 2 :]
    elif kind == "case":
        new = key.upper()
    else:
        new = key + "s"
    return new if new != key else key + "_"


def _containers(tree, path=()):
    """Every (path, container) of a nested dict/list tree, the root included."""
    yield path, tree
    items = (
        tree.items()
        if isinstance(tree, dict)
        else enumerate(tree)
        if isinstance(tree, list)
        else ()
    )
    for key, value in items:
        if isinstance(value, dict | list):
            yield from _containers(value, (*path, key))


def mutate(tree: dict, data: st.DataObject) -> str:
    """Apply one random mutation to `tree` in place; returns a description of it."""
    containers = [(p, c) for p, c in _containers(tree) if isinstance(c, dict) and c]
    if not containers:
        tree["seeds"] = data.draw(BAD_VALUES)
        return "set seeds"
    deep = [(p, c) for p, c in containers if len(p) >= 2]  # mostly a setting, seldom a section
    if deep and data.draw(st.integers(min_value=0, max_value=9)) < 8:
        containers = deep
    path, node = data.draw(st.sampled_from(containers))
    key = data.draw(st.sampled_from(sorted(node, key=str)))
    where = ".".join(map(str, (*path, key)))
    op = data.draw(
        st.sampled_from(
            ["delete", "rename", "value", "value", "edge", "edge", "add", "nest", "wrap", "move"]
        )
    )
    if op == "delete":
        del node[key]
    elif op == "rename":
        node[_typo(str(key), data)] = node.pop(key)
    elif op == "value":
        node[key] = data.draw(BAD_VALUES)
    elif op == "edge":  # often valid, at the edge of the range
        node[key] = data.draw(EDGE_VALUES)
    elif op == "add":
        node[data.draw(st.sampled_from(["colour", "stepz", "C", "name", "family", "", "1"]))] = (
            data.draw(BAD_VALUES)
        )
    elif op == "nest":
        node[key] = {key: node[key]}
    elif op == "wrap":
        node[key] = [node[key]]
    else:  # move a whole entry into a sibling mapping
        siblings = [k for k, v in node.items() if isinstance(v, dict) and k != key]
        if siblings:
            node[data.draw(st.sampled_from(siblings))][key] = node.pop(key)
        else:
            del node[key]
    return f"{op} {where}"


def _capped(section: object, caps: dict[str, int]) -> None:
    """Hold a mapping's training budgets to `caps` where they are ints above them, and its steps
    where absent (their defaults are long runs); a value of another type is left for the
    validation to reject."""
    if not isinstance(section, dict):
        return
    if caps["steps"] is not None:
        section.setdefault("steps", caps["steps"])
    for key, cap in caps.items():
        value = section.get(key)
        if (
            cap is not None
            and isinstance(value, int)
            and not isinstance(value, bool)
            and value > cap
        ):
            section[key] = cap


def _cap_experiment(body: object, command: str = "run") -> None:
    """Cap the sections `command` trains (a target given to decompose or evaluate is compared
    with the experiment's target settings as they are)."""
    if isinstance(body, dict):
        if command in ("train-target", "run"):
            _capped(body.get("target"), TARGET_CAPS)
        if command in ("decompose", "run"):
            _capped(body.get("decomposition"), DECOMPOSITION_CAPS)
        _capped(body.get("evaluation"), EVALUATION_CAPS)


def _base_params(family: str, method: str, trains_target: bool = False) -> dict:
    body = copy.deepcopy(
        {k: v for k, v in (TINY if family == "tms" else TINY_RESID).items() if k != "name"}
    )
    if trains_target and family == "tms":
        body["target"]["min_feature_norm"] = 0.01  # a short training represents every feature
    if method == "apd":
        body["decomposition"] = {
            "method": "apd",
            "C": 6,
            "topk": 1.0,
            "simplicity_coeff": 0.01,
            "schatten_p": 0.9,
            "lr": 1e-3,
            "steps": 4,
            "batch_size": 32,
            "log_every": 2,
        }
    return {"seeds": [0], "experiments": {"tiny": body}}


# -- mutated params files -------------------------------------------------------------------


@settings(FUZZ, max_examples=90)
@given(
    data=st.data(),
    family=st.sampled_from(["tms", "resid_mlp"]),
    method=st.sampled_from(["spd", "spd", "apd"]),
    command=st.sampled_from(["train-target", "decompose", "evaluate", "run"]),
    n_mutations=st.sampled_from([1, 1, 2, 3]),
)
def test_mutated_params(finished, scratch, data, family, method, command, n_mutations):
    raw = _base_params(family, method, trains_target=command in ("train-target", "run"))
    for _ in range(n_mutations):
        mutate(raw, data)
    experiments = raw.get("experiments")
    if isinstance(experiments, dict):
        for body in experiments.values():
            _cap_experiment(body, command)
    case = _case_dir(scratch)
    params = case / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = _prepared_out(case, finished)
    argv = [command, "--params", str(params), "--experiment", "tiny", "--out", str(out)]
    if command in ("decompose", "evaluate"):
        argv += ["--target", str(RunFolder(finished).target)]
    if command == "evaluate":
        argv += ["--decomposition", str(RunFolder(finished).decomposition)]
    run_cli(argv, out)


SCHEMAS = {
    "tms": TMSTargetConfig,
    "resid_mlp": ResidMLPTargetConfig,
    "spd": SPDConfig,
    "apd": APDConfig,
    "evaluation": EvalConfig,
}


@settings(FUZZ, max_examples=70)
@given(
    data=st.data(),
    family=st.sampled_from(["tms", "resid_mlp"]),
    method=st.sampled_from(["spd", "spd", "apd"]),
    command=st.sampled_from(["train-target", "decompose", "evaluate", "run"]),
    section=st.sampled_from(["target", "decomposition", "evaluation"]),
)
def test_one_setting_at_an_extreme(finished, scratch, data, family, method, command, section):
    """One known setting (written or left at its default) set to an edge, huge or odd value:
    the values that pass validation and reach the compute."""
    if command in ("decompose", "evaluate"):
        family, method = "tms", "spd"  # the finished run's
    raw = _base_params(family, method, trains_target=command in ("train-target", "run"))
    schema = SCHEMAS[{"target": family, "decomposition": method}.get(section, section)]
    key = data.draw(st.sampled_from(sorted(schema.model_fields)))
    raw["experiments"]["tiny"][section][key] = data.draw(st.one_of(EDGE_VALUES, BAD_VALUES))
    _cap_experiment(raw["experiments"]["tiny"], command)
    case = _case_dir(scratch)
    params = case / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = _prepared_out(case, finished)
    argv = [command, "--params", str(params), "--experiment", "tiny", "--out", str(out)]
    if command in ("decompose", "evaluate"):
        argv += ["--target", str(RunFolder(finished).target)]
    if command == "evaluate":
        argv += ["--decomposition", str(RunFolder(finished).decomposition)]
    run_cli(argv, out)


@settings(FUZZ, max_examples=40)
@given(data=st.data(), n_mutations=st.integers(min_value=1, max_value=2))
def test_mutated_single_experiment_config(finished, scratch, data, n_mutations):
    """`--config FILE` with a mutated single-experiment file, checked against the finished run."""
    raw = copy.deepcopy(TINY)
    for _ in range(n_mutations):
        mutate(raw, data)
    case = _case_dir(scratch)
    (case / "c.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    out = _prepared_out(case, finished)
    run_cli(
        [
            "evaluate",
            "--config",
            str(case / "c.yaml"),
            "--target",
            str(RunFolder(finished).target),
            "--decomposition",
            str(RunFolder(finished).decomposition),
            "--out",
            str(out),
        ],
        out,
    )


# -- files given as checkpoints ---------------------------------------------------------------

NON_TENSORS = st.sampled_from([None, 1, 1.5, "w", [1, 2], {"a": 1}, True])


def _mutated_payload(payload: dict, data: st.DataObject) -> object:
    kind = data.draw(
        st.sampled_from(
            [
                "drop_key",
                "wrong_kind",
                "no_kind",
                "config_junk",
                "config_mutated",
                "state_shapes",
                "state_non_tensor",
                "state_junk",
                "state_extra",
                "state_dtype",
                "info_junk",
                "list",
                "scalar",
                "record_junk",
            ]
        )
    )
    payload = copy.deepcopy(payload)
    if kind == "drop_key":
        del payload[data.draw(st.sampled_from(sorted(payload)))]
    elif kind == "wrong_kind":
        payload["kind"] = data.draw(
            st.sampled_from(["decomposition", "target", "training_state", 3, None])
        )
    elif kind == "no_kind":
        payload.pop("kind")
    elif kind == "config_junk":
        payload["config"] = data.draw(BAD_VALUES)
    elif kind == "config_mutated":
        mutate(payload["config"], data)
    elif kind == "state_shapes":
        name = data.draw(st.sampled_from(sorted(payload["state_dict"])))
        shape = data.draw(st.lists(st.integers(min_value=0, max_value=4), max_size=3))
        payload["state_dict"][name] = torch.zeros(shape)
    elif kind == "state_non_tensor":
        name = data.draw(st.sampled_from(sorted(payload["state_dict"])))
        payload["state_dict"][name] = data.draw(NON_TENSORS)
    elif kind == "state_junk":
        payload["state_dict"] = data.draw(st.one_of(NON_TENSORS, BAD_VALUES))
    elif kind == "state_extra":
        payload["state_dict"][data.draw(st.sampled_from(["extra", "linear1.bias", ""]))] = (
            torch.zeros(2)
        )
    elif kind == "state_dtype":
        name = data.draw(st.sampled_from(sorted(payload["state_dict"])))
        payload["state_dict"][name] = payload["state_dict"][name].to(
            data.draw(st.sampled_from([torch.int64, torch.bool, torch.float16, torch.complex64]))
        )
    elif kind == "info_junk":
        payload["info" if "info" in payload else "record"] = data.draw(
            st.one_of(NON_TENSORS, BAD_VALUES)
        )
    elif kind == "record_junk":
        payload["record"] = data.draw(st.one_of(NON_TENSORS, BAD_VALUES))
    elif kind == "list":
        return list(payload.values())
    else:
        return data.draw(NON_TENSORS)
    return payload


def _bad_file(case: Path, source: Path, data: st.DataObject) -> Path:
    kind = data.draw(
        st.sampled_from(
            [
                "bytes",
                "empty",
                "truncated",
                "payload",
                "payload",
                "payload",
                "yaml",
                "directory",
                "zip_junk",
            ]
        )
    )
    path = case / data.draw(
        st.sampled_from(["bad.pt", "bad file.pt", "bäd;$x.pt", "-bad.pt", "bad"])
    )
    if kind == "bytes":
        path.write_bytes(data.draw(st.binary(min_size=1, max_size=300)))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        blob = source.read_bytes()
        path.write_bytes(blob[: data.draw(st.integers(min_value=1, max_value=len(blob) - 1))])
    elif kind == "payload":
        torch.save(_mutated_payload(torch.load(source, weights_only=True), data), path)
    elif kind == "yaml":
        path.write_text(yaml.safe_dump(TINY_TMS))
    elif kind == "directory":
        path.mkdir()
    else:  # a zip archive that is not torch's
        import zipfile

        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("data.pkl", data.draw(st.binary(max_size=50)))
    return path


@settings(FUZZ, max_examples=80)
@given(
    data=st.data(),
    slot=st.sampled_from(["decompose --target", "evaluate --target", "evaluate --decomposition"]),
)
def test_bad_checkpoint_files(finished, scratch, data, slot):
    case = _case_dir(scratch)
    command, flag = slot.split()
    run = RunFolder(finished)
    source = run.decomposition if flag == "--decomposition" else run.target
    bad = _bad_file(case, source, data)
    (case / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    out = _prepared_out(case, finished)
    argv = [command, "--config", str(case / "tiny.yaml"), "--out", str(out)]
    if command == "decompose":
        argv += ["--target", str(bad), "--steps", "2"]
    else:
        given_files = {
            "--target": RunFolder(finished).target,
            "--decomposition": RunFolder(finished).decomposition,
        }
        given_files[flag] = bad
        argv += [arg for key, path in given_files.items() for arg in (key, str(path))]
    run_cli(argv, out)


# -- command-line values --------------------------------------------------------------------

INT_ARGS = st.one_of(
    st.sampled_from([-(2**63), -1, 0, 1, 2, *HUGE]),
    st.integers(min_value=-3, max_value=3),
    st.sampled_from(["x", "1.5", "", "1e3", "--", "nan", "0x10"]),
)
ODD_NAMES = st.one_of(
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="\x00/"), min_size=0, max_size=12
    ),
    st.sampled_from(["tiny", "tiny ", "TINY", "tiny@C=4", "../tiny", "-tiny", "tiny\n", "tiny:1"]),
)


@settings(FUZZ, max_examples=60)
@given(
    data=st.data(),
    command=st.sampled_from(["train-target", "decompose", "evaluate", "run"]),
    option=st.sampled_from(
        ["--threads", "--steps", "--seed", "--checkpoint-every", "--experiment", "--out"]
    ),
)
def test_bad_command_line_values(finished, scratch, data, command, option):
    case = _case_dir(scratch)
    body = _base_params("tms", "spd", trains_target=command in ("train-target", "run"))
    _cap_experiment(body["experiments"]["tiny"], command)
    (case / "params.yaml").write_text(yaml.safe_dump(body))
    out = _prepared_out(case, finished)
    options = {"--experiment": "tiny", "--out": str(out), "--params": str(case / "params.yaml")}
    if option == "--experiment":
        options[option] = data.draw(ODD_NAMES)
    elif option == "--out":
        name = data.draw(ODD_NAMES.filter(lambda s: s not in ("", ".", "..")))
        options[option] = str(case / name)
        if data.draw(st.booleans()):  # where a file stands
            (case / name).write_text("x") if not (case / name).exists() else None
        out = None
    else:
        value = data.draw(INT_ARGS)
        if option == "--steps" and isinstance(value, int) and value > 4:
            value = 4  # a valid huge step count trains for as long as it says
        options[option] = str(value)
    argv = [command, *(arg for key, value in options.items() for arg in (f"{key}={value}",))]
    if command in ("decompose", "evaluate"):
        argv += [f"--target={RunFolder(finished).target}"]
    if command == "evaluate":
        argv += [f"--decomposition={RunFolder(finished).decomposition}"]
    run_cli(argv, out)


# -- the Snakemake workflow on mutated params files ---------------------------------------------


@pytest.fixture(scope="module")
def workflow_dir(tmp_path_factory) -> Path:
    """A copy of the workflow (Snakefile, rules, profiles) to dry-run params files in."""
    root = tmp_path_factory.mktemp("workflow")
    shutil.copy(REPO / "Snakefile", root)
    shutil.copytree(REPO / "workflow", root / "workflow")
    shutil.copytree(REPO / "profiles", root / "profiles")
    return root


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
@settings(FUZZ, max_examples=8)
@given(
    data=st.data(),
    family=st.sampled_from(["tms", "resid_mlp"]),
    method=st.sampled_from(["spd", "apd"]),
)
def test_workflow_dry_run_on_mutated_params(workflow_dir, data, family, method):
    raw = _base_params(family, method)
    raw["sweeps"] = {"C": {"setting": "C", "experiments": {"tiny": [4, 8]}}}
    for _ in range(data.draw(st.sampled_from([0, 1, 1, 1]))):  # now and then the valid file
        mutate(raw, data)
    name = f"params{next(_counter)}.yaml"
    (workflow_dir / name).write_text(yaml.safe_dump(raw, sort_keys=False))
    result = subprocess.run(
        ["snakemake", "-n", "--cores", "1", "--config", f"params={name}"],
        cwd=workflow_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text[-3000:]
    if result.returncode != 0:
        assert any(line.startswith("spd: error: ") for line in text.splitlines()), text[-3000:]
