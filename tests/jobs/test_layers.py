"""The layers' imports: reporting only renders (nothing from batch or jobs), and batch builds on
no job but the inputs' description, so no import cycle is possible between them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "retain"


def imported_modules(package: str) -> dict[str, set[str]]:
    """Every module imported anywhere in a package's files (also inside functions and
    TYPE_CHECKING blocks), by file."""
    found: dict[str, set[str]] = {}
    for path in sorted((SRC / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(SRC))] = names
    return found


@pytest.mark.parametrize("forbidden", ["retain.batch", "retain.jobs"])
def test_reporting_imports_nothing_from_batch_or_jobs(forbidden: str) -> None:
    modules = imported_modules("reporting")
    assert modules, "no module found under src/retain/reporting"
    offenders = {
        path: sorted(n for n in names if n == forbidden or n.startswith(f"{forbidden}."))
        for path, names in modules.items()
    }
    assert not {p: n for p, n in offenders.items() if n}


def test_batch_builds_on_the_inputs_description_only() -> None:
    for path, names in imported_modules("batch").items():
        jobs = {n for n in names if n == "retain.jobs" or n.startswith("retain.jobs.")}
        assert jobs <= {"retain.jobs.inputs"}, path


def test_the_inputs_description_imports_no_job_nor_engine() -> None:
    names = imported_modules("jobs")["jobs/inputs.py"]
    assert not {n for n in names if n.startswith(("retain.batch", "retain.jobs"))}
