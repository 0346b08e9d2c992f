"""The ``retain`` command line.

Every command reads files through the same validation as the library, prints the validation report,
and turns a user's mistake into one clear line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO, cast

import pandas as pd
import typer

from retain.data.columns import ColumnMapping
from retain.data.contract import CUSTOMERS, EVENTS, TRANSACTIONS
from retain.data.datasets import load_cdnow
from retain.data.io import load_table
from retain.data.validation import ValidatedTable, ValidationOptions, write_quarantine
from retain.errors import RetainError

if TYPE_CHECKING:
    from retain.models.retention import RetentionModel
    from retain.tracking import TrackedTraining, TrackingSettings

__all__ = ["app", "main"]

app = typer.Typer(
    name="retain",
    help="Churn, repurchase and lifetime-value prediction for e-commerce.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Click's plain help, not rich's tables: at 80 columns rich gives option help a column of about
    # 23 characters and cuts any longer word with an ellipsis (a column mapping example, a model
    # URI); click wraps at word boundaries in a column twice as wide, and shows [brackets] as typed.
    rich_markup_mode=None,
)

TransactionsOption = Annotated[
    Path, typer.Option("--transactions", "-t", help="Transactions file (CSV or parquet).")
]
# The example's pairs are separated by ", " so that help wraps between them (the parser allows it).
COLUMNS_EXAMPLE = (
    'customer_id="Customer ID", timestamp=InvoiceDate, amount=Amount, order_id=Invoice'
)
ColumnsOption = Annotated[
    str | None,
    typer.Option(
        help=f"Your file's column names, as contract=yours pairs separated by commas, e.g. "
        f"{COLUMNS_EXAMPLE}."
    ),
]
EventsColumnsOption = Annotated[
    str | None, typer.Option(help="Column mapping of the events file, like --columns.")
]
CustomersColumnsOption = Annotated[
    str | None, typer.Option(help="Column mapping of the customers file, like --columns.")
]
TimezoneOption = Annotated[
    str, typer.Option(help="Time zone of timestamps that carry none (all end up in UTC).")
]
FormatOption = Annotated[
    str | None, typer.Option(help="strftime format of timestamps (default: ISO 8601).")
]
DuplicatesOption = Annotated[
    str,
    typer.Option(
        help="Rows identical to an earlier row in every column of the file: keep (and count), "
        "drop, or error."
    ),
]
QuarantineOption = Annotated[
    Path | None, typer.Option(help="Write unusable rows with a reason column here (.csv/.parquet).")
]
StrictOption = Annotated[bool, typer.Option(help="Refuse the file if any row is unusable.")]


def _options(
    timezone: str, timestamp_format: str | None, duplicates: str, strict: bool
) -> ValidationOptions:
    if duplicates not in ("keep", "drop", "error"):
        raise RetainError(f"--duplicates takes keep, drop or error, not {duplicates!r}")
    return ValidationOptions(
        timezone=timezone,
        timestamp_format=timestamp_format,
        duplicates=duplicates,
        strict=strict,
    )


def _load_transactions(
    path: Path,
    columns: str | None,
    options: ValidationOptions,
    quarantine: Path | None,
) -> ValidatedTable:
    validated = load_table(path, TRANSACTIONS, ColumnMapping.parse(columns), options)
    _echo_lines(validated.report.lines())
    if quarantine is not None:
        where = write_quarantine(validated, quarantine)
        typer.echo(f"  quarantine: {len(validated.quarantine):,} rows written to {where}")
    return validated


def _echo_lines(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line)


@app.command()
def validate(
    transactions: TransactionsOption,
    columns: ColumnsOption = None,
    timezone: TimezoneOption = "UTC",
    timestamp_format: FormatOption = None,
    duplicates: DuplicatesOption = "keep",
    strict: StrictOption = False,
    quarantine: QuarantineOption = None,
) -> None:
    """Check a transactions file against the data contract and report what would be used."""
    _load_transactions(
        transactions,
        columns,
        _options(timezone, timestamp_format, duplicates, strict),
        quarantine,
    )


@app.command()
def features(
    transactions: TransactionsOption,
    as_of: Annotated[str, typer.Option(help="Cutoff day (UTC): features use data up to it.")],
    out: Annotated[Path, typer.Option(help="Folder for features.parquet.")] = Path(),
    horizon_days: Annotated[
        int | None, typer.Option(help="Also add labels of this many days after the cutoff.")
    ] = None,
    events: Annotated[Path | None, typer.Option(help="Events file (optional).")] = None,
    events_columns: EventsColumnsOption = None,
    customers: Annotated[Path | None, typer.Option(help="Customers file (optional).")] = None,
    customers_columns: CustomersColumnsOption = None,
    columns: ColumnsOption = None,
    timezone: TimezoneOption = "UTC",
    timestamp_format: FormatOption = None,
    duplicates: DuplicatesOption = "keep",
    strict: StrictOption = False,
    quarantine: QuarantineOption = None,
) -> None:
    """Build the feature table of every customer as of a day; write OUT/features.parquet."""
    from retain.features import build_features

    options = _options(timezone, timestamp_format, duplicates, strict)
    tx = _load_transactions(transactions, columns, options, quarantine)
    event_table = customer_table = None
    if events is not None:
        event_table = load_table(events, EVENTS, ColumnMapping.parse(events_columns), options)
        _echo_lines(event_table.report.lines())
    if customers is not None:
        customer_table = load_table(
            customers, CUSTOMERS, ColumnMapping.parse(customers_columns), options
        )
        _echo_lines(customer_table.report.lines())
    started = time.perf_counter()
    table = build_features(
        tx.frame,
        as_of,
        events=event_table.frame if event_table else None,
        customers=customer_table.frame if customer_table else None,
        horizon_days=horizon_days,
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "features.parquet"
    table.to_parquet(path, index=False)
    typer.echo(
        f"features: {len(table):,} customers x {table.shape[1] - 1} columns as of {as_of} "
        f"in {time.perf_counter() - started:.1f}s -> {path}"
    )
    _echo_segments(table)


@app.command()
def kpis(
    transactions: TransactionsOption,
    period: Annotated[str, typer.Option(help="Calendar period: M, Q or Y.")] = "M",
    active_window_days: Annotated[
        int, typer.Option(help="A customer is active with a purchase in this many days.")
    ] = 365,
    out: Annotated[
        Path | None, typer.Option(help="Folder for kpis.csv and cohorts.csv (optional).")
    ] = None,
    columns: ColumnsOption = None,
    timezone: TimezoneOption = "UTC",
    timestamp_format: FormatOption = None,
    duplicates: DuplicatesOption = "keep",
    strict: StrictOption = False,
    quarantine: QuarantineOption = None,
) -> None:
    """Retention KPIs per period (CRR, churn, repeat rate, AOV, frequency) and cohort retention."""
    from retain.kpis import cohort_retention, retention_kpis, summarize_kpis

    options = _options(timezone, timestamp_format, duplicates, strict)
    tx = _load_transactions(transactions, columns, options, quarantine).frame
    table = retention_kpis(tx, period=period, active_window_days=active_window_days)
    cohorts = cohort_retention(tx, period=period)
    _echo_kpis(summarize_kpis(tx), table, _last_day(tx), active_window_days)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "kpis.csv", index=False)
        cohorts.to_csv(out / "cohorts.csv")
        typer.echo(f"written: {out / 'kpis.csv'}, {out / 'cohorts.csv'}")


@app.command()
def btyd(
    transactions: TransactionsOption,
    as_of: Annotated[str, typer.Option(help="Calibration end day (UTC).")],
    model: Annotated[str, typer.Option(help="bgnbd, pareto, mbgnbd or gamma-gamma.")] = "bgnbd",
    time_unit: Annotated[
        str, typer.Option(help="days or weeks (the literature uses weeks).")
    ] = "days",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    penalizer: Annotated[
        float,
        typer.Option(
            help="L2 penalty on the parameters (lifetimes' penalizer_coef); 0 is the plain "
            "maximum likelihood of the papers, 0.001 steadies a fit that does not converge."
        ),
    ] = 0.0,
    columns: ColumnsOption = None,
    timezone: TimezoneOption = "UTC",
    timestamp_format: FormatOption = None,
) -> None:
    """Fit one classic BTYD model on the RFM summary as of a day; print its parameters and
    whether the fit converged."""
    import json

    from retain.features import FeatureBuilder
    from retain.models.btyd import (
        MODELS,
        GammaGammaModel,
        ParametricModel,
        TransactionModel,
        rfm_in_unit,
    )

    if model not in MODELS:
        raise RetainError(f"--model takes {', '.join(MODELS)}, not {model!r}")
    if time_unit not in ("days", "weeks"):
        raise RetainError(f"--time-unit takes days or weeks, not {time_unit!r}")
    options = _options(timezone, timestamp_format, "keep", False)
    validated = load_table(transactions, TRANSACTIONS, ColumnMapping.parse(columns), options)
    if not json_output:
        _echo_lines(validated.report.lines())
    rfm = rfm_in_unit(FeatureBuilder().build(validated.frame, as_of), time_unit)  # type: ignore[arg-type]
    estimator: ParametricModel
    if model == "gamma-gamma":
        estimator = GammaGammaModel(penalizer_coef=penalizer).fit(
            rfm["frequency"], rfm["monetary_value"]
        )
    else:
        transaction_model = cast(type[TransactionModel], MODELS[model])
        estimator = transaction_model(penalizer_coef=penalizer, time_unit=time_unit).fit(
            rfm["frequency"], rfm["recency"], rfm["T"]
        )
    printed = estimator.to_dict() | {"penalizer_coef": penalizer, "converged": estimator.converged_}
    typer.echo(json.dumps(printed, indent=None if json_output else 2))


CutoffsOption = Annotated[
    int,
    typer.Option(
        "--cutoffs",
        min=1,
        help="Training cutoffs (rolling origins) at most; fewer when the history holds fewer.",
    ),
]
TrainStepOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Days between training cutoffs (default: half the training horizon).",
    ),
]
MinHistoryOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="Days of history a training cutoff needs before it (default: chosen from the "
        "data: 90 when the history allows, down to 28).",
    ),
]


@app.command()
def train(
    transactions: TransactionsOption,
    as_of: Annotated[str, typer.Option(help="Train on data up to this day (UTC).")],
    horizon_days: Annotated[int, typer.Option(help="Days predicted after each cutoff.")] = 180,
    out: Annotated[Path | None, typer.Option(help="Also save the model as OUT/model.pkl.")] = None,
    tracking: Annotated[
        bool,
        typer.Option(
            help="Log the run to MLflow (MLFLOW_TRACKING_URI, default sqlite:///mlflow.db), "
            "judge it on a holdout beside the baselines and register it as `retain`."
        ),
    ] = True,
    cutoffs: CutoffsOption = 4,
    step_days: TrainStepOption = None,
    min_history_days: MinHistoryOption = None,
    seed: Annotated[int, typer.Option(help="Seed of every LightGBM model.")] = 0,
    penalizer: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="L2 penalty of the model's BG/NBD and Gamma-Gamma fits (lifetimes' "
            "penalizer_coef); raise it, e.g. to 0.01, when training warns that a fit did not "
            "converge. 0 is the plain maximum likelihood.",
        ),
    ] = 0.001,
    columns: ColumnsOption = None,
    timezone: TimezoneOption = "UTC",
    timestamp_format: FormatOption = None,
    duplicates: DuplicatesOption = "keep",
) -> None:
    """Train the RetentionModel on the history up to a day; track and register it in MLflow.

    Training learns from labelled cutoffs inside the history: up to --cutoffs of them, the last a
    horizon before --as-of. Left out, --step-days and --min-history-days are chosen from the
    data, and so is a shorter training horizon when the history is short; with no room for a
    labelled cutoff the model is BG/NBD + Gamma-Gamma's alone, with a warning. Each output
    (churn, 30-day repurchase, timing, purchases, CLV) is made by LightGBM, BTYD, the naive rule
    or a blend, whichever does best on an internal validation; the command prints the choice.

    The MLflow run records the parameters (the penalizer among them), the column mapping and how
    the file was read (time zone, timestamp format, duplicates), the data, the training plan and
    choices, the holdout metrics beside the baselines (on a shortened holdout, or none, when the
    history is too short for a whole one: tag `holdout`), and the model."""
    options = _options(timezone, timestamp_format, duplicates, False)
    if tracking:
        from retain.tracking import TrackingSettings, check_tracking_server

        settings = TrackingSettings()
        check_tracking_server(settings)  # before the file is even read
    tx = _load_transactions(transactions, columns, options, None).frame
    started = time.perf_counter()
    training = _Training(seed, penalizer, cutoffs, step_days, min_history_days)
    if not tracking:
        if out is None:
            raise RetainError("--no-tracking needs --out: the model would be saved nowhere")
        model = training.model(horizon_days)
        model.fit(tx, as_of)
        _echo_training(model)
        typer.echo(_trained(model, started) + f" -> {model.save(out / 'model.pkl')}")
        return
    result = _train_tracked(
        tx,
        as_of,
        horizon_days,
        training,
        settings,
        str(transactions),
        columns={"transactions": dict(ColumnMapping.parse(columns))},
        validation=options,
    )
    typer.echo(_trained(result.model, started))
    if out is not None:
        typer.echo(f"saved: {result.model.save(out / 'model.pkl')}")


@dataclass(frozen=True)
class _Training:
    """The RetentionModel's settings a command passes on (None: chosen from the data)."""

    seed: int = 0
    penalizer: float = 0.001
    n_cutoffs: int = 4
    step_days: int | None = None
    min_history_days: int | None = None

    def model(self, horizon_days: int) -> RetentionModel:
        from retain.models.retention import RetentionModel

        return RetentionModel(
            horizon_days,
            n_cutoffs=self.n_cutoffs,
            step_days=self.step_days,
            min_history_days=self.min_history_days,
            random_state=self.seed,
            penalizer_coef=self.penalizer,
        )


