"""The serving image installs what the lock says: requirements/serving.txt is uv.lock's export."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
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


def test_serving_requirements_carry_no_demo_dependencies() -> None:
    """lifetimes only finds the demo's CDNOW file: it and what it pulls in (autograd, dill) stay out
    of the serving image."""
    requirements = (ROOT / "requirements" / "serving.txt").read_text()
    pinned = {
        line.split("==")[0].strip().lower() for line in requirements.splitlines() if "==" in line
    }
    assert "bentoml" in pinned and "lightgbm" in pinned  # the file is the real export
    assert not {"lifetimes", "autograd", "dill"} & pinned


def test_core_dependencies_leave_lifetimes_to_the_demo_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(specs: list[str]) -> set[str]:
        return {re.split(r"[=<>\[ ]", spec, maxsplit=1)[0].lower() for spec in specs}

    assert "lifetimes" not in names(project["dependencies"])
    assert "jinja2" in names(project["dependencies"])  # the HTML report's templates
    extras = project["optional-dependencies"]
    assert names(extras["demo"]) == {"lifetimes"}
    assert "retain[demo]" in extras["dev"]  # the tests compare against lifetimes


def test_lock_matches_pyproject() -> None:
    """`uv lock --check --offline`: uv.lock was resolved from this pyproject.toml (no network)."""
    uv = Path(sys.executable).with_name("uv")
    checked = subprocess.run(
        [str(uv), "lock", "--check", "--offline", "--project", str(ROOT)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, "run `uv lock` and commit uv.lock:\n" + checked.stderr


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
