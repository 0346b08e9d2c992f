"""A ``retain score`` process killed half-way (SIGKILL: no clean-up of its own) publishes nothing:
the output folder is absent, or the previous output is there byte for byte; the next run removes
the killed run's temporary folder and publishes a complete output."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

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
    run_cli,
    score,
    snapshot,
)

from retain.data.synthetic import simulate

N_CUSTOMERS = 30_000
CHUNK = 500  # 60 chunks: the run takes far longer to score than the test waits
START_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("many") / "transactions.parquet"
    simulate(N_CUSTOMERS, seed=4).transactions.to_parquet(path, index=False)
    return path


def kill_half_way(transactions: Path, model: Path, out: Path, log: Path) -> Path:
    """Start ``retain score``, SIGKILL it once it has written two chunks into its hidden temporary
    folder, and return that folder (left behind by the killed process)."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                *RETAIN, "score", "-t", transactions, "--as-of", AS_OF, "--model", model,
                "--out", out, "--chunk-customers", str(CHUNK), "--no-progress",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            env=clean_env(PYTHONUNBUFFERED="1"),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "scoring: 2/" not in log.read_text(errors="replace"):
            if process.poll() is not None:
                pytest.fail(f"retain score exited with {process.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no chunk scored after {START_TIMEOUT_S:.0f}s:\n{log.read_text()}")
            time.sleep(0.05)
        [partial] = out.parent.glob(f".{out.name}.partial-r*")  # a random suffix
        assert (partial / "scores.parquet").exists()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert "scored 30,000 customers" not in log.read_text()
    return partial


def test_a_first_run_killed_half_way_publishes_nothing(
    many: Path, fitted: Fitted, scored: Run, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    partial = kill_half_way(many, fitted.model_path, out, tmp_path / "killed.log")
    assert not out.exists()
    assert leftovers(out) == [partial.name]  # what the next run cleans up

    fresh = score(fitted, out)
    assert fresh.manifest.customers_scored == scored.manifest.customers_scored
    assert leftovers(out) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed.log", "out"]
    assert (out / "scores.parquet").read_bytes() == (scored.out / "scores.parquet").read_bytes()


def test_a_killed_run_leaves_the_previous_output_untouched(
    many: Path, fitted: Fitted, scored: Run, tmp_path: Path
) -> None:
    out = copy_output(scored, tmp_path / "out")
    before = snapshot(out)
    partial = kill_half_way(many, fitted.model_path, out, tmp_path / "killed.log")
    assert snapshot(out) == before
    assert leftovers(out) == [partial.name]

    result = run_cli(
        "score", "-t", fitted.path, "--as-of", AS_OF, "--model", fitted.model_path,
        "--out", out, "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert leftovers(out) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed.log", "out"]
    # The command writes what the job writes in-process, byte for byte.
    assert (out / "scores.parquet").read_bytes() == before["scores.parquet"]
    assert f"manifest: {out / 'manifest.json'}" in result.stdout
    actions = pd.read_parquet(out / "scores.parquet")["action"].value_counts()
    for action, n in actions.items():
        assert f"  {action}: {n:,} customers" in result.stdout
