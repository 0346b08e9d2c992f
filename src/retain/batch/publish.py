"""Publishing an output folder atomically: readers see the old folder or the new one, never half.

The job writes into a hidden temporary folder beside the destination (same filesystem, so a rename
is atomic), then swaps it into place. On Linux the swap is one ``renameat2(RENAME_EXCHANGE)`` call:
the destination never disappears, not even for a moment. Elsewhere the old folder is renamed aside
first; a kill between the two renames leaves the old output intact under its aside name, and the
next run puts it back. A crash or a kill before the swap leaves only the hidden temporary folder,
which the next run removes. A symlinked destination is followed (see :func:`atomic_directory`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from retain.errors import RetainInputError

__all__ = ["atomic_directory", "check_replaceable"]

_PARTIAL = ".partial-"
_ASIDE = ".replaced-"
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
def atomic_directory(destination: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces ``destination`` in one step.

    On an exception the temporary folder is removed and ``destination`` is left as it was.

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
    _recover(destination)
    temporary = parent / f".{destination.name}{_PARTIAL}{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    try:
        yield temporary
        _swap_into_place(temporary, destination)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _swap_into_place(temporary: Path, destination: Path) -> None:
    if not destination.exists():
        temporary.rename(destination)
        return
    if _exchange(temporary, destination):
        return  # `temporary` now holds the old output; the caller removes it
    aside = destination.parent / f".{destination.name}{_ASIDE}{os.getpid()}"
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
    """Clean up after a run that was killed: remove temporary folders of processes that are gone,
    and put back an old output that was renamed aside but never replaced."""
    partial, aside = (f".{destination.name}{suffix[:-1]}" for suffix in (_PARTIAL, _ASIDE))
    for leftover in destination.parent.glob(f".{glob.escape(destination.name)}.*-*"):
        kind, _, pid = leftover.name.rpartition("-")
        # Exactly ours: `.out.v2.replaced-<pid>` is another destination's old output.
        if kind not in (partial, aside) or not pid.isdigit() or _alive(int(pid)):
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
