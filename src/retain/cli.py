"""The ``retain`` command line: thin adapters over the jobs (:mod:`retain.jobs`).

Every command reads files through the same validation as the library (one shared set of reading
options, :func:`reading_options`), prints the validation report, and turns a user's mistake into
one clear line on stderr and exit status 2, never a traceback. Anything unexpected is one line and
exit status 1, with the traceback behind ``retain --debug``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, TextIO, TypeVar, cast

import pandas as pd
import typer

from retain.data.columns import ColumnMapping
from retain.data.validation import ValidationOptions
from retain.errors import RetainError, RetainInputError
from retain.jobs.inputs import Inputs, TableSource

__all__ = ["app", "main", "reading_options"]

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


class Duplicates(StrEnum):
    keep = "keep"
    drop = "drop"
    error = "error"


class AmbiguousTimes(StrEnum):
    earliest = "earliest"
    latest = "latest"
    refuse = "refuse"


class Period(StrEnum):
    M = "M"
    Q = "Q"
    Y = "Y"


class EngineName(StrEnum):
    local = "local"
    spark = "spark"


class BtydModel(StrEnum):
    bgnbd = "bgnbd"
    pareto = "pareto"
    mbgnbd = "mbgnbd"
    gamma_gamma = "gamma-gamma"


class TimeUnit(StrEnum):
    days = "days"
    weeks = "weeks"


@dataclass
class _State:
    """Global options (``retain --debug COMMAND``)."""

    debug: bool = False


_STATE = _State()


def _version() -> str:
    try:
        return version("retain")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"retain {_version()}")
        raise typer.Exit()


@app.callback()
def _global(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")
    ] = False,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Churn, repurchase and lifetime-value prediction for e-commerce."""
    _STATE.debug = debug


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
EventsOption = Annotated[Path | None, typer.Option(help="Events file (CSV or parquet).")]
EventsColumnsOption = Annotated[
    str | None, typer.Option(help="Column mapping of the events file, like --columns.")
]
CustomersOption = Annotated[
    Path | None, typer.Option(help="Customer records file (CSV or parquet).")
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
    Duplicates,
    typer.Option(
        help="Rows identical to an earlier row in every column of the file: keep (and count), "
        "drop, or error."
    ),
]
QuarantineOption = Annotated[
    Path | None, typer.Option(help="Write unusable rows with a reason column here (.csv/.parquet).")
]
QuarantineAllOption = Annotated[
    bool,
    typer.Option(
        help="Write every column of the file to --quarantine (default: only the columns the "
        "contract reads, the source row and the reason; e-mails and names stay out)."
    ),
]
StrictOption = Annotated[bool, typer.Option(help="Refuse the file if any row is unusable.")]
CurrencyOption = Annotated[
    str | None,
    typer.Option(
        help="The currency to keep (e.g. EUR) when the file's currency column holds several: "
        "rows in the others are set aside (without it such a file is refused)."
    ),
]
AmbiguousTimesOption = Annotated[
    AmbiguousTimes,
    typer.Option(
        help="Local times (see --timezone) that a daylight-saving change makes ambiguous or "
        "non-existent: refuse (set aside with that reason), or read as the earliest or latest "
        "instant."
    ),
]


@dataclass(frozen=True)
class Reading:
    """How a command reads its files: the options every command shares, declared once
    (:func:`reading_options` adds them to a command)."""

    columns: str | None = None
    timezone: str = "UTC"
    timestamp_format: str | None = None
    duplicates: str = "keep"
    strict: bool = False
    quarantine: Path | None = None
    quarantine_all_columns: bool = False
    ambiguous_times: str = "refuse"
    currency: str | None = None

    def options(self) -> ValidationOptions:
        return ValidationOptions(
            timezone=self.timezone,
            timestamp_format=self.timestamp_format,
            duplicates=self.duplicates,
            strict=self.strict,
            ambiguous_times=self.ambiguous_times,
            currency=self.currency,
        )

    def inputs(
        self,
        transactions: Path,
        events: Path | None = None,
        events_columns: str | None = None,
        customers: Path | None = None,
        customers_columns: str | None = None,
    ) -> Inputs:
        """The command's input files, read with these options."""
        return Inputs(
            transactions=TableSource(
                path=transactions, columns=dict(ColumnMapping.parse(self.columns))
            ),
            events=TableSource.parse(events, events_columns),
            customers=TableSource.parse(customers, customers_columns),
            validation=self.options(),
            quarantine=self.quarantine,
            quarantine_all_columns=self.quarantine_all_columns,
        )


