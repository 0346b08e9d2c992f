"""atomic_directory: readers see the old output or the new one, never half of one, and a killed
run's leftovers are cleaned up (or the old output put back) by the next run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests.batch.conftest import dead_pid, leftovers, snapshot

from retain.batch import atomic_directory
from retain.errors import RetainInputError

OLD = {"manifest.json": b'{"old": true}', "scores.parquet": b"old scores", "sub/extra": b"old"}
NEW = {"manifest.json": b'{"new": true}', "scores.parquet": b"new scores"}


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def write(folder: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    return folder


def test_a_successful_run_creates_the_destination_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "deeper" / "out"
    with atomic_directory(out) as staging:
        assert staging.parent == out.parent
        assert staging.name.startswith(".out.partial-r")  # a random suffix
        assert list(staging.iterdir()) == []
        assert not out.exists()  # nothing is visible while the run goes on
        write(staging, NEW)
    assert snapshot(out) == NEW
    assert names(out.parent) == ["out"]


def test_a_failed_first_run_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"), atomic_directory(out) as staging:
        write(staging, NEW)
        raise RuntimeError("boom")
    assert names(tmp_path) == []


def test_a_failed_run_leaves_the_previous_output_as_it_was(tmp_path: Path) -> None:
    out = write(tmp_path / "out", OLD)
    before = snapshot(out)
    with pytest.raises(RuntimeError, match="boom"), atomic_directory(out) as staging:
        write(staging, NEW)
        assert snapshot(out) == before  # still the old output while the new one is written
        raise RuntimeError("boom")
    assert snapshot(out) == before == OLD
    assert names(tmp_path) == ["out"]


def test_a_successful_run_replaces_the_whole_previous_output(tmp_path: Path) -> None:
    out = write(tmp_path / "out", OLD)
    with atomic_directory(out) as staging:
        write(staging, NEW)
    assert snapshot(out) == NEW  # sub/extra, only in the old output, is gone
    with atomic_directory(out) as staging:
        write(staging, {"only": b"third"})
    assert snapshot(out) == {"only": b"third"}
    assert names(tmp_path) == ["out"]


def test_a_destination_that_is_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("not a folder")
    with (
        pytest.raises(RetainInputError, match="exists and is not a folder"),
        atomic_directory(out),
    ):
        pytest.fail("the body must not run")
    assert out.read_text() == "not a folder"


def test_the_temporary_folder_of_a_killed_run_is_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    stale = write(tmp_path / f".out.partial-{dead_pid()}", NEW)
    with atomic_directory(out) as staging:
        assert not stale.exists()
        write(staging, {"a": b"1"})
    assert names(tmp_path) == ["out"]


def test_the_temporary_folder_of_a_running_job_is_left_alone(tmp_path: Path) -> None:
    """Another process still writing its output: its folder is not ours to remove."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = write(tmp_path / f".out.partial-{sleeper.pid}", NEW)
        with atomic_directory(tmp_path / "out") as staging:
            write(staging, {"a": b"1"})
        assert snapshot(busy) == NEW
    finally:
        sleeper.kill()
        sleeper.wait()


def test_an_output_set_aside_by_a_killed_run_is_put_back(tmp_path: Path) -> None:
    """Killed between its two renames (old output aside, new one not yet in place): the next run
    restores the old output before anything else, so even a failure of its own keeps it."""
    out = tmp_path / "out"
    write(tmp_path / f".out.replaced-{dead_pid()}", OLD)
    with pytest.raises(RuntimeError, match="boom"), atomic_directory(out):
        assert snapshot(out) == OLD
        raise RuntimeError("boom")
    assert snapshot(out) == OLD
    assert names(tmp_path) == ["out"]


def test_an_output_set_aside_after_its_replacement_was_published_is_removed(
    tmp_path: Path,
) -> None:
    """Killed after both renames, before removing the old output: the new one stays."""
    out = write(tmp_path / "out", NEW)
    write(tmp_path / f".out.replaced-{dead_pid()}", OLD)
    with pytest.raises(RuntimeError, match="boom"), atomic_directory(out):
        raise RuntimeError("boom")
    assert snapshot(out) == NEW
    assert names(tmp_path) == ["out"]


