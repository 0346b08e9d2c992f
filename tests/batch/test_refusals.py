"""Bad inputs: the job refuses them with a message naming the problem, and writes nothing (the
output folder stays absent, or an earlier output stays byte for byte, and no temporary folder is
left beside it). Through the command line: status 2, one ``error:`` line, no traceback.

Every refusal is checked in this process; a few, one per stage that can refuse (the options, the
model, the data inside the temporary folder), also through real ``retain score`` processes, started
together since each is mostly interpreter and library start-up.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pytest
from tests.batch.conftest import (
    AS_OF,
    RETAIN,
    Fitted,
    Run,
    clean_env,
    copy_output,
    leftovers,
    score,
    snapshot,
)

from retain.data.validation import ValidationOptions
from retain.errors import RetainInputError

Out = Literal["absent", "previous", "unrelated", "file"]


@dataclass(frozen=True)
class Files:
    """Transactions files with one thing wrong each."""

    no_amount: Path
    day_first: Path
    one_bad_amount: Path
    duplicated: Path
    absent: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, fitted: Fitted) -> Files:
    folder = tmp_path_factory.mktemp("bad_inputs")
    tx = fitted.transactions
    files = Files(
        no_amount=folder / "no_amount.parquet",
        day_first=folder / "day_first.csv",
        one_bad_amount=folder / "one_bad_amount.csv",
        duplicated=folder / "duplicated.parquet",
        absent=folder / "absent.parquet",
    )
    tx.drop(columns=["amount"]).to_parquet(files.no_amount, index=False)
    # Day-first timestamps for 3 rows in 4: not ISO 8601, so more than half are unparseable.
    stamps = tx["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S").where(tx.index % 4 == 0)
    stamps = stamps.fillna(tx["timestamp"].dt.strftime("%d/%m/%Y %H:%M"))
    tx.assign(timestamp=stamps).to_csv(files.day_first, index=False)
    bad = tx.astype({"amount": "object"})
    bad.loc[17, "amount"] = "twelve"
    bad.to_csv(files.one_bad_amount, index=False)
    pd.concat([tx, tx.iloc[[5, 6]]]).to_parquet(files.duplicated, index=False)
    return files


@dataclass(frozen=True)
class Refusal:
    settings: Callable[[Files], dict[str, Any]]
    """Overrides of the job's settings (transactions, as_of, ...)."""
    words: list[str]
    """What the message must say."""
    out: Out = "previous"
    """The output folder before the run: absent, an earlier output, someone else's folder, a file."""


N_ROWS = "15,308"
REFUSALS = {
    "missing file": Refusal(
        lambda f: {"transactions": f.absent},
        ["transactions: no file at", "absent.parquet"],
        out="absent",
    ),
    "missing column": Refusal(
        lambda f: {"transactions": f.no_amount},
        ["transactions: required column 'amount' is missing", f"({N_ROWS} rows)"],
    ),
    "unparseable as_of": Refusal(
        lambda f: {"as_of": "someday"}, ["as-of date", "'someday'"], out="absent"
    ),
    "as_of before any purchase": Refusal(
        lambda f: {"as_of": "2021-06-30"},
        ["no customer has a purchase on or before 2021-06-30", "(3,000 customers in the input)"],
    ),
    "unrelated folder": Refusal(
        lambda f: {}, ["holds other files and no manifest.json"], out="unrelated"
    ),
    "output is a file": Refusal(lambda f: {}, ["is a file; give a folder"], out="file"),
    "mostly unparseable timestamps": Refusal(
        lambda f: {"transactions": f.day_first},
        [
            "transactions: column 'timestamp'",
            f"11,481 of {N_ROWS} rows (75%) have unparseable timestamp",
            "--timestamp-format",
        ],
    ),
    "strict and a bad row": Refusal(
        lambda f: {
            "transactions": f.one_bad_amount,
            "validation": ValidationOptions(strict=True),
        },
        ["transactions: 1 row with non-numeric amount", "strict mode"],
    ),
    "duplicates refused": Refusal(
        lambda f: {
            "transactions": f.duplicated,
            "validation": ValidationOptions(duplicates="error"),
        },
        [
            "rows identical to an earlier row in all",
            "2 rows; remove them",
            "--duplicates keep|drop",
        ],
    ),
}


