"""Telling the operator how far the job is: a progress bar on a terminal, log lines otherwise, and
the wall time of each stage for the manifest."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

__all__ = ["Progress", "StageTimer"]


class StageTimer:
    """Seconds spent in each named stage; a stage entered again adds up."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started = time.perf_counter()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def exclude(self, outer: str, inner: str) -> None:
        """Take a stage that ran inside another out of the other's time (writes inside scoring)."""
        if outer in self.seconds and inner in self.seconds:
            self.seconds[outer] -= self.seconds[inner]

    def summary(self) -> dict[str, float]:
        total = time.perf_counter() - self._started
        return {**{k: round(v, 3) for k, v in self.seconds.items()}, "total": round(total, 3)}


class Progress:
    """Steps done out of a known number: a rich bar when ``enabled`` (default: stderr is a
    terminal), else one log line per step, which is what a scheduler's log wants."""

    def __init__(
        self, total: int, what: str, *, enabled: bool | None, log: Callable[[str], None]
    ) -> None:
        self.total = total
        self.what = what
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.log = log
        self.done = 0
        self._bar: RichProgress | None = None

    def __enter__(self) -> Self:
        if self.enabled:
            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=self.total, detail="")
        return self

    def advance(self, detail: str) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, detail=detail)
        else:
            self.log(f"{self.what}: {self.done}/{self.total} done, {detail}")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
