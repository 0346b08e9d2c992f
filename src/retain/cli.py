"""The ``retain`` command line.

Every command reads files through the same validation as the library, prints the validation report,
and turns a user's mistake into one clear line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, cast

import pandas as pd
import typer

from retain.data.columns import ColumnMapping
from retain.data.contract import CUSTOMERS, EVENTS, TRANSACTIONS
from retain.data.datasets import load_cdnow
from retain.data.io import load_table
from retain.data.validation import ValidatedTable, ValidationOptions, write_quarantine
from retain.errors import RetainError

__all__ = ["app", "main"]

app = typer.Typer(
    name="retain",
    help="Churn, repurchase and lifetime-value prediction for e-commerce.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

TransactionsOption = Annotated[
    Path, typer.Option("--transactions", "-t", help="Transactions file (CSV or parquet).")
]
ColumnsOption = Annotated[
    str | None,
    typer.Option(
        help='Map contract columns to yours: customer_id="Customer ID",timestamp=InvoiceDate,...'
    ),
]
TimezoneOption = Annotated[
    str, typer.Option(help="Time zone of timestamps that carry none (all end up in UTC).")
]
FormatOption = Annotated[
    str | None, typer.Option(help="strftime format of timestamps (default: ISO 8601).")
]
DuplicatesOption = Annotated[
    str, typer.Option(help="Exact duplicate rows: keep (and count), drop, or error.")
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
    events_columns: ColumnsOption = None,
    customers: Annotated[Path | None, typer.Option(help="Customers file (optional).")] = None,
    customers_columns: ColumnsOption = None,
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
    _echo_kpis(summarize_kpis(tx), table)
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
    columns: ColumnsOption = None,
    timezone: TimezoneOption = "UTC",
    timestamp_format: FormatOption = None,
) -> None:
    """Fit one classic BTYD model on the RFM summary as of a day; print its parameters."""
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
        estimator = GammaGammaModel().fit(rfm["frequency"], rfm["monetary_value"])
    else:
        transaction_model = cast(type[TransactionModel], MODELS[model])
        estimator = transaction_model(time_unit=time_unit).fit(
            rfm["frequency"], rfm["recency"], rfm["T"]
        )
    typer.echo(json.dumps(estimator.to_dict(), indent=None if json_output else 2))


@app.command()
def train(
    transactions: TransactionsOption,
    as_of: Annotated[str, typer.Option(help="Train on data up to this day (UTC).")],
    horizon_days: Annotated[int, typer.Option(help="Days predicted after each cutoff.")] = 180,
    out: Annotated[Path, typer.Option(help="Folder for model.pkl.")] = Path("model"),
    columns: ColumnsOption = None,
    timezone: TimezoneOption = "UTC",
    timestamp_format: FormatOption = None,
    duplicates: DuplicatesOption = "keep",
) -> None:
    """Train the RetentionModel on the history up to a day; save OUT/model.pkl."""
    from retain.models.retention import RetentionModel

    options = _options(timezone, timestamp_format, duplicates, False)
    tx = _load_transactions(transactions, columns, options, None).frame
    started = time.perf_counter()
    model = RetentionModel(horizon_days).fit(tx, as_of)
    path = model.save(out / "model.pkl")
    typer.echo(
        f"trained on {model.training_rows_:,} examples from cutoffs "
        f"{', '.join(f'{c:%Y-%m-%d}' for c in model.cutoffs_)} in "
        f"{time.perf_counter() - started:.0f}s -> {path}"
    )


@app.command()
def score(
    transactions: TransactionsOption,
    as_of: Annotated[str, typer.Option(help="Score as of this day (UTC).")],
    model: Annotated[Path, typer.Option(help="A model saved by `retain train` (model.pkl).")],
    out: Annotated[Path, typer.Option(help="Folder for scores.parquet.")] = Path(),
    columns: ColumnsOption = None,
    timezone: TimezoneOption = "UTC",
    timestamp_format: FormatOption = None,
    duplicates: DuplicatesOption = "keep",
) -> None:
    """Score every customer as of a day with a saved model; write OUT/scores.parquet."""
    from retain.models.retention import RetentionModel

    fitted = RetentionModel.load(model)
    options = _options(timezone, timestamp_format, duplicates, False)
    tx = _load_transactions(transactions, columns, options, None).frame
    scores = fitted.predict(tx, as_of)
    out.mkdir(parents=True, exist_ok=True)
    scores.to_parquet(out / "scores.parquet", index=False)
    typer.echo(f"scored {len(scores):,} customers as of {as_of} -> {out / 'scores.parquet'}")
    typer.echo(scores.drop(columns="reasons").describe().round(3).to_string())


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
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's outputs.")] = Path("retain-demo"),
) -> None:
    """The main job on bundled real data (CDNOW): validate, build features, segment, KPIs."""
    from retain.features import build_features
    from retain.kpis import retention_kpis, summarize_kpis

    started = time.perf_counter()
    typer.echo("[1/3] loading CDNOW (bundled with lifetimes) and validating it")
    data = load_cdnow("master")
    _echo_lines(data.lines())
    tx = data.transactions.frame
    as_of = tx["timestamp"].max().strftime("%Y-%m-%d")
    typer.echo(f"[2/3] building features as of {as_of}")
    table = build_features(tx, as_of)
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "features.parquet", index=False)
    typer.echo(
        f"  {len(table):,} customers x {table.shape[1] - 1} columns -> {out}/features.parquet"
    )
    _echo_segments(table)
    typer.echo("[3/3] retention KPIs by quarter (active = a purchase in the last 365 days)")
    kpi_table = retention_kpis(tx, period="Q")
    kpi_table.to_csv(out / "kpis.csv", index=False)
    _echo_kpis(summarize_kpis(tx), kpi_table)
    typer.echo(f"done in {time.perf_counter() - started:.1f}s; outputs in {out}/")


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


def _echo_kpis(summary: dict[str, float], table: pd.DataFrame) -> None:
    from retain.kpis import KPI_COLUMNS

    typer.echo(
        "whole history: "
        + ", ".join(
            f"{k.replace('_', ' ')} {v:,.2f}" if isinstance(v, float) else f"{k} {v:,}"
            for k, v in summary.items()
        )
    )
    # The terminal shows the counts and rates; the period bounds and frequency stay in the CSV.
    hidden = {"period_start", "period_end", "purchase_frequency"}
    shown = [c for c in KPI_COLUMNS if c not in hidden]
    typer.echo(table[[c for c in shown if c in table]].round(1).to_string(index=False))


def main() -> None:
    """Entry point: run the app, turning retain's own errors into one line and exit status 2.

    Usage mistakes (an unknown option, a missing one) are reported by the command-line library
    itself, also with status 2.
    """
    try:
        app()
    except RetainError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