def _train_tracked(
    tx: pd.DataFrame,
    as_of: str,
    horizon_days: int,
    training: _Training,
    settings: TrackingSettings,
    source: str,
    *,
    columns: dict[str, dict[str, str]] | None = None,
    validation: ValidationOptions | None = None,
) -> TrackedTraining:
    """Train with tracking and print the holdout table, what training chose and what the registry
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
        progress=lambda line: typer.echo(f"  {line}"),
    )
    if result.evaluation is not None:
        holdout = result.evaluation.latest
        typer.echo(
            f"holdout: trained up to {holdout.as_of:%Y-%m-%d}, judged on the next "
            f"{holdout.horizon_days} days"
            + (
                " (shortened: not comparable with a whole horizon's)"
                if holdout.horizon_days != horizon_days
                else ""
            )
        )
        typer.echo(format_comparison(holdout.table()))
    else:
        typer.echo(
            "holdout: none (see above): no metrics beside the baselines, and the registry does "
            "not make this version the champion unless it is the first"
        )
    _echo_training(result.model)
    uri = settings.resolved_uri()
    typer.echo(f"MLflow run {result.run_id} in experiment {settings.experiment!r} at {uri}")
    registration = result.registration
    if registration is not None:
        role = "champion" if registration.champion else "challenger"
        typer.echo(
            f"registered {registration.name} version {registration.version} as {role}: "
            f"{registration.reason}"
        )
    return result


def _echo_training(model: object) -> None:
    """What training chose: the plan of labelled cutoffs (and why it differs from the defaults),
    a fallback to BTYD alone, and per output the model chosen with each candidate's metric on the
    internal validation."""
    plan = getattr(model, "plan_", None)
    predicted = getattr(model, "horizon_days", None)
    if plan is not None:
        if plan.cutoffs:
            count = len(plan.cutoffs)
            typer.echo(
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
            typer.echo(f"training plan: no labelled cutoff in {plan.history_days} days of history")
    fallback = getattr(model, "fallback_", None)
    if plan is not None:
        for note in plan.notes:
            if note != fallback:  # said once, below
                typer.echo(f"  note: {note}")
    if fallback:
        typer.echo(f"BTYD only: {fallback}; the predictions are BG/NBD + Gamma-Gamma's alone")
    choices = getattr(model, "choices_", None) or {}
    if not choices:
        return
    validation = getattr(model, "validation_", None) or {}
    if not any(getattr(choice, "scores", None) for choice in choices.values()):
        why = validation.get("reason") or "none was run"
        typer.echo(
            "outputs: "
            + ", ".join(f"{o} {getattr(c, 'name', c)}" for o, c in choices.items())
            + ("" if why == fallback else f" (no internal validation: {why})")
        )
        return
    rows = validation.get("rows")
    typer.echo(
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
                **{name: _score(getattr(choice, "scores", {}).get(name)) for name in names},
            }
            for output, choice in choices.items()
        ]
    )
    typer.echo(table.to_string(index=False))


def _score(value: float | None) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.4f}"


def _trained(model: object, started: float) -> str:
    cutoffs = getattr(model, "cutoffs_", [])
    rows = getattr(model, "training_rows_", 0)
    origin = (
        f"from cutoffs {', '.join(f'{c:%Y-%m-%d}' for c in cutoffs)}"
        if cutoffs
        else "(no labelled cutoff)"
    )
    return f"trained on {rows:,} examples {origin} in {time.perf_counter() - started:.0f}s"


@app.command()
def score(
    transactions: TransactionsOption,
    as_of: Annotated[str, typer.Option(help="Score as of this day (UTC).")],
    out: Annotated[
        Path,
        typer.Option(
            help="Output folder: scores.parquet and manifest.json, replaced as a whole and only "
            "when the run succeeds."
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            help="A registered model URI (models:/retain@champion, the default) or a model.pkl "
            "saved by `retain train --out`."
        ),
    ] = "models:/retain@champion",
    engine: Annotated[
        str, typer.Option(help="local (this machine) or spark (pyspark; see --master).")
    ] = "local",
    master: Annotated[
        str | None,
        typer.Option(help="Spark master URL (default local[*], or what spark-submit set)."),
    ] = None,
    partitions: Annotated[
        int | None, typer.Option(help="Spark: customer hash partitions (default 2 per core).")
    ] = None,
    events: Annotated[Path | None, typer.Option(help="Events file (CSV or parquet).")] = None,
    customers: Annotated[
        Path | None, typer.Option(help="Customer records file (CSV or parquet).")
    ] = None,
    columns: ColumnsOption = None,
    events_columns: EventsColumnsOption = None,
    customers_columns: CustomersColumnsOption = None,
    timezone: TimezoneOption = "UTC",
    timestamp_format: FormatOption = None,
    duplicates: DuplicatesOption = "keep",
    strict: StrictOption = False,
    reasons: Annotated[int, typer.Option(help="Reasons per customer (0: none, faster).")] = 3,
    chunk_customers: Annotated[
        int, typer.Option(help="Local engine: customers scored at once (bounds memory).")
    ] = 200_000,
    drift_threshold: Annotated[
        float, typer.Option(help="Warn when a feature's or prediction's PSI exceeds this.")
    ] = 0.25,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress", help="Progress bar (default: when on a terminal)."
        ),
    ] = None,
    with_actions: Annotated[
        bool,
        typer.Option(
            "--actions/--no-actions",
            help="Also write OUT/actions/: the action plan, audiences and report.html.",
        ),
    ] = True,
    budget: Annotated[
        float | None,
        typer.Option(help="Discount budget (total expected discount cost; default: no cap)."),
    ] = None,
    action_settings: Annotated[
        Path | None,
        typer.Option(help="TOML/JSON settings of the actions (segments, tiers, [discounts]...)."),
    ] = None,
) -> None:
    """Score every customer as of a day: OUT/scores.parquet (scores and recommended action),
    OUT/manifest.json (model version, inputs and their hashes, rejected rows, drift, timings) and,
    unless --no-actions, OUT/actions/ (audiences, discounts, outreach and report.html)."""
    from pydantic import ValidationError

    from retain.batch import BatchSettings, ScoringJob

    if engine not in ("local", "spark"):
        raise RetainError(f"--engine takes local or spark, not {engine!r}")
    try:
        settings = BatchSettings(
            transactions=transactions,
            as_of=as_of,
            out=out,
            model=model,
            events=events,
            customers=customers,
            columns=dict(ColumnMapping.parse(columns)),
            event_columns=dict(ColumnMapping.parse(events_columns)),
            customer_columns=dict(ColumnMapping.parse(customers_columns)),
            validation=_options(timezone, timestamp_format, duplicates, strict),
            engine=engine,
            spark_master=master,
            partitions=partitions,
            chunk_customers=chunk_customers,
            n_reasons=reasons,
            drift_threshold=drift_threshold,
            progress=progress,
            actions=with_actions,
            budget=budget,
            action_settings=action_settings,
        )
    except ValidationError as error:
        problems = "; ".join(
            f"--{str(p['loc'][0]).replace('_', '-')}: {p['msg']}" for p in error.errors()
        )
        raise RetainError(f"score: {problems}") from error
    manifest = ScoringJob(
        settings, log=typer.echo, warn=lambda line: typer.echo(f"warning: {line}", err=True)
    ).run()
    actions = pd.read_parquet(out / "scores.parquet", columns=["action"])["action"]
    for action, n in actions.value_counts().items():
        typer.echo(f"  {action}: {n:,} customers")
    typer.echo(f"manifest: {out / 'manifest.json'} (model version {manifest.model.version})")


def _print_action_settings(value: bool) -> None:
    """``retain audiences --print-settings``: every table of the settings file at its defaults
    (not the ``RETAIN_*`` variables: the file's own defaults), then exit."""
    if not value:
        return
    from retain.actions.discounts import DiscountSettings
    from retain.actions.settings import (
        AudienceSettings,
        OutreachSettings,
        SegmentRules,
        TierSettings,
        settings_toml,
    )
    from retain.reporting.outputs import ReportSettings

    header = "\n".join(
        [
            "Settings of `retain audiences --settings FILE` (`retain score --action-settings`),",
            "at their defaults. A file needs only the keys it changes; a key left out keeps its",
            "default, or the value of RETAIN_ACTIONS_<TABLE>__<KEY> (RETAIN_REPORT_<KEY> for",
            "[report]) when that variable is set.",
        ]
    )
    tables = {
        "segments": SegmentRules(),
        "tiers": TierSettings(),
        "outreach": OutreachSettings(),
        "audience": AudienceSettings(),
        "discounts": DiscountSettings(),
        "report": ReportSettings.model_construct(),  # its defaults, not the environment's
    }
    typer.echo(settings_toml(tables, header), nl=False)
    raise typer.Exit()


@app.command()
def audiences(
    scores: Annotated[
        Path,
        typer.Option(help="A `retain score` output folder (scores.parquet and manifest.json)."),
    ],
    budget: Annotated[
        float, typer.Option(help="Discount budget: cap on the total expected discount cost.")
    ],
    transactions: Annotated[
        Path | None,
        typer.Option(
            "--transactions", "-t", help="Transactions file: KPIs, cohorts and the CRR forecast."
        ),
    ] = None,
    columns: ColumnsOption = None,
    customers: Annotated[
        Path | None,
        typer.Option(help="Customers file with e-mails: a customer-match audience (hashed)."),
    ] = None,
    customers_columns: Annotated[
        str | None, typer.Option(help="Column mapping of the customers file, like --columns.")
    ] = None,
    campaign_history: Annotated[
        Path | None,
        typer.Option(
            help="Past campaign (customer_id, treatment, purchased, revenue, features): discounts "
            "by learned uplift instead of the rule."
        ),
    ] = None,
    settings: Annotated[
        Path | None,
        typer.Option(
            help="TOML/JSON settings file with the tables [segments], [tiers], [outreach], "
            "[audience], [discounts] and [report]; --print-settings shows every key."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder, replaced as a whole (default: SCORES/actions)."),
    ] = None,
    period: Annotated[str, typer.Option(help="KPI period: M, Q or Y.")] = "M",
    active_window_days: Annotated[
        int, typer.Option(help="A customer is active with a purchase in this many days.")
    ] = 365,
    timezone: TimezoneOption = "UTC",
    timestamp_format: FormatOption = None,
    duplicates: DuplicatesOption = "keep",
    print_settings: Annotated[
        bool,
        typer.Option(
            "--print-settings",
            is_eager=True,
            callback=_print_action_settings,
            help="Print every setting of a --settings file, with its default and meaning, as "
            "TOML (a file that reads back as the defaults), and exit.",
        ),
    ] = False,
) -> None:
    """Audiences, discounts, outreach and an HTML report from scores: OUT/actions.parquet,
    retargeting.csv (+ retargeting_customer_match.csv), discounts.csv, outreach.csv, report.html."""
    from retain.reporting.outputs import (
        ACTIONS_FOLDER,
        load_action_settings,
        load_report_settings,
        publish_actions,
        read_campaign_history,
        read_scores,
    )

    if budget < 0 or budget != budget:
        raise RetainError(f"--budget must be a number >= 0, not {budget}")
    if period not in ("M", "Q", "Y"):
        raise RetainError(f"--period takes M, Q or Y, not {period!r}")
    destination = out if out is not None else scores / ACTIONS_FOLDER
    table, manifest = read_scores(scores)
    action_settings, discount_settings = load_action_settings(settings)
    options = _options(timezone, timestamp_format, duplicates, strict=False)
    tx = None
    if transactions is not None:
        tx = _load_transactions(transactions, columns, options, None).frame
    customer_table = None
    if customers is not None:
        loaded = load_table(customers, CUSTOMERS, ColumnMapping.parse(customers_columns), options)
        _echo_lines(loaded.report.lines())
        if "email" not in loaded.frame:
            raise RetainError(
                f"customers: {customers} has no email column (map it with --customers-columns "
                'email="E-mail")'
            )
        customer_table = loaded.frame
    history = read_campaign_history(campaign_history) if campaign_history is not None else None
    run = publish_actions(
        destination,
        table,
        manifest,
        inputs=(scores / "scores.parquet", transactions, customers, campaign_history, settings),
        budget=budget,
        transactions=tx,
        customers=customer_table,
        campaign_history=history,
        action_settings=action_settings,
        discount_settings=discount_settings,
        period=period,
        active_window_days=active_window_days,
        report_settings=load_report_settings(settings),
        log=typer.echo,
    )
    _echo_lines(run.lines())


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="The version of `retain` to make the champion.")],
) -> None:
    """Make a registered version the champion (a person's decision, whatever its metrics)."""
    from retain.tracking import TrackingSettings
    from retain.tracking import promote as promote_version

    settings = TrackingSettings()
    registration = promote_version(version, settings)
    typer.echo(
        f"{registration.name} version {registration.version} is now the champion "
        f"({settings.champion_uri()} at {settings.resolved_uri()})"
    )


