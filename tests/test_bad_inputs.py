"""Bad inputs through the command line: each gives a one-line error naming the bad key or file, a
non-zero exit code, and leaves the outputs already in --out untouched."""

import copy
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY_RESID_MLP, TINY_TMS

from spd.cli import OVER_PARAMS, main
from spd.pipeline.layout import (
    DECOMPOSITION_FILE,
    LOSSES_FILE,
    METRICS_FILE,
    TARGET_FILE,
    RunFolder,
)

REPO = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, resid_target) -> Path:
    """A finished tiny run: target.pt, decomposition.pt and every table; beside it, a trained
    residual-MLP target (resid_target.pt)."""
    root = tmp_path_factory.mktemp("finished")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY_TMS))
    assert main(["run", "--config", str(root / "tiny.yaml"), "--out", str(root / "run")]) == 0
    (root / "resid_target.pt").write_bytes(resid_target.read_bytes())
    return root / "run"


@pytest.fixture(scope="module")
def resid_target(tmp_path_factory) -> Path:
    """A trained tiny residual-MLP target.pt."""
    root = tmp_path_factory.mktemp("resid")
    (root / "resid.yaml").write_text(yaml.safe_dump(TINY_RESID_MLP))
    assert main(["train-target", "--config", str(root / "resid.yaml"), "--out", str(root)]) == 0
    return RunFolder(root).target


def _config_case(section: str, key: str, value, bad_key: str):
    def make(tmp: Path, finished: Path) -> list[str]:
        raw = copy.deepcopy(TINY_TMS)
        raw[section][key] = value
        (tmp / "bad.yaml").write_text(yaml.safe_dump(raw))
        return ["run", "--config", str(tmp / "bad.yaml")]

    return pytest.param(make, f"'{bad_key}'", id=f"{bad_key}={value}")


def _params_case(mutate: Callable[[dict], None], message: str, case_id: str):
    def make(tmp: Path, finished: Path) -> list[str]:
        body = {k: copy.deepcopy(v) for k, v in TINY_TMS.items() if k != "name"}
        raw = {"seeds": [0], "experiments": {"tiny": body}}
        mutate(raw)
        (tmp / "params.yaml").write_text(yaml.safe_dump(raw))
        return ["run", "--params", str(tmp / "params.yaml"), "--experiment", "tiny"]

    return pytest.param(make, message, id=case_id)


def _file_case(make: Callable[[Path, Path], list[str]], message: str, case_id: str):
    return pytest.param(make, message, id=case_id)


def _config(tmp: Path, finished: Path) -> str:
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(TINY_TMS))
    return str(tmp / "tiny.yaml")


def _damaged_copy(source: Path, tmp: Path, damage: Callable[[bytes], bytes]) -> str:
    path = tmp / f"damaged_{source.name}"
    path.write_bytes(damage(source.read_bytes()))
    return str(path)


def _changed_config(tmp: Path, section: str, **changes) -> str:
    raw = copy.deepcopy(TINY_TMS)
    raw[section].update(changes)
    (tmp / "changed.yaml").write_text(yaml.safe_dump(raw))
    return str(tmp / "changed.yaml")


def _retrained_target(tmp: Path, finished: Path) -> str:
    """The same settings and shapes, other weights: as if trained again elsewhere."""
    payload = torch.load(RunFolder(finished).target, weights_only=True)
    payload["state_dict"] = {k: v + 0.01 for k, v in payload["state_dict"].items()}
    torch.save(payload, tmp / "retrained.pt")
    return str(tmp / "retrained.pt")


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _target_with_wrong_shapes(tmp: Path, finished: Path) -> str:
    payload = torch.load(RunFolder(finished).target, weights_only=True)
    payload["state_dict"] = {k: torch.zeros(3, 3) for k in payload["state_dict"]}
    torch.save(payload, tmp / "wrong_shapes.pt")
    return str(tmp / "wrong_shapes.pt")


def _decomposition_of_another_target(tmp: Path, finished: Path) -> str:
    payload = torch.load(RunFolder(finished).decomposition, weights_only=True)
    payload["config"]["C"] = 3  # its U, V no longer fit: as if made for another C or target
    torch.save(payload, tmp / "other.pt")
    return str(tmp / "other.pt")


