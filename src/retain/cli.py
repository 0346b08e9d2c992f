"""The ``retain`` command line.

Every command reads files through the same validation as the library, prints the validation report,
and turns a user's mistake into one clear line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

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
    typer.echo(
        "whole history: "
        + ", ".join(
            f"{k.replace('_', ' ')} {v:,.2f}" if isinstance(v, float) else f"{k} {v:,}"
            for k, v in summary.items()
        )
    )
    shown = [
        "period",
        "customers_start",
        "customers_end",
        "new_customers",
        "crr",
        "churn_rate",
        "buyers",
        "orders",
        "revenue",
        "average_order_value",
        "repeat_purchase_rate",
    ]
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