def prepare(out: Path, kind: Out, scored: Run) -> dict[str, bytes] | None:
    """The output folder (or file) as the case wants it; its content, or None if absent."""
    if kind == "absent":
        return None
    if kind == "previous":
        copy_output(scored, out)
    elif kind == "unrelated":
        out.mkdir()
        (out / "notes.txt").write_text("someone's work")
    else:
        out.write_text("a file")
        return {"": out.read_bytes()}
    return snapshot(out)


def check_nothing_written(out: Path, before: dict[str, bytes] | None) -> None:
    if before is None:
        assert not out.exists()
    elif out.is_file():
        assert {"": out.read_bytes()} == before
    else:
        assert snapshot(out) == before
    assert leftovers(out) == []


@pytest.mark.parametrize("name", list(REFUSALS))
def test_the_job_refuses_a_bad_input_and_writes_nothing(
    name: str, files: Files, fitted: Fitted, scored: Run, tmp_path: Path
) -> None:
    refusal = REFUSALS[name]
    out = tmp_path / "out"
    before = prepare(out, refusal.out, scored)
    with pytest.raises(RetainInputError) as refused:
        score(fitted, out, **refusal.settings(files))
    message = str(refused.value)
    for word in refusal.words:
        assert word in message, message
    assert "\n" not in message
    check_nothing_written(out, before)


def test_an_input_inside_the_output_folder_is_refused(
    fitted: Fitted, scored: Run, tmp_path: Path
) -> None:
    """The job replaces the whole folder: a successful run would delete its own inputs."""
    out = copy_output(scored, tmp_path / "out")
    shutil.copy(fitted.path, out / "transactions.parquet")
    shutil.copytree(fitted.model_path, out / "model")
    before = snapshot(out)
    for settings in (
        {"transactions": out / "transactions.parquet"},
        {"transactions": tmp_path / "elsewhere" / ".." / "out" / "transactions.parquet"},
        {"model": str(out / "model")},
    ):
        with pytest.raises(RetainInputError, match=r"is inside .*which is replaced as a whole"):
            score(fitted, out, **settings)
    check_nothing_written(out, before)


# -- through the command line -----------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    args: list[str | Path]
    words: list[str]
    out: Out


@dataclass(frozen=True)
class Finished:
    command: Command
    out: Path
    before: dict[str, bytes] | None
    returncode: int
    stdout: str
    stderr: str


def commands(files: Files, fitted: Fitted, folder: Path) -> dict[str, Command]:
    common = ["--as-of", AS_OF, "--no-progress"]
    missing_model = folder / "nowhere" / "model"
    return {
        "an option out of range": Command(
            ["-t", fitted.path, *common, "--model", fitted.model_path, "--chunk-customers", "0"],
            ["score: --chunk-customers", "greater than or equal to 1"],
            "absent",
        ),
        "a model that does not exist": Command(
            ["-t", fitted.path, *common, "--model", missing_model],
            ["no saved model at", str(missing_model)],
            "previous",
        ),
        "a missing column": Command(
            ["-t", files.no_amount, *common, "--model", fitted.model_path],
            ["required column 'amount' is missing", "--columns amount=<your column>"],
            "previous",
        ),
    }


@pytest.fixture(scope="module")
def finished(
    tmp_path_factory: pytest.TempPathFactory, files: Files, fitted: Fitted, scored: Run
) -> dict[str, Finished]:
    """Every command run at once, each from its own folder (MLflow, asked for a model path that
    does not exist, must not leave a store anywhere)."""
    folder = tmp_path_factory.mktemp("commands")
    running = {}
    for i, (name, command) in enumerate(commands(files, fitted, folder).items()):
        cwd = folder / f"case{i}"
        cwd.mkdir()
        out = cwd / "out"
        before = prepare(out, command.out, scored)
        process = subprocess.Popen(
            [*RETAIN, "score", *map(str, command.args), "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=clean_env(),
        )
        running[name] = (command, out, before, process)
    results = {}
    for name, (command, out, before, process) in running.items():
        stdout, stderr = process.communicate(timeout=600)
        results[name] = Finished(command, out, before, process.returncode, stdout, stderr)
    return results


@pytest.mark.parametrize(
    "name", ["an option out of range", "a model that does not exist", "a missing column"]
)
def test_the_command_refuses_with_one_line_and_status_2(
    finished: dict[str, Finished], name: str
) -> None:
    result = finished[name]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.count("error:") == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    for word in result.command.words:
        assert word in last, last
    check_nothing_written(result.out, result.before)
    assert sorted(p.name for p in result.out.parent.iterdir()) == (
        [] if result.before is None else ["out"]
    )
