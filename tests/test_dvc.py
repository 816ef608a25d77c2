"""DVC drives the same entry points as Snakemake: full build, no-op rebuild, minimal rerun after a
parameter change, `dvc metrics diff`, and push / fresh clone / pull round trips (a local folder
remote, and an S3 remote on a local moto server), on a temporary copy of the repository with tiny
settings. Also: each stage's code deps cover the spd modules its command imports."""

import ast
import copy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import TINY_TMS

from spd.families.tms import WEIGHTS_FILE
from spd.pipeline.layout import (
    DECOMPOSITION_FILE,
    LOSSES_FILE,
    METRICS_FILE,
    TARGET_FILE,
    RunFolder,
)

REPO = Path(__file__).parents[1]

pytestmark = pytest.mark.skipif(shutil.which("dvc") is None, reason="dvc not installed")

EXPERIMENTS = ("tiny_a", "tiny_b")
OUTPUTS = [
    *(f"data/targets/{name}/{TARGET_FILE}" for name in EXPERIMENTS),
    *(
        f"results/runs/{name}/seed0/{table}"
        for name in EXPERIMENTS
        for table in (DECOMPOSITION_FILE, LOSSES_FILE, METRICS_FILE, WEIGHTS_FILE)
    ),
    "results/tables/tms_table1.parquet",
    "results/figures/tms.pdf",
]


