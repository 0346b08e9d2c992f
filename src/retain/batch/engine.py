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

__all__ = ["Engine", "EngineRun", "EngineTask", "ScoredInputs"]


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
    keep_inputs: bool = False
    """Hand the validated frames back (:class:`ScoredInputs`), for a step after the scoring."""


@dataclass(frozen=True)
class ScoredInputs:
    """What the engine validated, for the step after the scoring (the actions' KPIs and
    customer-match audience), so that no file is read or validated twice.

    ``transactions`` holds the validated rows the KPIs read: every row (local engine), or, from
    Spark, each customer's rows on or before as_of reduced to one per (order, instant, purchase or
    refund) with the amounts summed, which gives the same KPIs (see
    :func:`retain.batch.spark.kpi_rows`); ``transactions_after_as_of`` counts the rows left out
    that way. ``customers``: the validated customers frame, when one was given.
    """

    transactions: pd.DataFrame | None = None
    transactions_after_as_of: int = 0
    customers: pd.DataFrame | None = None


@dataclass
class EngineRun:
    """What an engine reports back to the job for the manifest."""

    inputs: dict[str, InputSummary]
    totals: ChunkResult
    customers_scored: int = 0
    details: dict[str, str | int] = field(default_factory=dict)
    scored_inputs: ScoredInputs = field(default_factory=ScoredInputs)


class Engine(Protocol):
    name: str

    def score(self, task: EngineTask) -> EngineRun: ...