@app.command()
def evaluate(
    transactions: TransactionsOption,
    as_of: Annotated[
        str, typer.Option(help="Latest cutoff: train up to this day, judge the horizon after it.")
    ],
    horizon_days: Annotated[int, typer.Option(help="Days judged after each cutoff.")] = 180,
    cutoffs: Annotated[
        int, typer.Option(help="Backtest cutoffs: 1 is the single holdout at --as-of.")
    ] = 1,
    step_days: Annotated[
        int | None,
        typer.Option(
            help="Days between cutoffs (default: the horizon, so horizons do not overlap)."
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Folder for the report: report.md, metrics.csv, summary.csv, PNGs.")
    ] = Path("evaluation"),
    columns: ColumnsOption = None,
    timezone: TimezoneOption = "UTC",
    timestamp_format: FormatOption = None,
    duplicates: DuplicatesOption = "keep",
) -> None:
    """Backtest: retain beside BG/NBD + Gamma-Gamma and a naive rule at one or more cutoffs."""
    from retain.evaluation import (
        REPORT_PLOTS,
        backtest,
        format_comparison,
        format_summary,
        write_report,
    )

    options = _options(timezone, timestamp_format, duplicates, False)
    tx = _load_transactions(transactions, columns, options, None).frame
    started = time.perf_counter()
    result = backtest(
        tx,
        horizon_days=horizon_days,
        n_cutoffs=cutoffs,
        step_days=step_days,
        last_cutoff=as_of,
    )
    for i, holdout in enumerate(result.holdouts, start=1):
        frame = holdout.frame
        typer.echo(
            f"holdout {i} of {len(result.holdouts)}: trained up to {holdout.as_of:%Y-%m-%d}, "
            f"judged on the next {result.horizon_days} days ({len(frame):,} customers, "
            f"{frame['churned'].mean():.1%} churned)"
        )
        typer.echo(format_comparison(holdout.table()))
    typer.echo(format_summary(result.summary, len(result.holdouts)))
    report = write_report(result, out)
    typer.echo(
        f"report: {report} (with metrics.csv, summary.csv and {len(REPORT_PLOTS)} plots) in "
        f"{time.perf_counter() - started:.0f}s"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
) -> None:
    """Start the HTTP service (BentoML) with the project's configuration (RETAIN_SERVE_*,
    MLFLOW_TRACKING_URI): POST /predict, /predict_features; /livez, /readyz, /metrics."""
    import os
    import shutil

    bentoml = shutil.which("bentoml") or str(Path(sys.executable).with_name("bentoml"))
    if not Path(bentoml).exists():
        raise RetainError("bentoml is not installed: install the serving extra (retain[serving])")
    service = "retain.serving.service:RetentionService"
    os.execv(bentoml, [bentoml, "serve", service, "--host", host, "--port", str(port)])


@app.command()
def export(
    model: Annotated[
        str, typer.Option(help="The model to export (default: models:/retain@champion).")
    ] = "models:/retain@champion",
    out: Annotated[
        Path, typer.Option(help="Folder the service reads (RETAIN_SERVE_MODEL_DIR).")
    ] = Path("models"),
) -> None:
    """Write a registered model to a folder, for a service that runs without the registry."""
    from retain.serving.scoring import export_model

    path = export_model(model, out)
    typer.echo(f"exported {model} -> {path}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's outputs.")] = Path("retain-demo"),
    horizon_days: Annotated[int, typer.Option(help="Days predicted.")] = 181,
) -> None:
    """The main job on bundled real data (CDNOW): validate, features, KPIs, train with tracking,
    register the champion, score every customer."""
    from retain.batch import BatchSettings, ScoringJob
    from retain.features import build_features
    from retain.kpis import retention_kpis, summarize_kpis
    from retain.tracking import TrackingSettings, check_tracking_server

    started = time.perf_counter()
    settings = TrackingSettings()
    check_tracking_server(settings)
    typer.echo("[1/5] loading CDNOW (bundled with lifetimes) and validating it")
    data = load_cdnow("master")
    _echo_lines(data.lines())
    tx = data.transactions.frame
    as_of = tx["timestamp"].max().strftime("%Y-%m-%d")
    typer.echo(f"[2/5] building features as of {as_of}")
    table = build_features(tx, as_of)
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "features.parquet", index=False)
    typer.echo(
        f"  {len(table):,} customers x {table.shape[1] - 1} columns -> {out}/features.parquet"
    )
    _echo_segments(table)
    typer.echo("[3/5] retention KPIs by quarter (active = a purchase in the last 365 days)")
    kpi_table = retention_kpis(tx, period="Q")
    kpi_table.to_csv(out / "kpis.csv", index=False)
    # The demo has no window option; the kpis command has.
    _echo_kpis(
        summarize_kpis(tx),
        kpi_table,
        _last_day(tx),
        window_option="window (retain kpis --active-window-days)",
    )
    typer.echo(
        f"[4/5] training with tracking: holdout against the baselines, then the final model "
        f"on everything up to {as_of} ({horizon_days}-day horizon)"
    )
    result = _train_tracked(
        tx, as_of, horizon_days, _Training(), settings, "lifetimes:CDNOW_master.txt"
    )
    typer.echo(f"[5/5] the nightly scoring job with {settings.champion_uri()}")
    tx.to_parquet(out / "transactions.parquet", index=False)
    manifest = ScoringJob(
        BatchSettings(
            transactions=out / "transactions.parquet",
            as_of=as_of,
            out=out / "scores",
            model=settings.champion_uri(),
        ),
        log=lambda line: typer.echo(f"  {line}"),
        warn=lambda line: typer.echo(f"  warning: {line}", err=True),
    ).run()
    scores = pd.read_parquet(out / "scores" / "scores.parquet")
    typer.echo(
        f"  {len(scores):,} customers; mean churn probability "
        f"{scores['churn_probability'].mean():.3f}, expected purchases "
        f"{scores['expected_purchases'].sum():,.0f}, CLV {scores['clv'].sum():,.0f} "
        f"in the next {horizon_days} days (model version {manifest.model.version})"
    )
    typer.echo(f"done in {time.perf_counter() - started:.0f}s. Next:")
    typer.echo(f"  mlflow ui --backend-store-uri {settings.resolved_uri()}   # run {result.run_id}")
    typer.echo(
        f"  {out}/scores/ (scores.parquet, manifest.json), {out}/features.parquet, {out}/kpis.csv"
    )
    typer.echo(f"  {out}/scores/actions/report.html   # audiences, discounts, outreach, KPIs")


