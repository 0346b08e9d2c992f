"""What the job hands an engine, what an engine hands back, and what an engine is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd

from retain.batch.chunks import ChunkResult
from retain.batch.manifest import InputSummary
from retain.batch.progress import StageTimer
from retain.batch.settings import BatchSettings
from retain.models.retention import RetentionModel

__all__ = ["Engine", "EngineRun", "EngineTask"]


@dataclass
class EngineTask:
    """One scoring run for an engine: write ``destination`` (``scores.parquet``), time the
    stages on ``timer``, add the validation counts to ``inputs``, report progress to ``log``."""

    settings: BatchSettings
    model: RetentionModel
    as_of: pd.Timestamp
    destination: Path
    timer: StageTimer
    inputs: dict[str, InputSummary]
    log: Callable[[str], None]


@dataclass
class EngineRun:
    """What an engine reports back to the job for the manifest."""

    inputs: dict[str, InputSummary]
    totals: ChunkResult
    customers_scored: int = 0
    details: dict[str, str | int] = field(default_factory=dict)


class Engine(Protocol):
    name: str

    def score(self, task: EngineTask) -> EngineRun: ...