_READING_OPTIONS: dict[str, tuple[Any, Any]] = {  # name -> (annotation, default)
    "columns": (ColumnsOption, None),
    "timezone": (TimezoneOption, "UTC"),
    "timestamp_format": (FormatOption, None),
    "duplicates": (DuplicatesOption, Duplicates.keep),
    "strict": (StrictOption, False),
    "quarantine": (QuarantineOption, None),
    "quarantine_all_columns": (QuarantineAllOption, False),
    "ambiguous_times": (AmbiguousTimesOption, AmbiguousTimes.refuse),
    "currency": (CurrencyOption, None),
}
F = TypeVar("F", bound=Callable[..., Any])


def reading_options(*names: str) -> Callable[[F], F]:
    """Add the shared reading options ``names`` (default: all of --columns, --timezone,
    --timestamp-format, --duplicates, --strict, --quarantine, --quarantine-all-columns,
    --ambiguous-times, --currency) to a
    command, which receives them as one ``reading: Reading`` argument. Options left out keep :class:`Reading`'s defaults."""
    chosen = names or tuple(_READING_OPTIONS)

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "reading"]
        added = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=_READING_OPTIONS[name][1],
                annotation=_READING_OPTIONS[name][0],
            )
            for name in chosen
        ]

        @functools.wraps(command)
        def wrapper(**values: Any) -> Any:
            given = {name: values.pop(name) for name in chosen}
            given = {k: v.value if isinstance(v, Enum) else v for k, v in given.items()}
            return command(reading=Reading(**given), **values)

        wrapper.__signature__ = signature.replace(parameters=own + added)  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


def _echo_lines(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line)


@app.command()
@reading_options()
def validate(transactions: TransactionsOption, reading: Reading) -> None:
    """Check a transactions file against the data contract and report what would be used."""
    reading.inputs(transactions).table("transactions", typer.echo)


@app.command()
@reading_options()
def features(
    transactions: TransactionsOption,
    as_of: Annotated[str, typer.Option(help="Cutoff day (UTC): features use data up to it.")],
    reading: Reading,
    out: Annotated[Path, typer.Option(help="Folder for features.parquet.")] = Path(),
    horizon_days: Annotated[
        int | None, typer.Option(help="Also add labels of this many days after the cutoff.")
    ] = None,
    events: Annotated[Path | None, typer.Option(help="Events file (optional).")] = None,
    events_columns: EventsColumnsOption = None,
    customers: Annotated[Path | None, typer.Option(help="Customers file (optional).")] = None,
    customers_columns: CustomersColumnsOption = None,
) -> None:
    """Build the feature table of every customer as of a day; write OUT/features.parquet."""
    from retain.features import build_features
    from retain.jobs.lines import segment_lines

    inputs = reading.inputs(transactions, events, events_columns, customers, customers_columns)
    tx, event_frame, customer_frame = inputs.frames(typer.echo)
    started = time.perf_counter()
    table = build_features(
        tx, as_of, events=event_frame, customers=customer_frame, horizon_days=horizon_days
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "features.parquet"
    table.to_parquet(path, index=False)
    typer.echo(
        f"features: {len(table):,} customers x {table.shape[1] - 1} columns as of {as_of} "
        f"in {time.perf_counter() - started:.1f}s -> {path}"
    )
    _echo_lines(segment_lines(table))


@app.command()
@reading_options()
def kpis(
    transactions: TransactionsOption,
    reading: Reading,
    period: Annotated[Period, typer.Option(help="Calendar period: M, Q or Y.")] = Period.M,
    active_window_days: Annotated[
        int, typer.Option(help="A customer is active with a purchase in this many days.")
    ] = 365,
    out: Annotated[
        Path | None, typer.Option(help="Folder for kpis.csv and cohorts.csv (optional).")
    ] = None,
) -> None:
    """Retention KPIs per period (CRR, churn, repeat rate, AOV, frequency) and cohort retention."""
    from retain.jobs.lines import kpi_lines, last_day
    from retain.kpis import cohort_retention, retention_kpis, summarize_kpis

    tx, _, _ = reading.inputs(transactions).frames(typer.echo)
    table = retention_kpis(tx, period=period.value, active_window_days=active_window_days)
    cohorts = cohort_retention(tx, period=period.value)
    _echo_lines(kpi_lines(summarize_kpis(tx), table, last_day(tx), active_window_days))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "kpis.csv", index=False)
        cohorts.to_csv(out / "cohorts.csv")
        typer.echo(f"written: {out / 'kpis.csv'}, {out / 'cohorts.csv'}")


