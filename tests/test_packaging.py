"""The serving image installs what the lock says: requirements/serving.txt is uv.lock's export."""

from __future__ import annotations

import os
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


def test_bentoml_build_from_the_root_packages_the_service(tmp_path: Path) -> None:
    """`bentoml build` from the project root: the Bento holds the package, the service's two
    endpoints and exactly the locked serving requirements."""
    bentoml = Path(sys.executable).with_name("bentoml")
    built = subprocess.run(
        [str(bentoml), "build", "--output", "tag"],
        cwd=ROOT, env={**os.environ, "BENTOML_HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (bento,) = [p for p in (tmp_path / "bentos" / "retain").iterdir() if p.name != "latest"]
    manifest = yaml.safe_load((bento / "bento.yaml").read_text())
    assert manifest["service"] == "retain.serving.service:RetentionService"
    # Workers are counted where the Bento runs, not fixed at the build machine's CPU count.
    assert manifest["services"][0]["config"]["workers"] == "cpu_count"
    assert (bento / "src" / "src" / "retain" / "serving" / "service.py").exists()
    routes = yaml.safe_load((bento / "apis" / "openapi.yaml").read_text())["paths"]
    assert {"/predict", "/predict_features"} <= set(routes)

    def pins(text: str) -> set[str]:
        return {line.split(";")[0].strip() for line in text.splitlines() if "==" in line}

    # BentoML appends its own pin (the same version) to the file it copies.
    packaged = (bento / "env" / "python" / "requirements.txt").read_text()
    assert pins(packaged) == pins((ROOT / "requirements" / "serving.txt").read_text())
