"""The README is for users: short, with no per-occasion sections and no paths outside the repo."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).parents[1]


def test_the_readme_is_short_and_names_nothing_outside_the_repository():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 250
    assert not re.search(r"\(session \d+\)|\.\./shared/", readme)


def test_no_tracked_file_is_a_gpu_host_batch_script():
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [f for f in files if re.search(r"gpu_(lease|batch|wheels|jobs)", Path(f).name)]


def test_no_tracked_file_points_at_a_specification_the_repository_does_not_ship():
    found = subprocess.run(
        ["git", "grep", "-n", "-E", r"[A-Z]+_SPEC\.md|REFERENCE_NOTES|section 7|\(spec [0-9]", "--"]
        + [":!tests/test_docs.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert found == "", f"see docs/method.md instead:\n{found}"
