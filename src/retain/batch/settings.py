"""What one scoring run is asked to do: inputs, as-of date, model, output folder and engine."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from retain.data.validation import ValidationOptions

__all__ = ["BatchSettings"]


class BatchSettings(BaseModel):
    """The arguments of ``retain score``, as one typed object (the CLI builds it)."""

    transactions: Path
    as_of: str
    out: Path
    model: str = "models:/retain@champion"
    """A registered model URI, or a model.pkl saved by ``retain train --out``."""
    events: Path | None = None
    customers: Path | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    """Contract column -> the file's column, for transactions."""
    event_columns: dict[str, str] = Field(default_factory=dict)
    customer_columns: dict[str, str] = Field(default_factory=dict)
    validation: ValidationOptions = Field(default_factory=ValidationOptions)
    engine: Literal["local", "spark"] = "local"
    spark_master: str | None = None
    """Spark master URL; default ``local[*]`` (or what spark-submit set)."""
    partitions: int | None = None
    """Spark: customer hash partitions (default: two per core, at least 2)."""
    chunk_customers: int = Field(default=200_000, ge=1)
    """Local engine: customers scored at once; bounds the memory of features and scoring."""
    n_reasons: int = Field(default=3, ge=0, le=10)
    drift_threshold: float = Field(default=0.25, gt=0)
    """PSI above which a feature or prediction counts as drifted (and the job warns)."""
    progress: bool | None = None
    """A progress bar; default: when stderr is a terminal."""
    actions: bool = True
    """After scoring, also write the action plan, the audiences and the HTML report into
    ``out/actions`` (:mod:`retain.reporting.outputs`), published with the scores."""
    budget: float | None = Field(default=None, ge=0)
    """Cap on the discounts' expected cost; default: the discount settings' budget (no cap)."""
    action_settings: Path | None = None
    """TOML or JSON file of the action plan's settings (and a ``[discounts]`` table)."""
