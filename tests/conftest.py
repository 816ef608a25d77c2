from pathlib import Path

import pytest
import yaml

TINY_TMS = {
    "name": "tms_tiny",
    "target": {"family": "tms", "n_features": 5, "d_hidden": 2, "steps": 300, "batch_size": 256},
    "decomposition": {
        "C": 8,
        "d_gate": 4,
        "importance_minimality_coeff": 3e-3,
        "pnorm": 1,
        "steps": 30,
        "batch_size": 64,
        "log_every": 10,
    },
    "evaluation": {"n_random": 200},
}


@pytest.fixture
def tiny_config_path(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_TMS))
    return path
