"""The serving image installs what the lock says: requirements/serving.txt is uv.lock's export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_serving_requirements_match_the_lock() -> None:
    uv = Path(sys.executable).with_name("uv")
    exported = subprocess.run(
        [str(uv), "export", "--frozen", "--extra", "serving", "--no-hashes", "--no-emit-project",
         "--no-dev", "--quiet", "--project", str(ROOT)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    committed = (ROOT / "requirements" / "serving.txt").read_text()

    def pins(text: str) -> list[str]:
        return sorted(line.split(";")[0].strip() for line in text.splitlines() if "==" in line)

    assert pins(exported) == pins(committed), "run `make requirements` and commit the result"


def test_bentofile_names_the_service_and_the_locked_requirements() -> None:
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    assert bentofile["service"] == "retain.serving.service:RetentionService"
    assert (ROOT / bentofile["python"]["requirements_txt"]).exists()
