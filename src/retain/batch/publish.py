"""Publishing an output folder atomically: readers see the old folder or the new one, never half.

The job writes into a hidden temporary folder beside the destination (same filesystem, so a rename
is atomic), then swaps it into place. On Linux the swap is one ``renameat2(RENAME_EXCHANGE)`` call:
the destination never disappears, not even for a moment. Elsewhere the old folder is renamed aside
first; a kill between the two renames leaves the old output intact under its aside name, and the
next run puts it back. A crash or a kill before the swap leaves only the hidden temporary folder,
which the next run removes. A symlinked destination is followed (see :func:`atomic_directory`).

Two runs on one destination are kept apart by an exclusive lock (``flock``) on a sibling file,
``.<name>.lock``, held from before the clean-up of leftovers until the swap is done: the second run
waits for it up to ``wait_lock`` seconds, or is refused. Temporary folders carry a random suffix
(two containers sharing a volume can run jobs under the same PID), and every file and folder is
written to disk (``fsync``) before the swap, so the published output is whole after a power cut.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import glob
import os
import secrets
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from retain.errors import RetainInputError

__all__ = ["atomic_directory", "check_replaceable", "output_lock"]

_PARTIAL = ".partial-"
_ASIDE = ".replaced-"
_LOCK = ".lock"
_LOCK_POLL_S = 0.1
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def check_replaceable(
    out: Path, marker: str, what: str, inputs: Iterable[Path | str | None] = ()
) -> None:
    """Refuse an output folder that :func:`atomic_directory` must not replace: a file, a folder
    holding other files and no ``marker`` (the file every output of ``what`` writes), or a
    folder holding one of the ``inputs`` (registered model URIs are not files and are skipped)."""
    if out.exists() and not out.is_dir():
        raise RetainInputError(f"output: {out} is a file; give a folder")
    for path in inputs:
        if path is None or str(path).startswith(("models:/", "runs:/")):
            continue
        if Path(path).resolve().is_relative_to(out.resolve()):
            raise RetainInputError(
                f"output: {path} is inside {out}, which is replaced as a whole; "
                "give another output folder"
            )
    if out.is_dir() and any(out.iterdir()) and not (out / marker).exists():
        raise RetainInputError(
            f"output: {out} holds other files and no {marker}; it is not an earlier output of "
            f"{what}, and the whole folder would be replaced: give a new or empty folder"
        )


@contextlib.contextmanager
def atomic_directory(destination: str | Path, wait_lock: float = 0.0) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces ``destination`` in one step.

    On an exception the temporary folder is removed and ``destination`` is left as it was. The
    destination's lock (:func:`output_lock`, waiting up to ``wait_lock`` seconds) is held
    throughout.

    A symbolic link (also one whose target does not exist yet) is followed: the output is
    published into its target, staged beside the target so that the swap is one rename on the
    target's filesystem, and the link is kept. Replacing the link itself would turn it into a
    folder and leave the output its users read through other paths behind.
    """
    destination = Path(os.path.realpath(Path(destination).absolute()))
    if destination.exists() and not destination.is_dir():
        raise RetainInputError(f"output: {destination} exists and is not a folder")
    parent = destination.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RetainInputError(f"output: cannot create {parent}: {error.strerror}") from error
    with output_lock(destination, wait_lock):
        _recover(destination)
        temporary = parent / f".{destination.name}{_PARTIAL}r{secrets.token_hex(8)}"
        temporary.mkdir()
        try:
            yield temporary
            _sync_tree(temporary)
            _swap_into_place(temporary, destination)
            _sync(parent)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)


@contextlib.contextmanager
def output_lock(destination: Path, wait_seconds: float = 0.0) -> Iterator[Path]:
    """Hold the exclusive lock of ``destination`` (``flock`` on ``.<name>.lock`` beside it);
    yield the lock file's path.

    Another holder (a run in another process, or another thread of this one) makes it wait up to
    ``wait_seconds``, then refuse with a message naming the output and the lock. The lock file is
    removed on release; a lock taken on a file that was removed meanwhile is taken again on the
    new one, so two runs never hold locks on two different files.
    """
    path = destination.parent / f".{destination.name}{_LOCK}"
    deadline = time.monotonic() + wait_seconds
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                waited = f"after waiting {wait_seconds:g}s" if wait_seconds else "at once"
                raise RetainInputError(
                    f"output: {destination} is being written by another run (it holds the lock "
                    f"{path}); refused {waited}: wait for it, or give --wait-lock SECONDS"
                ) from None
            time.sleep(_LOCK_POLL_S)
            continue
        if _same_file(fd, path):
            break
        os.close(fd)  # the holder before us removed this file: lock the current one
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        named = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _sync_tree(folder: Path) -> None:
    """Write every file and folder under ``folder`` (and itself) to disk."""
    for root, _, files in os.walk(folder):
        for name in files:
            _sync(Path(root) / name)
        _sync(Path(root))


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_into_place(temporary: Path, destination: Path) -> None:
    if not destination.exists():
        temporary.rename(destination)
        return
    if _exchange(temporary, destination):
        return  # `temporary` now holds the old output; the caller removes it
    aside = destination.parent / f".{destination.name}{_ASIDE}r{secrets.token_hex(8)}"
    destination.rename(aside)
    temporary.rename(destination)
    shutil.rmtree(aside, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return done == 0


def _recover(destination: Path) -> None:
    """Clean up after a run that was killed (called with the destination's lock held): remove
    temporary folders, and put back an old output that was renamed aside but never replaced.

    Under the lock no other run of this version is writing; a folder named by a live PID alone
    belongs to a run of an earlier version, which did not lock, and is left alone."""
    partial, aside = (f".{destination.name}{suffix[:-1]}" for suffix in (_PARTIAL, _ASIDE))
    for leftover in destination.parent.glob(f".{glob.escape(destination.name)}.*-*"):
        kind, _, suffix = leftover.name.rpartition("-")
        # Exactly ours: `.out.v2.replaced-<suffix>` is another destination's old output.
        if kind not in (partial, aside):
            continue
        random = suffix.startswith("r") and len(suffix) == 17
        if not random and (not suffix.isdigit() or _alive(int(suffix))):
            continue
        if kind == aside and not destination.exists():
            leftover.rename(destination)
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftover from an earlier job in this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