def _checkpoint_without(name: str, key: str):
    def make(tmp: Path, finished: Path) -> str:
        payload = torch.load(finished / name, weights_only=True)
        del payload[key]
        torch.save(payload, tmp / f"no_{key}.pt")
        return str(tmp / f"no_{key}.pt")

    return make


def _target_of_huge_config(tmp: Path, finished: Path) -> str:
    payload = torch.load(RunFolder(finished).target, weights_only=True)
    payload["config"]["n_features"] = 2**40
    torch.save(payload, tmp / "huge.pt")
    return str(tmp / "huge.pt")


BAD_INPUTS = [
    _config_case("decomposition", "Cx", 3, "decomposition.Cx"),
    _config_case(
        "decomposition",
        "importance_minimality_coef",
        3e-3,
        "decomposition.importance_minimality_coef",
    ),
    _file_case(
        lambda tmp, fin: [
            "run",
            "--config",
            _changed_config(tmp, "decomposition", C=1_000_000_000),
        ],
        "decomposition.C=1000000000 with decomposition.batch_size=64 needs about",
        "C too large for memory",
    ),
    _file_case(
        lambda tmp, fin: [
            "decompose",
            "--config",
            _config(tmp, fin),
            "--target",
            str(fin.parent / "resid_target.pt"),
        ],
        "a resid_mlp target, but experiment 'tms_tiny' asks for a tms target",
        "target of another family",
    ),
    _file_case(
        lambda tmp, fin: [
            "decompose",
            "--config",
            _changed_config(tmp, "target", n_features=6),
            "--target",
            str(RunFolder(fin).target),
        ],
        "trained with target n_features=5 (experiment: 6)",
        "target of another size",
    ),
    _file_case(
        lambda tmp, fin: [
            "evaluate",
            "--config",
            _changed_config(tmp, "target", identity_layer=True),
            "--target",
            str(RunFolder(fin).target),
            "--decomposition",
            str(RunFolder(fin).decomposition),
        ],
        "trained with target identity_layer=False (experiment: True)",
        "identity variant on a plain run",
    ),
    _file_case(
        lambda tmp, fin: [
            "evaluate",
            "--config",
            _changed_config(tmp, "decomposition", importance_minimality_coeff=1e-2),
            "--target",
            str(RunFolder(fin).target),
            "--decomposition",
            str(RunFolder(fin).decomposition),
        ],
        "made with decomposition importance_minimality_coeff=0.003 (experiment: 0.01)",
        "decomposition of other settings",
    ),
    _file_case(
        lambda tmp, fin: [
            "evaluate",
            "--config",
            _config(tmp, fin),
            "--target",
            _retrained_target(tmp, fin),
            "--decomposition",
            str(RunFolder(fin).decomposition),
        ],
        f"{DECOMPOSITION_FILE}: made from target",
        "decomposition of another target's weights",
    ),
    _file_case(
        lambda tmp, fin: [
            "train-target",
            "--config",
            _changed_config(tmp, "target", max_seed_tries=1, min_feature_norm=50.0),
        ],
        "target: no seed in [0] represented all 5 features",
        "target that never represents every feature",
    ),
    _config_case("decomposition", "C", 0, "decomposition.C"),
    _config_case("decomposition", "C", -4, "decomposition.C"),
    _config_case("decomposition", "C", "many", "decomposition.C"),
    _config_case(
        "decomposition",
        "importance_minimality_coeff",
        -1e-3,
        "decomposition.importance_minimality_coeff",
    ),
    _config_case(
        "decomposition", "stochastic_recon_coeff", -1, "decomposition.stochastic_recon_coeff"
    ),
    _config_case("decomposition", "pnorm", 0, "decomposition.pnorm"),
    _config_case("decomposition", "pnorm", -2, "decomposition.pnorm"),
    _config_case("decomposition", "lr_schedule", "linear", "decomposition.lr_schedule"),
    _config_case("decomposition", "batch_size", 2.5, "decomposition.batch_size"),
    _config_case("decomposition", "leaky_alpha", 1.5, "decomposition.leaky_alpha"),
    _config_case("decomposition", "lr", float("inf"), "decomposition.lr"),
    _config_case("evaluation", "probe_value", float("nan"), "evaluation.probe_value"),
    _config_case("target", "feature_probability", 0, "target.feature_probability"),
    _config_case("target", "feature_probability", 1.5, "target.feature_probability"),
    _config_case("target", "n_features", 2.5, "target.n_features"),
    _config_case("target", "family", "gpt2", "target.family"),
    _config_case("evaluation", "alive_threshold", 0, "evaluation.alive_threshold"),
    _config_case("evaluation", "l0_thresholds", [0.0], "evaluation.l0_thresholds.0"),
    _params_case(lambda raw: raw.update(seeds=[-1]), "'seeds.0'", "negative seed"),
    _params_case(lambda raw: raw.update(experiments={}), "'experiments'", "no experiments"),
    _params_case(lambda raw: raw.update(colour="red"), "'colour'", "unknown top-level key"),
    _params_case(
        lambda raw: raw["experiments"]["tiny"]["decomposition"].update(C=0),
        "'experiments.tiny.decomposition.C'",
        "params C=0",
    ),
    _params_case(
        lambda raw: raw.update(sweeps={"w": {"setting": "width", "experiments": {"tiny": [1]}}}),
        "'sweeps.w.setting': 'width' is not a decomposition setting",
        "sweep of an unknown setting",
    ),
    _params_case(
        lambda raw: raw.update(sweeps={"C": {"setting": "C", "experiments": {"tiny": [4, -1]}}}),
        "sweeps.C.experiments.tiny: bad config key 'decomposition.C'",
        "sweep value out of range",
    ),
    _params_case(
        lambda raw: raw.update(main_experiments=["huge"]),
        "'main_experiments': 'huge' is not an SPD experiment scored by MMCS and ML2R",
        "unknown main experiment",
    ),
    _file_case(
        lambda tmp, fin: [
            "sweep-figures",
            "--params",
            str(REPO / "params.yaml"),
            "--sweep",
            "gamma",
            "--experiment",
            "tms_5-2",
        ],
        "--sweep gamma: params has no such sweep",
        "unknown sweep",
    ),
    _file_case(
        lambda tmp, fin: [
            "robustness",
            "--params",
            str(REPO / "params.yaml"),
            "--runs-root",
            str(tmp / "none"),
        ],
        f"none/tms_5-2/seed0/{METRICS_FILE}: file not found",
        "robustness without runs",
    ),
    _file_case(
        lambda tmp, fin: ["run", "--params", str(tmp / "missing.yaml"), "--experiment", "tiny"],
        "missing.yaml: config file not found",
        "params file missing",
    ),
    _file_case(
        lambda tmp, fin: (
            (tmp / "p.yaml").write_text("seeds: [0")
            and ["run", "--params", str(tmp / "p.yaml"), "--experiment", "tiny"]
        ),
        "p.yaml: not valid YAML",
        "params not YAML",
    ),
    _file_case(
        lambda tmp, fin: ["run", "--params", str(REPO / "params.yaml"), "--experiment", "tms_9-9"],
        "unknown experiment 'tms_9-9'",
        "unknown experiment",
    ),
    _file_case(
        lambda tmp, fin: [
            "decompose",
            "--config",
            _config(tmp, fin),
            "--target",
            str(tmp / "nope.pt"),
        ],
        "--target",
        "target checkpoint missing",
    ),
    _file_case(
        lambda tmp, fin: [
            "decompose",
            "--config",
            _config(tmp, fin),
            "--target",
            _damaged_copy(RunFolder(fin).target, tmp, _truncate),
        ],
        "damaged_target.pt: unreadable checkpoint",
        "target checkpoint truncated",
    ),
    _file_case(
        lambda tmp, fin: [
            "decompose",
            "--config",
            _config(tmp, fin),
            "--target",
            _target_with_wrong_shapes(tmp, fin),
        ],
        "wrong_shapes.pt: does not fit its config",
        "target checkpoint wrong shapes",
    ),
    _file_case(
        lambda tmp, fin: [
            "decompose",
            "--config",
            _config(tmp, fin),
            "--target",
            str(RunFolder(fin).decomposition),
        ],
        f"{DECOMPOSITION_FILE}: not a 'target' checkpoint",
        "decomposition given as target",
    ),
    _file_case(
        lambda tmp, fin: (
            (tmp / "m.yaml").write_text(
                yaml.safe_dump(
                    {
                        **TINY_TMS,
                        "decomposition": {**TINY_TMS["decomposition"], "modules": ["linear9"]},
                    }
                )
            )
            and [
                "decompose",
                "--config",
                str(tmp / "m.yaml"),
                "--target",
                str(RunFolder(fin).target),
            ]
        ),
        "'decomposition.modules': the target has no decomposable layer 'linear9'",
        "unknown module",
    ),
    _file_case(
        lambda tmp, fin: [
            "evaluate",
            "--config",
            _config(tmp, fin),
            "--target",
            str(RunFolder(fin).target),
            "--decomposition",
            _damaged_copy(RunFolder(fin).decomposition, tmp, _truncate),
        ],
        "damaged_decomposition.pt: unreadable checkpoint",
        "decomposition truncated",
    ),
    _file_case(
        lambda tmp, fin: [
            "evaluate",
            "--config",
            _config(tmp, fin),
            "--target",
            str(RunFolder(fin).target),
            "--decomposition",
            _decomposition_of_another_target(tmp, fin),
        ],
        "other.pt: does not fit the target",
        "decomposition of another target",
    ),
    _file_case(
        lambda tmp, fin: ["run", "--config", _config(tmp, fin), "--threads", "0"],
        "--threads 0",
        "zero threads",
    ),
    _file_case(
        lambda tmp, fin: ["run", "--config", _config(tmp, fin), "--checkpoint-every", "0"],
        "--checkpoint-every 0",
        "zero checkpoint interval",
    ),
    _file_case(
        lambda tmp, fin: ["run", "--config", _config(tmp, fin), "--steps", "-5"],
        "'decomposition.steps'",
        "negative steps override",
    ),
    _file_case(
        lambda tmp, fin: [
            "decompose",
            "--config",
            _config(tmp, fin),
            "--target",
            str(RunFolder(fin).target),
            "--cuda-graph",
        ],
        "--cuda-graph: needs --device cuda",
        "CUDA graph on the CPU",
    ),
    _config_case("target", "seed", 2**64, "target.seed"),
    _config_case("decomposition", "seed", 10**30, "decomposition.seed"),
    _config_case("evaluation", "seed", 2**64, "evaluation.seed"),
    _file_case(
        lambda tmp, fin: [
            "decompose",
            "--config",
            _config(tmp, fin),
            "--target",
            str(RunFolder(fin).target),
            "--seed",
            str(2**64),
        ],
        "'decomposition.seed': Input should be less than",
        "seed override beyond 64 bits",
    ),
    _file_case(
        lambda tmp, fin: [
            "train-target",
            "--config",
            _changed_config(tmp, "target", batch_size=2**40),
        ],
        "target.batch_size=1099511627776 needs about",
        "target batch too large",
    ),
    _file_case(
        lambda tmp, fin: ["run", "--config", _changed_config(tmp, "target", n_features=2**40)],
        "target.n_features=1099511627776, target.d_hidden=2",
        "target too large",
    ),
    _file_case(
        lambda tmp, fin: [
            "evaluate",
            "--config",
            _changed_config(tmp, "evaluation", n_random=2**40),
            "--target",
            str(RunFolder(fin).target),
            "--decomposition",
            str(RunFolder(fin).decomposition),
        ],
        "evaluation.n_random=1099511627776 with decomposition.C=8 needs about",
        "evaluation batch too large",
    ),
    _file_case(
        lambda tmp, fin: [
            "train-target",
            "--config",
            _changed_config(tmp, "target", d_hidden=10**30),
        ],
        "target.d_hidden=1000000000000000000000000000000",
        "target too large to train",
    ),
    _file_case(
        lambda tmp, fin: [
            "decompose",
            "--config",
            _config(tmp, fin),
            "--target",
            _target_of_huge_config(tmp, fin),
        ],
        "huge.pt: its target config asks for a model too large to build",
        "target checkpoint of huge sizes",
    ),
    _file_case(
        lambda tmp, fin: [
            "decompose",
            "--config",
            _config(tmp, fin),
            "--target",
            _checkpoint_without(TARGET_FILE, "config")(tmp, fin),
        ],
        "no_config.pt: damaged 'target' checkpoint (no 'config' in it)",
        "target checkpoint without config",
    ),
    _file_case(
        lambda tmp, fin: [
            "decompose",
            "--config",
            _config(tmp, fin),
            "--target",
            _checkpoint_without(TARGET_FILE, "info")(tmp, fin),
        ],
        "no_info.pt: damaged 'target' checkpoint (no 'info' in it)",
        "target checkpoint without info",
    ),
    _file_case(
        lambda tmp, fin: [
            "evaluate",
            "--config",
            _config(tmp, fin),
            "--target",
            str(RunFolder(fin).target),
            "--decomposition",
            _checkpoint_without(DECOMPOSITION_FILE, "config")(tmp, fin),
        ],
        "no_config.pt: damaged 'decomposition' checkpoint (no 'config' in it)",
        "decomposition checkpoint without config",
    ),
    _file_case(
        lambda tmp, fin: [
            "evaluate",
            "--config",
            _config(tmp, fin),
            "--target",
            str(RunFolder(fin).target),
            "--decomposition",
            _checkpoint_without(DECOMPOSITION_FILE, "state_dict")(tmp, fin),
        ],
        "no_state_dict.pt: damaged 'decomposition' checkpoint (no 'state_dict' in it)",
        "decomposition checkpoint without weights",
    ),
    _file_case(
        lambda tmp, fin: ["run", "--config", _config(tmp, fin), "--threads", str(2**31)],
        "--threads 2147483648: must be between 1 and 1024",
        "threads beyond 32 bits",
    ),
]


