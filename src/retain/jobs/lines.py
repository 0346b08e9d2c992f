"""What the commands print about a table: the RFM segments and the retention KPIs, as lines."""

from __future__ import annotations

import pandas as pd

__all__ = ["kpi_lines", "last_day", "segment_lines"]


def segment_lines(table: pd.DataFrame) -> list[str]:
    """The size, share and mean spend of each RFM segment of a feature table (none without)."""
    if "segment" not in table:
        return []
    sizes = table["segment"].value_counts().rename("customers").to_frame()
    sizes["share"] = (sizes["customers"] / sizes["customers"].sum()).map("{:.1%}".format)
    sizes["mean spend"] = (
        table.groupby("segment", observed=False)["spend_total"].mean().round(2).reindex(sizes.index)
    )
    return ["segments:", sizes.to_string()]


def kpi_lines(
    summary: dict[str, float],
    table: pd.DataFrame,
    last_day: pd.Timestamp,
    window_days: int = 365,
    window_option: str = "--active-window-days",
) -> list[str]:
    """Whole-history figures and the KPI table, with what they count: why the customers here can
    be fewer than validation's, what "active" means, which periods' CRR cannot be measured yet
    (the first ``window_days`` of the data) and a last period the data do not cover to its end.
    ``window_option``: how the command that prints it sets the active window."""
    from retain.kpis import KPI_COLUMNS

    lines: list[str] = []
    echo = lines.append
    figures = {k: v for k, v in summary.items() if k != "customers_without_purchase"}
    echo(
        "whole history: "
        + ", ".join(
            f"{k.replace('_', ' ')} {v:,.2f}" if isinstance(v, float) else f"{k} {v:,}"
            for k, v in figures.items()
        )
    )
    refunds_only = int(summary.get("customers_without_purchase", 0))
    if refunds_only:
        echo(
            f"  customers: {int(summary['customers']):,} with a purchase; {refunds_only:,} more "
            f"(of the {int(summary['customers']) + refunds_only:,} that validation counts) have "
            "only refund rows (negative amounts), so no order and no KPI counts them"
        )
    echo(
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
    echo(shown.to_string(index=False))
    if uncovered.any():
        periods = table.loc[uncovered, "period"]
        echo(
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
        echo(
            f"note: {last['period']} is partial: the data end on {last_day:%Y-%m-%d}, the period "
            f"on {last['period_end'] - pd.Timedelta(days=1):%Y-%m-%d}. Its orders and revenue "
            "cover only part of it, and its customers_end, crr and churn_rate count the days "
            "after the data as days without a purchase."
        )
    return lines


def last_day(transactions: pd.DataFrame) -> pd.Timestamp:
    """The UTC day of the last transaction, as a zoned midnight (the KPI periods' time zone)."""
    return transactions["timestamp"].max().tz_convert("UTC").normalize()
