"""Two scoring runs on one output (finding 7 of issue 17): an exclusive lock per output folder.

One run publishes; the other is refused at once with a message naming the output and its lock
(``--wait-lock 0``, the default) or waits for it (``--wait-lock SECONDS``). Either way the output
is one run's, whole: its manifest describes the very scores file beside it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pandas as pd
from tests.batch.conftest import AS_OF, RETAIN, Fitted, clean_env, leftovers

REFUSED = 2  # RetainInputError's exit status


def start(fitted: Fitted, out: Path, cwd: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *RETAIN, "score", "-t", str(fitted.path), "--as-of", AS_OF,
            "--model", str(fitted.model_path), "--out", str(out), "--no-progress", *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=clean_env(),
    )  # fmt: skip


def assert_whole(out: Path) -> None:
    """The manifest and the scores beside it come from the same run."""
    manifest = json.loads((out / "manifest.json").read_text())
    scores = out / manifest["output"]["scores"]
    assert hashlib.sha256(scores.read_bytes()).hexdigest() == manifest["output"]["sha256"]
    assert len(pd.read_parquet(scores)) == manifest["output"]["rows"]


def test_a_run_on_an_output_another_run_holds_is_refused_at_once(
    fitted: Fitted, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    lock = tmp_path / ".out.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another run, busy publishing
        done = start(fitted, out, tmp_path)
        _, stderr = done.communicate(timeout=600)
    finally:
        os.close(fd)
    assert done.returncode == REFUSED, stderr
    assert f"error: output: {out} is being written by another run" in stderr
    assert str(lock) in stderr
    assert "--wait-lock" in stderr
    assert "Traceback" not in stderr
    assert not out.exists()
    assert leftovers(out) == []


def test_two_runs_started_together_publish_one_whole_output(fitted: Fitted, tmp_path: Path) -> None:
    """Started together with the default (no wait): one publishes; the other is refused if it
    came while the first held the lock (or publishes after it, if the first had finished)."""
    out = tmp_path / "out"
    runs = [start(fitted, out, tmp_path), start(fitted, out, tmp_path)]
    outputs = [run.communicate(timeout=600) for run in runs]
    results = [(run.returncode, *output) for run, output in zip(runs, outputs, strict=True)]
    assert any(code == 0 for code, _, _ in results), results
    for code, _, stderr in results:
        assert code in (0, REFUSED), stderr
        if code == REFUSED:
            assert "is being written by another run" in stderr
    assert_whole(out)
    assert leftovers(out) == []
    assert not (tmp_path / ".out.lock").exists()  # removed by the last run to release it


def test_a_run_with_a_wait_publishes_after_the_other(fitted: Fitted, tmp_path: Path) -> None:
    out = tmp_path / "out"
    runs = [start(fitted, out, tmp_path, "--wait-lock", "600") for _ in range(2)]
    for run in runs:
        _, stderr = run.communicate(timeout=900)
        assert run.returncode == 0, stderr
    assert_whole(out)
    assert leftovers(out) == []
    assert not (tmp_path / ".out.lock").exists()  # removed by the last run to release it
