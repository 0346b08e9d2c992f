"""Training: the RetentionModel on the history up to a day, tracked in MLflow or saved to a folder.

:class:`TrainJob` is ``retain train``; :class:`TrainingOptions` are the model's settings that the
training commands pass on (``retain demo`` trains with the defaults).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from retain.data.validation import ValidationOptions
from retain.errors import RetainInputError
from retain.jobs.inputs import Inputs

if TYPE_CHECKING:
    from retain.models.retention import RetentionModel
    from retain.tracking import TrackedTraining, TrackingSettings

__all__ = [
    "MODEL_FOLDER",
    "TrainJob",
    "TrainResult",
    "TrainingOptions",
    "train_tracked_lines",
    "training_lines",
]

MODEL_FOLDER: Final = "model"
"""The folder ``retain train --out OUT`` writes the model into: ``OUT/model``."""


class TrainingOptions(BaseModel):
    """The RetentionModel's settings a command passes on (None: chosen from the data)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    penalizer: float = Field(default=0.001, ge=0.0)
    n_cutoffs: int = Field(default=4, ge=1)
    step_days: int | None = Field(default=None, ge=1)
    min_history_days: int | None = Field(default=None, ge=0)
    customer_features: tuple[str, ...] = ()
    """Customers-file columns that become model inputs (only declared ones do)."""
    max_training_customers: int | None = Field(default=50_000, ge=50)
    """Above this many customers with a purchase, the training table is built for a seeded sample
    (RetentionModel's ``max_training_customers``); None: every customer."""

    def model(self, horizon_days: int) -> RetentionModel:
        from retain.models.retention import RetentionModel

        return RetentionModel(
            horizon_days,
            n_cutoffs=self.n_cutoffs,
            step_days=self.step_days,
            min_history_days=self.min_history_days,
            random_state=self.seed,
            penalizer_coef=self.penalizer,
            customer_features=self.customer_features,
            max_training_customers=self.max_training_customers,
        )


class TrainResult(BaseModel):
    """What a training run made: the model, where it was saved, and the MLflow run."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    model: object
    saved: Path | None = None
    run_id: str | None = None


class TrainJob(BaseModel):
    """``retain train``: train on ``inputs`` up to ``as_of``; with ``tracking``, judge the model
    on a holdout beside the baselines, log and register it in MLflow; save it to ``out/model``
    when ``out`` is given (required without tracking).

    ``engine="spark"`` builds the training tables on Spark (:mod:`retain.batch.spark_training`)
    and fits on the driver: the same model as the local engine's. It trains without tracking
    for now (the holdout and the logged data need the transactions on this machine)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    inputs: Inputs
    as_of: str
    horizon_days: int = Field(default=180, ge=1)
    out: Path | None = None
    tracking: bool = True
    training: TrainingOptions = Field(default_factory=TrainingOptions)
    engine: Literal["local", "spark"] = "local"
    spark_master: str | None = None
    """Spark master URL; default ``local[*]`` (or what spark-submit set)."""
    partitions: int | None = Field(default=None, ge=1)
    """Spark: customer hash partitions (default: two per core, at least 2, and one per 16 MiB of
    input files; see :func:`retain.batch.spark.default_partitions`)."""

    def run(self, log: Callable[[str], None]) -> TrainResult:
        """Train (and track), logging the training plan, the choices and the registration."""
        if self.engine == "spark":
            return self._on_spark(log)
        settings = None
        if self.tracking:
            from retain.tracking import TrackingSettings, check_tracking_server

            settings = TrackingSettings()
            check_tracking_server(settings)  # before the file is even read
        self._check_customer_features()
        transactions, _, customers = self.inputs.frames(log)
        started = time.perf_counter()
        if settings is None:
            return self._untracked(transactions, customers, started, log)
        if customers is not None:
            raise RetainInputError(
                "train: a customers file is read by --no-tracking training only for now "
                "(tracked training takes the transactions alone)"
            )
        result = train_tracked_lines(
            transactions,
            self.as_of,
            self.horizon_days,
            self.training,
            settings,
            str(self.inputs.transactions.path),
            log,
            columns={"transactions": dict(self.inputs.transactions.columns)},
            validation=self.inputs.validation,
        )
        log(trained_line(result.model, started))
        saved = None
        if self.out is not None:
            saved = result.model.save(self.out / MODEL_FOLDER)
            log(f"saved: {saved}")
        return TrainResult(model=result.model, saved=saved, run_id=result.run_id)

    def _untracked(
        self,
        transactions: pd.DataFrame,
        customers: pd.DataFrame | None,
        started: float,
        log: Callable[[str], None],
    ) -> TrainResult:
        if self.out is None:
            raise RetainInputError("--no-tracking needs --out: the model would be saved nowhere")
        model = self.training.model(self.horizon_days)
        model.fit(transactions, self.as_of, customers=customers)
        training_lines(model, log)
        saved = model.save(self.out / MODEL_FOLDER)
        log(trained_line(model, started) + f" -> {saved}")
        return TrainResult(model=model, saved=saved)

    def _on_spark(self, log: Callable[[str], None]) -> TrainResult:
        """The training tables built on Spark, the model fitted here and saved to ``out``."""
        if self.tracking:
            raise RetainInputError(
                "train: --engine spark trains without MLflow tracking for now (the holdout and "
                "the logged data need the transactions on this machine): use --no-tracking --out "
                "FOLDER, or the local engine for a tracked run"
            )
        if self.out is None:
            raise RetainInputError("--no-tracking needs --out: the model would be saved nowhere")
        self._check_customer_features()
        from retain.batch.spark_training import fit_on_spark

        started = time.perf_counter()
        # The events file is left out as the local engine leaves it out: the same model.
        inputs = self.inputs.model_copy(update={"events": None})
        fitted = fit_on_spark(
            self.training.model(self.horizon_days),
            inputs,
            self.as_of,
            master=self.spark_master,
            partitions=self.partitions,
            log=log,
        )
        for table, counts in fitted.reports.items():
            rejected = sum(int(n) for n in counts["quarantined"].values())
            log(
                f"{table}: {int(counts['rows_read']):,} rows read, "
                f"{int(counts['rows_valid']):,} usable, {rejected:,} quarantined"
            )
        training_lines(fitted.model, log)
        saved = fitted.model.save(self.out / MODEL_FOLDER)
        log(trained_line(fitted.model, started) + f" -> {saved}")
        return TrainResult(model=fitted.model, saved=saved)

    def _check_customer_features(self) -> None:
        declared = self.training.customer_features
        if declared and self.inputs.customers is None:
            raise RetainInputError(
                f"--customers-features {','.join(declared)} needs a customers file (--customers)"
            )