def _run(cwd: Path, *command: str) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def _set_beta3(repo: Path, experiment: str, value: float) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["experiments"][experiment]["decomposition"]["importance_minimality_coeff"] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("dvc.yaml", ".dvcignore", ".gitignore", "Snakefile"):
        shutil.copy(REPO / name, root)
    for folder in ("workflow", "profiles"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copytree(
        REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    body = {k: v for k, v in TINY_TMS.items() if k != "name"}
    params = {
        "seeds": [0],
        "main_experiments": list(EXPERIMENTS),
        "experiments": {name: copy.deepcopy(body) for name in EXPERIMENTS},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    _run(root, "git", "init", "-q")
    _run(root, "git", "config", "user.email", "test@example.com")
    _run(root, "git", "config", "user.name", "test")
    _run(root, "dvc", "init", "-q")
    return root


def test_repro_rerun_param_change_metrics_diff_push_and_pull(repo: Path, tmp_path: Path):
    first = _run(repo, "dvc", "repro")
    assert (
        first.count("Running stage") == 2 + 2 + 2 + 2
    )  # targets, decompose, evaluate, table+figures
    assert "Running stage" not in _run(repo, "dvc", "repro")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "tiny results")

    target_b = RunFolder(repo / "data/targets/tiny_b").target.stat().st_mtime_ns
    run_a = RunFolder(repo / "results/runs/tiny_a/seed0").decomposition.stat().st_mtime_ns
    _set_beta3(repo, "tiny_b", 1e-2)
    rerun = {
        line.split("'")[1]
        for line in _run(repo, "dvc", "repro").splitlines()
        if line.startswith("Running stage")
    }
    assert rerun == {"decompose@tiny_b-0", "evaluate@tiny_b-0", "tms_table1", "tms_figures"}
    assert RunFolder(repo / "data/targets/tiny_b").target.stat().st_mtime_ns == target_b
    assert RunFolder(repo / "results/runs/tiny_a/seed0").decomposition.stat().st_mtime_ns == run_a
    diff = _run(repo, "dvc", "metrics", "diff")
    assert "results/metrics/tiny_b/seed0.json" in diff
    assert "results/metrics/tiny_a/seed0.json" not in diff
    assert "final_loss.importance_minimality" in diff

    remote = tmp_path / "remote"
    _run(repo, "dvc", "remote", "add", "-d", "shared", str(remote))
    _run(repo, "dvc", "push")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "beta3 1e-2 for tiny_b")

    clone = tmp_path / "clone"
    _run(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    assert not (clone / OUTPUTS[0]).exists()
    _run(clone, "dvc", "pull")
    for path in OUTPUTS:
        assert (clone / path).read_bytes() == (repo / path).read_bytes(), path
    assert "up to date" in _run(clone, "dvc", "status")
    assert "Running stage" not in _run(clone, "dvc", "repro")

    # Snakemake, the other driver, sees pulled files as new: after a trusted pull, --touch marks
    # them up to date instead of recomputing.
    _run(clone, "snakemake", "--cores", "1", "--touch", "--quiet")
    assert "Nothing to be done" in _run(clone, "snakemake", "--cores", "1", "-n")


# --- dvc.yaml's code deps cover every spd module a stage's command imports ----------------------

SRC = REPO / "src"
STAGE_MODULES = ("train_target", "decompose", "evaluate", "summary", "table1", "figures")


def _module_file(name: str) -> Path | None:
    """The file of module `name` under src/ (a package's __init__.py), None for other modules."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _spd_imports(nodes) -> set[str]:
    """spd modules imported anywhere in `nodes` (function-local imports included); for `from
    spd.x import y`, also spd.x.y where that is a module."""
    found: set[str] = set()
    for node in (n for top in nodes for n in ast.walk(top)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "spd"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "spd":
            found.add(node.module)
            found |= {
                f"{node.module}.{a.name}"
                for a in node.names
                if _module_file(f"{node.module}.{a.name}")
            }
    return found


def _import_closure(roots: set[str]) -> set[Path]:
    """Files of `roots` and of every spd module they import, transitively, with the __init__.py
    of each package on the way (importing spd.a.b runs spd/__init__.py and spd/a/__init__.py).
    spd.cli is not followed: which of its imports run depends on the command."""
    seen: set[str] = {"spd.cli"}
    todo = list(roots)
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for module in (".".join(parts[:i]) for i in range(1, len(parts) + 1)):
            if module in seen or _module_file(module) is None:
                continue
            seen.add(module)
            tree = ast.parse(_module_file(module).read_text())
            todo.extend(_spd_imports([tree]))
    return {_module_file(name) for name in seen - {"spd.cli"}}


def _cli_walk(command: str) -> tuple[set[str], set[str]]:
    """Top-level functions of spd/cli.py that `spd <command>` can call, and the spd modules main
    imports on the way: main's body is walked with `args.command` known, so only the branches
    that command can take count; an `if` that does not depend on the command counts both ways; a
    branch that returns ends the walk."""
    tree = ast.parse((SRC / "spd" / "cli.py").read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    main = functions["main"]
    local = {}
    module_level = [n for n in tree.body if not isinstance(n, ast.FunctionDef)]
    for node in [*module_level, *ast.walk(main)]:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            try:
                local[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    env = {**local, "args": type("Args", (), {"command": command})()}

    def branch_taken(test: ast.expr) -> bool | None:
        uses_command = any(
            isinstance(n, ast.Attribute) and n.attr == "command" for n in ast.walk(test)
        )
        if not uses_command:
            return None
        try:
            return bool(eval(compile(ast.Expression(test), "cli.py", "eval"), {}, env))
        except Exception:  # noqa: BLE001 - anything not decidable from the command alone
            return None

    called: set[str] = set()
    imported: set[str] = set()

    def walk(statements: list[ast.stmt]) -> bool:
        """Collects calls; True when the walk certainly returned."""
        for statement in statements:
            if isinstance(statement, ast.FunctionDef):
                continue  # main's argparse helpers
            if isinstance(statement, ast.If):
                taken = branch_taken(statement.test)
                called.update(_called_names(statement.test))
                if taken is None:
                    returned = walk(statement.body) & walk(statement.orelse)
                else:
                    returned = walk(statement.body if taken else statement.orelse)
                if returned:
                    return True
            elif isinstance(statement, ast.Try):
                if walk(statement.body):
                    return True
            else:
                called.update(_called_names(statement))
                imported.update(_spd_imports([statement]))
                if isinstance(statement, ast.Return):
                    return True
        return False

    walk(main.body)
    reached: set[str] = set()
    todo = [name for name in called if name in functions]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(n for n in _called_names(functions[name]) if n in functions)
    return reached, imported


def _cli_functions_run_by(command: str) -> set[str]:
    return _cli_walk(command)[0]


def _called_names(node: ast.AST) -> set[str]:
    return {
        n.func.id
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }


def _modules_run_by(command: str) -> set[Path]:
    """Every spd file that `python -m spd <command>` can import: spd.__main__, spd.cli's
    module-level imports, and what main imports for that command and the cli functions it runs."""
    tree = ast.parse((SRC / "spd" / "cli.py").read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    module_level = [n for n in tree.body if not isinstance(n, ast.FunctionDef)]
    reached, imported = _cli_walk(command)
    run = [functions[name] for name in reached]
    roots = {"spd.__main__"} | _spd_imports(module_level) | _spd_imports(run) | imported
    return _import_closure(roots) | {SRC / "spd" / "cli.py"}


def _stage_commands(stage: dict) -> list[str]:
    commands = stage["cmd"] if isinstance(stage["cmd"], list) else [stage["cmd"]]
    found = []
    for command in commands:
        words = command.split()
        assert words[:3] == ["python", "-m", "spd"], f"not a `python -m spd` command: {command}"
        found.append(words[3])
    return found


def test_cli_walk_follows_the_subcommand():
    stage = {name: SRC / "spd" / "pipeline" / f"{name}.py" for name in STAGE_MODULES}
    assert stage["summary"] in _modules_run_by("summary")
    assert stage["evaluate"] not in _modules_run_by("summary")
    assert stage["evaluate"] in _modules_run_by("evaluate")
    assert "_require_file" in _cli_functions_run_by("evaluate")
    assert stage["decompose"] not in _modules_run_by("evaluate")
    assert {stage[name] for name in ("train_target", "decompose", "evaluate")} <= _modules_run_by(
        "run"
    )
    assert "_selected_runs" in _cli_functions_run_by("table1")
    assert stage["table1"] in _modules_run_by("table1")
    assert stage["figures"] in _modules_run_by("robustness")  # via _figures_over_params
    assert SRC / "spd" / "evaluate" / "table1.py" in _modules_run_by("figures")  # via figures
    assert SRC / "spd" / "evaluate" / "table1.py" not in _modules_run_by("train-target")


@pytest.mark.parametrize("name", sorted(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]))
def test_stage_deps_cover_every_module_its_command_imports(name: str):
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][name]
    deps = [REPO / dep for dep in stage["deps"] if "${" not in dep]
    for command in _stage_commands(stage):
        needed = _modules_run_by(command)
        missing = sorted(
            str(path.relative_to(REPO))
            for path in needed
            if not any(path == dep or dep in path.parents for dep in deps)
        )
        assert not missing, f"stage {name} (spd {command}) imports files not in its deps: {missing}"


# --- an S3 remote: a local S3-compatible server (moto), loopback only ---------------------------


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch):
    """http://127.0.0.1:PORT of an in-process moto S3 server on a free port, with dummy
    credentials in the environment (the dvc subprocesses inherit them) and every other way for
    botocore to reach the network (instance metadata, config files, proxies) shut off."""
    server_module = pytest.importorskip("moto.server", reason="moto[server] not installed")
    pytest.importorskip("dvc_s3", reason="dvc[s3] not installed")
    boto3 = pytest.importorskip("boto3", reason="boto3 not installed")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "NO_PROXY": "127.0.0.1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        assert host == "127.0.0.1"
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="spd-test")
        yield endpoint, boto3.client("s3", endpoint_url=endpoint)
    finally:
        server.stop()


def test_push_to_s3_and_pull_into_a_fresh_clone(repo: Path, tmp_path: Path, s3_endpoint):
    endpoint, s3 = s3_endpoint
    stage, output = "train_target@tiny_a", f"data/targets/tiny_a/{TARGET_FILE}"
    assert "Running stage" in _run(repo, "dvc", "repro", stage)
    _run(repo, "dvc", "remote", "add", "-d", "s3", "s3://spd-test/dvc-cache")
    _run(repo, "dvc", "remote", "modify", "s3", "endpointurl", endpoint)
    _run(repo, "dvc", "push", stage)
    stored = [item["Key"] for item in s3.list_objects_v2(Bucket="spd-test")["Contents"]]
    assert stored and all(key.startswith("dvc-cache/files/md5/") for key in stored)
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "tiny target, S3 remote")

    clone = tmp_path / "clone"
    _run(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    assert not (clone / output).exists()
    _run(clone, "dvc", "pull", stage)
    assert (clone / output).read_bytes() == (repo / output).read_bytes()
    assert "Data and pipelines are up to date" in _run(clone, "dvc", "status", stage)
    assert "in sync" in _run(clone, "dvc", "status", "--cloud", stage)
    assert "Running stage" not in _run(clone, "dvc", "repro", stage)