@pytest.mark.parametrize("make_args, message", BAD_INPUTS)
def test_bad_input_fails_in_one_line_and_touches_nothing(
    make_args, message, finished, tmp_path, capsys
):
    out = tmp_path / "out"
    out.mkdir()
    existing = {}
    for name in (TARGET_FILE, DECOMPOSITION_FILE, METRICS_FILE, LOSSES_FILE):
        (out / name).write_bytes((finished / name).read_bytes())
        existing[name] = (out / name).read_bytes()
    capsys.readouterr()
    args = make_args(tmp_path, finished)
    # a run's --out is a folder; the figures' is the PDF, here one in that folder
    out_arg = out / "figures.pdf" if args[0] in OVER_PARAMS else out
    code = main([*args, "--out", str(out_arg)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err and err[-1].startswith("spd: error:") and message in err[-1], err
    assert sorted(p.name for p in out.iterdir()) == sorted(existing)
    assert all((out / name).read_bytes() == data for name, data in existing.items())


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda tmp, fin: ["figures", str(fin), "--out", str(tmp)], ": a folder, not a file"),
        (
            lambda tmp, fin: ["figures", str(fin), "--out", str(tmp / "file" / "f.pdf")],
            f"its folder {{tmp}}{os.sep}file: not a folder (it or a parent is a file)",
        ),
        (lambda tmp, fin: ["table1", str(fin), "--out", str(tmp / "file" / "t1")], "t1.md: its"),
        (
            lambda tmp, fin: (
                ["summary", str(fin), "--metrics", str(tmp)] + ["--losses", str(tmp / "l.csv")]
            ),
            "--metrics {tmp}: a folder, not a file",
        ),
        (
            lambda tmp, fin: (
                ["summary", str(fin), "--metrics", str(tmp / "m.json")]
                + ["--losses", str(tmp / "file" / "l.csv")]
            ),
            "--losses {tmp}",
        ),
        (
            lambda tmp, fin: (
                ["figures", str(fin), "--table1", str(fin / METRICS_FILE)]
                + ["--out", str(tmp / "f.pdf")]
            ),
            "metrics.parquet: not a Table 1 (no column 'mean', 'std', 'n_seeds', 'seeds',",
        ),
        (
            lambda tmp, fin: (
                ["report", "--metrics-root", str(tmp / "nope")] + ["--out", str(tmp / "r.md")]
            ),
            "--metrics-root {tmp}" + os.sep + "nope: no such folder",
        ),
    ],
)
def test_a_bad_file_option_of_a_table_or_figure_command_fails_before_any_work(
    make_args, message, finished, tmp_path, capsys
):
    (tmp_path / "file").write_text("a file where a folder should be")
    capsys.readouterr()
    code = main(make_args(tmp_path, finished))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("spd: error:"), err
    assert message.format(tmp=tmp_path) in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