def train_tracked_lines(
    tx: pd.DataFrame,
    as_of: str,
    horizon_days: int,
    training: TrainingOptions,
    settings: TrackingSettings,
    source: str,
    log: Callable[[str], None],
    *,
    columns: dict[str, dict[str, str]] | None = None,
    validation: ValidationOptions | None = None,
) -> TrackedTraining:
    """Train with tracking and log the holdout table, what training chose and what the registry
    did."""
    from retain.evaluation import format_comparison
    from retain.tracking import train_tracked

    result = train_tracked(
        tx,
        as_of,
        horizon_days,
        settings=settings,
        model_factory=training.model,
        dataset_name=Path(source).name,
        dataset_source=source,
        columns=columns,
        validation=validation,
        progress=lambda line: log(f"  {line}"),
    )
    if result.evaluation is not None:
        holdout = result.evaluation.latest
        log(
            f"holdout: trained up to {holdout.as_of:%Y-%m-%d}, judged on the next "
            f"{holdout.horizon_days} days"
            + (
                " (shortened: not comparable with a whole horizon's)"
                if holdout.horizon_days != horizon_days
                else ""
            )
        )
        log(format_comparison(holdout.table()))
    else:
        log(
            "holdout: none (see above): no metrics beside the baselines, and the registry does "
            "not make this version the champion unless it is the first"
        )
    training_lines(result.model, log)
    uri = settings.resolved_uri()
    log(f"MLflow run {result.run_id} in experiment {settings.experiment!r} at {uri}")
    registration = result.registration
    if registration is not None:
        role = "champion" if registration.champion else "challenger"
        log(
            f"registered {registration.name} version {registration.version} as {role}: "
            f"{registration.reason}"
        )
    return result


def training_lines(model: object, log: Callable[[str], None]) -> None:
    """What training chose: the plan of labelled cutoffs (and why it differs from the defaults),
    a fallback to BTYD alone, and per output the model chosen with each candidate's metric on the
    internal validation."""
    plan = getattr(model, "plan_", None)
    predicted = getattr(model, "horizon_days", None)
    if plan is not None:
        if plan.cutoffs:
            count = len(plan.cutoffs)
            log(
                f"training plan: {count} labelled cutoff{'s' if count > 1 else ''} "
                f"({', '.join(f'{c:%Y-%m-%d}' for c in plan.cutoffs)}"
                + (f", {plan.step_days} days apart" if count > 1 else "")
                + f"), each with at least {plan.min_history_days} days of history before it"
                + (
                    f"; training horizon {plan.horizon_days} days (predicted: {predicted})"
                    if plan.horizon_days != predicted
                    else ""
                )
            )
        else:
            log(f"training plan: no labelled cutoff in {plan.history_days} days of history")
    fallback = getattr(model, "fallback_", None)
    if plan is not None:
        for note in plan.notes:
            if note != fallback:  # said once, below
                log(f"  note: {note}")
    if fallback:
        log(f"BTYD only: {fallback}; the predictions are BG/NBD + Gamma-Gamma's alone")
    choices = getattr(model, "choices_", None) or {}
    if not choices:
        return
    validation = getattr(model, "validation_", None) or {}
    if not any(getattr(choice, "scores", None) for choice in choices.values()):
        why = validation.get("reason") or "none was run"
        log(
            "outputs: "
            + ", ".join(f"{o} {getattr(c, 'name', c)}" for o, c in choices.items())
            + ("" if why == fallback else f" (no internal validation: {why})")
        )
        return
    rows = validation.get("rows")
    log(
        f"outputs chosen on the internal validation ({validation.get('split', 'unknown')}"
        + (f", {int(rows):,} customers" if rows else "")
        + "):"
    )
    names = ["lgbm", "btyd", "naive", "blend"]
    table = pd.DataFrame(
        [
            {
                "output": output,
                "metric": getattr(choice, "metric", ""),
                "chosen": getattr(choice, "describe", lambda c=choice: str(c))(),
                **{name: _metric(getattr(choice, "scores", {}).get(name)) for name in names},
            }
            for output, choice in choices.items()
        ]
    )
    log(table.to_string(index=False))


def _metric(value: float | None) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.4f}"


def trained_line(model: object, started: float) -> str:
    """How many examples from which cutoffs, and how long it took."""
    cutoffs = getattr(model, "cutoffs_", [])
    rows = getattr(model, "training_rows_", 0)
    origin = (
        f"from cutoffs {', '.join(f'{c:%Y-%m-%d}' for c in cutoffs)}"
        if cutoffs
        else "(no labelled cutoff)"
    )
    return f"trained on {rows:,} examples {origin} in {time.perf_counter() - started:.0f}s"