@app.command()
@reading_options("columns", "timezone", "ambiguous_times", "currency", "timestamp_format")
def btyd(
    transactions: TransactionsOption,
    as_of: Annotated[str, typer.Option(help="Calibration end day (UTC).")],
    reading: Reading,
    model: Annotated[BtydModel, typer.Option(help="The BTYD model to fit.")] = BtydModel.bgnbd,
    time_unit: Annotated[
        TimeUnit, typer.Option(help="The unit of recency and T (the literature uses weeks).")
    ] = TimeUnit.days,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    penalizer: Annotated[
        float,
        typer.Option(
            help="L2 penalty on the parameters (lifetimes' penalizer_coef); 0 is the plain "
            "maximum likelihood of the papers, 0.001 steadies a fit that does not converge."
        ),
    ] = 0.0,
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

    validated = reading.inputs(transactions).table(
        "transactions", None if json_output else typer.echo
    )
    assert validated is not None
    rfm = rfm_in_unit(FeatureBuilder().build(validated.frame, as_of), time_unit.value)
    estimator: ParametricModel
    if model is BtydModel.gamma_gamma:
        estimator = GammaGammaModel(penalizer_coef=penalizer).fit(
            rfm["frequency"], rfm["monetary_value"]
        )
    else:
        transaction_model = cast(type[TransactionModel], MODELS[model.value])
        estimator = transaction_model(penalizer_coef=penalizer, time_unit=time_unit.value).fit(
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
PenalizerOption = Annotated[
    float,
    typer.Option(
        min=0.0,
        help="L2 penalty of the model's BG/NBD and Gamma-Gamma fits (lifetimes' "
        "penalizer_coef); raise it, e.g. to 0.01, when training warns that a fit did not "
        "converge. 0 is the plain maximum likelihood.",
    ),
]


def _training_customers(value: int) -> int:
    if 0 < value < 50:
        raise typer.BadParameter(f"{value} is too few to learn from; give 50 or more, or 0 for all")
    return value


MaxTrainingCustomersOption = Annotated[
    int,
    typer.Option(
        min=0,
        callback=_training_customers,
        help="Above this many customers with a purchase, train on a seeded sample of about as "
        "many (by a hash of the id; the BTYD models and segments still see everyone). 0: all.",
    ),
]
CustomersFeaturesOption = Annotated[
    str | None,
    typer.Option(
        help="Columns of the customers file that become model inputs, separated by commas "
        "(only these: a numeric column is not an input unless named here)."
    ),
]


EngineOption = Annotated[
    EngineName, typer.Option(help="local (this machine) or spark (pyspark; see --master).")
]
MasterOption = Annotated[
    str | None,
    typer.Option(help="Spark master URL (default local[*], or what spark-submit set)."),
]
PartitionsOption = Annotated[
    int | None,
    typer.Option(
        help="Spark: customer hash partitions (default: 2 per core, and one per 16 MiB of input)."
    ),
]


@app.command()
@reading_options(
    "columns", "timezone", "ambiguous_times", "currency", "timestamp_format", "duplicates"
)
def train(
    transactions: TransactionsOption,
    as_of: Annotated[str, typer.Option(help="Train on data up to this day (UTC).")],
    reading: Reading,
    horizon_days: Annotated[int, typer.Option(help="Days predicted after each cutoff.")] = 180,
    out: Annotated[
        Path | None, typer.Option(help="Also save the model as the folder OUT/model.")
    ] = None,
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
    penalizer: PenalizerOption = 0.001,
    max_training_customers: MaxTrainingCustomersOption = 50_000,
    customers: CustomersOption = None,
    customers_columns: CustomersColumnsOption = None,
    customers_features: CustomersFeaturesOption = None,
    engine: EngineOption = EngineName.local,
    master: MasterOption = None,
    partitions: PartitionsOption = None,
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
    history is too short for a whole one: tag `holdout`), and the model.

    --engine spark builds the training tables on Spark's customer partitions and fits on this
    machine (the same model as the local engine's); it needs --no-tracking --out for now."""
    from retain.jobs.train import TrainingOptions, TrainJob

    declared = tuple(n.strip() for n in (customers_features or "").split(",") if n.strip())
    job = _build(
        "train",
        TrainJob,
        inputs=reading.inputs(
            transactions, customers=customers, customers_columns=customers_columns
        ),
        as_of=as_of,
        horizon_days=horizon_days,
        out=out,
        tracking=tracking,
        training=TrainingOptions(
            seed=seed,
            penalizer=penalizer,
            n_cutoffs=cutoffs,
            step_days=step_days,
            min_history_days=min_history_days,
            customer_features=declared,
            max_training_customers=max_training_customers or None,
        ),
        engine=engine.value,
        spark_master=master,
        partitions=partitions,
    )
    job.run(typer.echo)


ModelOption = Annotated[
    str,
    typer.Option(
        help="A registered model URI (models:/retain@champion, the default) or a model "
        "folder written by `retain train --out`."
    ),
]
ProgressOption = Annotated[
    bool | None,
    typer.Option("--progress/--no-progress", help="Progress bar (default: when on a terminal)."),
]
ActionsOption = Annotated[
    bool,
    typer.Option(
        "--actions/--no-actions",
        help="Also write OUT/actions/: the action plan, audiences and report.html.",
    ),
]


@app.command()
@reading_options(
    "columns", "timezone", "ambiguous_times", "currency", "timestamp_format", "duplicates", "strict"
)
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
    reading: Reading,
    model: ModelOption = "models:/retain@champion",
    engine: EngineOption = EngineName.local,
    master: MasterOption = None,
    partitions: PartitionsOption = None,
    events: EventsOption = None,
    customers: CustomersOption = None,
    events_columns: EventsColumnsOption = None,
    customers_columns: CustomersColumnsOption = None,
    reasons: Annotated[int, typer.Option(help="Reasons per customer (0: none, faster).")] = 3,
    chunk_customers: Annotated[
        int, typer.Option(help="Local engine: customers scored at once (bounds memory).")
    ] = 200_000,
    drift_threshold: Annotated[
        float, typer.Option(help="Warn when a feature's or prediction's PSI exceeds this.")
    ] = 0.25,
    progress: ProgressOption = None,
    wait_lock: Annotated[
        float,
        typer.Option(
            help="Seconds to wait while another run writes the same --out (0: refuse at once)."
        ),
    ] = 0.0,
    with_actions: ActionsOption = True,
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
    from retain.jobs.score import ScoreJob

    job = _build(
        "score",
        ScoreJob,
        inputs=reading.inputs(transactions, events, events_columns, customers, customers_columns),
        as_of=as_of,
        out=out,
        model=model,
        engine=engine.value,
        spark_master=master,
        partitions=partitions,
        chunk_customers=chunk_customers,
        n_reasons=reasons,
        drift_threshold=drift_threshold,
        progress=progress,
        wait_lock=wait_lock,
        actions=with_actions,
        budget=budget,
        action_settings=action_settings,
    )
    manifest = job.run(log=typer.echo, warn=lambda line: typer.echo(f"warning: {line}", err=True))
    _echo_score_summary(out, manifest.model.version)


T = TypeVar("T")


def _build(command: str, kind: Callable[..., T], **values: Any) -> T:
    """A job from a command's options; a value out of range is a usage error naming the option."""
    from pydantic import ValidationError

    try:
        return kind(**values)
    except ValidationError as error:
        names = {"n_reasons": "reasons", "spark_master": "master", "actions": "actions"}
        problems = "; ".join(
            f"--{names.get(str(p['loc'][0]), str(p['loc'][0])).replace('_', '-')}: {p['msg']}"
            for p in error.errors()
        )
        raise RetainInputError(f"{command}: {problems}") from error


def _echo_score_summary(out: Path, model_version: str) -> None:
    """The customers per recommended action, and where the manifest is."""
    from retain.data.contract import MANIFEST_FILE, SCORES_FILE

    actions = pd.read_parquet(out / SCORES_FILE, columns=["action"])["action"]
    for action, n in actions.value_counts().items():
        typer.echo(f"  {action}: {n:,} customers")
    typer.echo(f"manifest: {out / MANIFEST_FILE} (model version {model_version})")


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
    from retain.jobs.action_settings import ReportSettings

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


CampaignHistoryOption = Annotated[
    Path | None,
    typer.Option(
        help="Past campaign (customer_id, treatment, purchased, revenue, features): discounts "
        "by learned uplift instead of the rule."
    ),
]
SettingsFileOption = Annotated[
    Path | None,
    typer.Option(
        help="TOML/JSON settings file with the tables [segments], [tiers], [outreach], "
        "[audience], [discounts] and [report]; --print-settings shows every key."
    ),
]
PrintSettingsOption = Annotated[
    bool,
    typer.Option(
        "--print-settings",
        is_eager=True,
        callback=_print_action_settings,
        help="Print every setting of a --settings file, with its default and meaning, as "
        "TOML (a file that reads back as the defaults), and exit.",
    ),
]


@app.command()
@reading_options(
    "columns", "timezone", "ambiguous_times", "currency", "timestamp_format", "duplicates"
)
def audiences(
    scores: Annotated[
        Path,
        typer.Option(help="A `retain score` output folder (scores.parquet and manifest.json)."),
    ],
    budget: Annotated[
        float, typer.Option(help="Discount budget: cap on the total expected discount cost.")
    ],
    reading: Reading,
    transactions: Annotated[
        Path | None,
        typer.Option(
            "--transactions", "-t", help="Transactions file: KPIs, cohorts and the CRR forecast."
        ),
    ] = None,
    customers: Annotated[
        Path | None,
        typer.Option(help="Customers file with e-mails: a customer-match audience (hashed)."),
    ] = None,
    customers_columns: CustomersColumnsOption = None,
    campaign_history: CampaignHistoryOption = None,
    settings: SettingsFileOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder, replaced as a whole (default: SCORES/actions)."),
    ] = None,
    period: Annotated[Period, typer.Option(help="KPI period: M, Q or Y.")] = Period.M,
    active_window_days: Annotated[
        int, typer.Option(help="A customer is active with a purchase in this many days.")
    ] = 365,
    print_settings: PrintSettingsOption = False,
) -> None:
    """Audiences, discounts, outreach and an HTML report from scores: OUT/actions.parquet,
    retargeting.csv (+ retargeting_customer_match.csv), discounts.csv, outreach.csv, report.html."""
    from retain.jobs import ActionsJob, TableSource

    job = _build(
        "audiences",
        ActionsJob,
        scores=scores,
        budget=budget,
        transactions=TableSource.parse(transactions, reading.columns),
        customers=TableSource.parse(customers, customers_columns),
        validation=reading.options(),
        campaign_history=campaign_history,
        settings=settings,
        out=out,
        period=period.value,
        active_window_days=active_window_days,
    )
    _echo_lines(job.run(typer.echo).lines())


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
@reading_options(
    "columns", "timezone", "ambiguous_times", "currency", "timestamp_format", "duplicates"
)
def evaluate(
    transactions: TransactionsOption,
    as_of: Annotated[
        str, typer.Option(help="Latest cutoff: train up to this day, judge the horizon after it.")
    ],
    reading: Reading,
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
) -> None:
    """Backtest: retain beside BG/NBD + Gamma-Gamma and a naive rule at one or more cutoffs."""
    from retain.jobs.evaluate import EvaluateJob

    _build(
        "evaluate",
        EvaluateJob,
        inputs=reading.inputs(transactions),
        as_of=as_of,
        horizon_days=horizon_days,
        cutoffs=cutoffs,
        step_days=step_days,
        out=out,
    ).run(typer.echo)


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
    from retain.jobs.demo import DemoJob

    DemoJob(out=out, horizon_days=horizon_days).run(
        typer.echo, warn=lambda line: typer.echo(line, err=True)
    )


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
    """Entry point: run the app; a user's mistake is one line and exit status 2, anything else
    one line and exit status 1 (the traceback with ``retain --debug``).

    Usage mistakes (an unknown option, a missing one, a value not among the choices) are reported
    by the command-line library itself, also with status 2. MLflow's INFO lines (creating tables,
    validating the input example) are kept out of the output: the commands say what happened
    themselves.
    """
    # MLflow sets its loggers' level from MLFLOW_LOGGING_LEVEL when it is imported, which the
    # commands do late; the variable reaches it then (a user's own setting wins).
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.showwarning = _show_warning
    try:
        app()
    except RetainInputError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        sys.exit(2)
    except Exception as error:  # the last line of defence: one line, no traceback
        if _STATE.debug:
            raise
        typer.secho(f"error: {_one_line(error)}", fg="red", err=True)
        typer.echo("(run `retain --debug ...` to see the traceback)", err=True)
        sys.exit(1)


def _one_line(error: Exception) -> str:
    """The error's first line, with its type unless it is one of retain's own."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, RetainError):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


if __name__ == "__main__":
    main()
