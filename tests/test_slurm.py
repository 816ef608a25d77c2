"""The tiny pipeline through a real single-node SLURM cluster (Debian's slurm-wlm and munge, daemons
started here with a slurm.conf written for the test), via `snakemake --workflow-profile profiles/slurm`; its
outputs must equal a local run's. Skipped where SLURM is not installed or we are not root."""

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_pipeline import _snakemake, workdir  # noqa: F401 - the tiny two-experiment workflow copy

from spd.pipeline.layout import RunFolder

SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by spd-pipeline's tests/test_slurm.py; removed when the test ends"
SLURM_MISSING = next(
    (
        name
        for name in ("slurmctld", "slurmd", "sbatch", "munged")
        if shutil.which(name) is None and not Path(f"/usr/sbin/{name}").exists()
    ),
    None,
)
pytestmark = [
    pytest.mark.skipif(
        SLURM_MISSING is not None,
        reason=f"SLURM not installed ({SLURM_MISSING} missing; apt-get install slurm-wlm munge)",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="starting slurmctld/slurmd needs root"),
]


def _ensure_munge() -> None:
    if (
        subprocess.run(
            "munge -n | unmunge", shell=True, capture_output=True, check=False
        ).returncode
        == 0
    ):
        return
    Path("/run/munge").mkdir(exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True)
    time.sleep(1)
    subprocess.run("munge -n | unmunge", shell=True, check=True, capture_output=True)


@pytest.fixture
def slurm_cluster(tmp_path_factory):
    """slurmctld + slurmd on this machine with a private config; yields the environment to use."""
    root = tmp_path_factory.mktemp("slurm")
    host = socket.gethostname().split(".")[0]
    memory_mb = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20) - 1024
    for folder in ("state", "spool", "log"):
        (root / folder).mkdir()
    # Job steps (srun inside each sbatch job) read the standard path, whatever SLURM_CONF says.
    if SYSTEM_CONF.exists() and MARKER not in SYSTEM_CONF.read_text():
        pytest.skip(f"{SYSTEM_CONF} belongs to a real cluster; not replacing it")
    conf = SYSTEM_CONF
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        "\n".join(
            [
                MARKER,
                "ClusterName=local",
                f"SlurmctldHost={host}",
                "AuthType=auth/munge",
                "ProctrackType=proctrack/pgid",
                "TaskPlugin=task/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                f"StateSaveLocation={root}/state",
                f"SlurmdSpoolDir={root}/spool",
                "SlurmUser=root",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "MinJobAge=3600",
                "ReturnToService=2",
                f"SlurmctldPidFile={root}/slurmctld.pid",
                f"SlurmdPidFile={root}/slurmd.pid",
                f"SlurmctldLogFile={root}/log/slurmctld.log",
                f"SlurmdLogFile={root}/log/slurmd.log",
                f"NodeName={host} CPUs={os.cpu_count()} RealMemory={memory_mb} State=UNKNOWN",
                f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )
    )
    env = dict(os.environ)
    _ensure_munge()
    subprocess.run(["/usr/sbin/slurmctld", "-f", str(conf)], check=True, env=env)
    subprocess.run(["/usr/sbin/slurmd", "-f", str(conf)], check=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while (
            "idle"
            not in subprocess.run(
                ["sinfo", "-h", "-o", "%T"], capture_output=True, check=False, text=True, env=env
            ).stdout
        ):
            assert time.monotonic() < deadline, (root / "log/slurmctld.log").read_text()[-2000:]
            time.sleep(0.5)
        yield env
    finally:
        for pid_file in ("slurmd.pid", "slurmctld.pid"):
            path = root / pid_file
            if path.exists():
                subprocess.run(["kill", path.read_text().strip()], check=False)
        conf.unlink(missing_ok=True)


def test_tiny_pipeline_through_slurm_equals_local_run(slurm_cluster, workdir, tmp_path):  # noqa: F811
    local = tmp_path / "local"
    shutil.copytree(workdir, local)
    _snakemake(local)

    command = [
        "snakemake",
        "--workflow-profile",
        "profiles/slurm",
        "--config",
        "params=tiny.yaml",
        "--slurm-no-account",
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--jobs",
        "4",
    ]
    result = subprocess.run(
        command, cwd=workdir, env=slurm_cluster, capture_output=True, text=True, check=False
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    job_ids = re.findall(r"SLURM jobid (\d+)", log)
    # 1 target (tiny_a and tiny_b have equal target settings, so they share it), 2 decompositions,
    # 2 evaluations, 2 metric summaries, Table 1, figures
    assert len(set(job_ids)) == 9, log[-4000:]
    print("SLURM job ids:", sorted(set(job_ids), key=int))

    for experiment in ("tiny_a", "tiny_b"):
        run = f"results/runs/{experiment}/seed0"
        ours = torch.load(RunFolder(workdir / run).decomposition, weights_only=True)["state_dict"]
        theirs = torch.load(RunFolder(local / run).decomposition, weights_only=True)["state_dict"]
        assert all(torch.equal(ours[key], theirs[key]) for key in theirs)
        pd.testing.assert_frame_equal(
            pd.read_parquet(RunFolder(workdir / run).metrics),
            pd.read_parquet(RunFolder(local / run).metrics),
        )
    assert (workdir / "results/figures/tms.pdf").read_bytes().startswith(b"%PDF")