def test_the_leftovers_of_another_destination_are_not_taken(tmp_path: Path) -> None:
    """``out.v2``'s old output, set aside by a killed run, is not ``out``'s to restore."""
    pid = dead_pid()
    other = write(tmp_path / f".out.v2.replaced-{pid}", OLD)
    with atomic_directory(tmp_path / "out") as staging:
        assert not (tmp_path / "out").exists()
        write(staging, NEW)
    assert snapshot(tmp_path / "out") == NEW
    assert snapshot(other) == OLD
    assert leftovers(tmp_path / "out.v2") == [other.name]


def test_leftovers_are_found_whatever_the_destination_is_called(tmp_path: Path) -> None:
    out = tmp_path / "out [2024-06-30]*"
    stale = write(tmp_path / f".{out.name}.partial-{dead_pid()}", NEW)
    with atomic_directory(out) as staging:
        assert not stale.exists()
        write(staging, {"a": b"1"})
    assert names(tmp_path) == [out.name]


def test_a_symlinked_destination_is_followed_and_the_link_kept(tmp_path: Path) -> None:
    """Finding 8 (issue 17): the output is published into the link's target (beside it, so the
    swap stays one rename on the target's filesystem); the link is kept, pointing at the new
    output, instead of being replaced by a folder and the target left behind."""
    target = write(tmp_path / "volume" / "scores-v1", OLD)
    link = tmp_path / "out"
    link.symlink_to(target, target_is_directory=True)
    with atomic_directory(link) as staging:
        assert staging.parent == target.parent
        write(staging, NEW)
    assert link.is_symlink()
    assert link.resolve() == target.resolve()
    assert snapshot(target) == NEW
    assert names(tmp_path) == ["out", "volume"]
    assert names(target.parent) == ["scores-v1"]


def test_a_dangling_symlinked_destination_creates_its_target(tmp_path: Path) -> None:
    target = tmp_path / "volume" / "scores-v1"
    link = tmp_path / "out"
    link.symlink_to(target, target_is_directory=True)
    with atomic_directory(link) as staging:
        write(staging, NEW)
    assert link.is_symlink()
    assert snapshot(link) == snapshot(target) == NEW


def test_a_second_publisher_of_the_same_output_is_refused_at_once(tmp_path: Path) -> None:
    """Finding 7 (issue 17): two runs on one output, here in one process (the same PID, as two
    containers sharing a volume can have): the second is refused with a message naming the output
    and its lock, and the first publishes its own files, whole."""
    out = tmp_path / "out"
    with atomic_directory(out) as first:
        write(first, OLD)
        with pytest.raises(RetainInputError) as refused, atomic_directory(out) as second:
            write(second, NEW)
        assert str(out) in str(refused.value)
        assert ".out.lock" in str(refused.value)
        assert "--wait-lock" in str(refused.value)
        assert snapshot(first) == OLD  # the refused run did not touch the first one's folder
    assert snapshot(out) == OLD
    assert names(tmp_path) == ["out"]  # no temporary folder, no lock file left


def test_a_second_publisher_waits_for_the_lock_when_asked(tmp_path: Path) -> None:
    """With a wait, the second run publishes after the first, and the output is its own whole."""
    out = tmp_path / "out"
    started, finished = threading.Event(), threading.Event()

    def first_run() -> None:
        with atomic_directory(out) as staging:
            started.set()
            write(staging, OLD)
            time.sleep(1.0)
        finished.set()

    thread = threading.Thread(target=first_run)
    thread.start()
    assert started.wait(30)
    with atomic_directory(out, wait_lock=60) as staging:
        assert finished.is_set()  # it only got here once the first run had published
        assert snapshot(out) == OLD
        write(staging, NEW)
    thread.join(30)
    assert snapshot(out) == NEW
    assert names(tmp_path) == ["out"]


def test_temporary_folders_have_random_names(tmp_path: Path) -> None:
    """Not the PID alone: two containers sharing a volume can run jobs with the same PID."""
    seen = set()
    for _ in range(2):
        with atomic_directory(tmp_path / "out") as staging:
            assert staging.name.startswith(".out.partial-")
            assert staging.name != f".out.partial-{os.getpid()}"
            seen.add(staging.name)
    assert len(seen) == 2