def _echo_segments(table: pd.DataFrame) -> None:
    if "segment" not in table:
        return
    sizes = table["segment"].value_counts().rename("customers").to_frame()
    sizes["share"] = (sizes["customers"] / sizes["customers"].sum()).map("{:.1%}".format)
    sizes["mean spend"] = (
        table.groupby("segment", observed=False)["spend_total"].mean().round(2).reindex(sizes.index)
    )
    typer.echo("segments:")
    typer.echo(sizes.to_string())


def _echo_kpis(
    summary: dict[str, float],
    table: pd.DataFrame,
    last_day: pd.Timestamp,
    window_days: int = 365,
    window_option: str = "--active-window-days",
) -> None:
    """Whole-history figures and the KPI table, with what they count: why the customers here can
    be fewer than validation's, what "active" means, which periods' CRR cannot be measured yet
    (the first ``window_days`` of the data) and a last period the data do not cover to its end.
    ``window_option``: how the command that prints it sets the active window."""
    from retain.kpis import KPI_COLUMNS

    figures = {k: v for k, v in summary.items() if k != "customers_without_purchase"}
    typer.echo(
        "whole history: "
        + ", ".join(
            f"{k.replace('_', ' ')} {v:,.2f}" if isinstance(v, float) else f"{k} {v:,}"
            for k, v in figures.items()
        )
    )
    refunds_only = int(summary.get("customers_without_purchase", 0))
    if refunds_only:
        typer.echo(
            f"  customers: {int(summary['customers']):,} with a purchase; {refunds_only:,} more "
            f"(of the {int(summary['customers']) + refunds_only:,} that validation counts) have "
            "only refund rows (negative amounts), so no order and no KPI counts them"
        )
    typer.echo(
        f"active: a purchase in the {window_days} days before an instant. B = customers_start "
        "(active at the period start), E = customers_end (active at its end), N = new_customers "
        "(first purchase in the period); crr = (E - N) / B and churn_rate = share of B not "
        "active at the end, in %; revenue (net of refunds) and average_order_value in the "
        "amount column's currency"
    )
    # The terminal shows the counts and rates; the period bounds and frequency stay in the CSV.
    hidden = {"period_start", "period_end", "purchase_frequency", "window_covered"}
    shown = table[[c for c in KPI_COLUMNS if c not in hidden and c in table]].round(1)
    uncovered = ~table["window_covered"].to_numpy(dtype=bool)
    if uncovered.any():
        shown = shown.astype({"crr": "object", "churn_rate": "object"})
        shown.loc[uncovered, ["crr", "churn_rate"]] = "n/m"
    typer.echo(shown.to_string(index=False))
    if uncovered.any():
        periods = table.loc[uncovered, "period"]
        typer.echo(
            f"note: crr and churn_rate of {periods.iloc[0]}"
            + (f" to {periods.iloc[-1]}" if len(periods) > 1 else "")
            + f" are not measurable (n/m): the data do not reach back {window_days} days before "
            "the period start, so B misses the customers who bought before the data start, some "
            f"of them count as new, and while the data are less than {window_days} days old "
            "nobody can have churned (CRR reads 100, churn 0). kpis.csv keeps the formula's "
            f"values, with window_covered false; a longer history or a shorter {window_option} "
            "measures them."
        )
    last = table.iloc[-1]
    data_end = last_day + pd.Timedelta(days=1)
    if last["period_end"] > data_end:
        typer.echo(
            f"note: {last['period']} is partial: the data end on {last_day:%Y-%m-%d}, the period "
            f"on {last['period_end'] - pd.Timedelta(days=1):%Y-%m-%d}. Its orders and revenue "
            "cover only part of it, and its customers_end, crr and churn_rate count the days "
            "after the data as days without a purchase."
        )


def _last_day(transactions: pd.DataFrame) -> pd.Timestamp:
    """The UTC day of the last transaction, as a zoned midnight (the KPI periods' time zone)."""
    return transactions["timestamp"].max().tz_convert("UTC").normalize()


_PACKAGE = Path(__file__).resolve().parent
_default_showwarning = warnings.showwarning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """retain's own warnings as one line, like its errors; other libraries' as Python shows them
    (their file and line help whoever reports them upstream)."""
    if Path(filename).resolve().is_relative_to(_PACKAGE):
        typer.secho(f"warning: {message}", fg="yellow", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


def main() -> None:
    """Entry point: run the app, turning retain's own errors into one line and exit status 2.

    Usage mistakes (an unknown option, a missing one) are reported by the command-line library
    itself, also with status 2. MLflow's INFO lines (creating tables, validating the input
    example) are kept out of the output: the commands say what happened themselves.
    """
    # MLflow sets its loggers' level from MLFLOW_LOGGING_LEVEL when it is imported, which the
    # commands do late; the variable reaches it then (a user's own setting wins).
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.showwarning = _show_warning
    try:
        app()
    except RetainError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
