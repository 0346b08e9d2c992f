"""What one scoring run is asked to do: inputs, as-of date, model, output folder and engine.

Frozen and strict like every settings object of retain: a misspelt or unknown key is a pydantic
``ValidationError`` naming it (``extra_forbidden``), never a setting silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from retain.data.validation import ValidationOptions
from retain.jobs.inputs import Inputs, TableSource

__all__ = ["BatchSettings", "EngineName", "ScoringOptions"]

EngineName = Literal["local", "spark"]
"""Where the scoring runs: this machine, or Spark (pyspark)."""


class ScoringOptions(BaseModel):
    """How to score, whatever the inputs: the part of ``retain score``'s arguments that
    :class:`BatchSettings` and :class:`retain.jobs.ScoreJob` share."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: str
    out: Path
    model: str = "models:/retain@champion"
    """A registered model URI, or a model folder written by ``retain train --out``."""
    engine: EngineName = "local"
    spark_master: str | None = None
    """Spark master URL; default ``local[*]`` (or what spark-submit set)."""
    partitions: int | None = Field(default=None, ge=1)
    """Spark: customer hash partitions (default: two per core, at least 2, and one per 16 MiB of
    input files; see :func:`retain.batch.spark.default_partitions`)."""
    chunk_customers: int = Field(default=200_000, ge=1)
    """Local engine: customers scored at once; bounds the memory of features and scoring."""
    n_reasons: int = Field(default=3, ge=0, le=10)
    drift_threshold: float = Field(default=0.25, gt=0)
    """PSI above which a feature or prediction counts as drifted (and the job warns)."""
    progress: bool | None = None
    """A progress bar; default: when stderr is a terminal."""
    wait_lock: float = Field(default=0.0, ge=0)
    """Seconds to wait while another run holds ``out``'s lock; 0: refuse at once."""


class BatchSettings(ScoringOptions):
    """The scoring job's settings as one typed object: the files and how to score them.

    (The actions written beside the scores are the job's next step: :class:`retain.jobs.ScoreJob`.)
    """

    transactions: Path
    events: Path | None = None
    customers: Path | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    """Contract column -> the file's column, for transactions."""
    event_columns: dict[str, str] = Field(default_factory=dict)
    customer_columns: dict[str, str] = Field(default_factory=dict)
    validation: ValidationOptions = Field(default_factory=ValidationOptions)

    @classmethod
    def of(cls, inputs: Inputs, options: ScoringOptions) -> BatchSettings:
        """The settings of scoring ``inputs`` with ``options``."""
        return cls(
            transactions=inputs.transactions.path,
            events=inputs.events.path if inputs.events else None,
            customers=inputs.customers.path if inputs.customers else None,
            columns=inputs.transactions.columns,
            event_columns=inputs.events.columns if inputs.events else {},
            customer_columns=inputs.customers.columns if inputs.customers else {},
            validation=inputs.validation,
            **{name: getattr(options, name) for name in ScoringOptions.model_fields},
        )

    def inputs(self) -> Inputs:
        """The input files as :class:`~retain.jobs.inputs.Inputs` (loaded on demand)."""
        return Inputs(
            transactions=TableSource(path=self.transactions, columns=self.columns),
            events=TableSource(path=self.events, columns=self.event_columns)
            if self.events is not None
            else None,
            customers=TableSource(path=self.customers, columns=self.customer_columns)
            if self.customers is not None
            else None,
            validation=self.validation,
        )
