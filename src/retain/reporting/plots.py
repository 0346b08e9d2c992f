"""The report's plots: KPIs, cohorts, segments, tiers, score distributions, outreach, discounts.

Like :mod:`retain.evaluation.plots`, every function takes data (frames and series, as the KPI and
action functions return them), draws into ``ax`` when given, else into a new pyplot figure, and
returns the :class:`~matplotlib.axes.Axes`; nothing calls ``plt.show()`` and the backend is never
chosen here. The HTML report draws into figures it makes without pyplot (no global state), so a
batch job can render reports in threads or in a loop without leaking figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from retain.errors import RetainInputError
from retain.evaluation.plots import axes_or_new

__all__ = [
    "plot_bars",
    "plot_cohort_retention",
    "plot_crr",
    "plot_distribution",
    "plot_outreach_calendar",
]

_GREY = "#888888"


def plot_crr(
    kpis: pd.DataFrame,
    forecast: Mapping[str, object] | None = None,
    window_days: int | None = None,
    ax: Axes | None = None,
) -> Axes:
    """CRR and churn rate per period (``retention_kpis`` rows), with the expected CRR of the
    forecast period as an open marker joined to the last observed CRR by a dashed line.

    ``forecast`` holds ``period`` and ``expected_crr`` (``CRRForecast.as_dict()``); periods are
    drawn in order at equal spacing and labelled by name. Periods whose ``window_covered`` is
    false (the data do not reach back a whole active window before them) are shaded and their
    CRR and churn left out: there the formula gives 100 % and 0 % by construction, which a line
    would show as perfect retention. ``window_days`` (the active window) is said in the title.
    """
    for column in ("period", "crr", "churn_rate"):
        if column not in kpis:
            raise RetainInputError(f"kpis: missing column {column}")
    ax = axes_or_new(ax, (8.0, 3.6))
    labels = [str(p) for p in kpis["period"]]
    x = np.arange(len(labels))
    crr = kpis["crr"].to_numpy(dtype=float)
    churn = kpis["churn_rate"].to_numpy(dtype=float)
    if "window_covered" in kpis:
        uncovered = ~kpis["window_covered"].fillna(True).to_numpy(dtype=bool)
        crr, churn = np.where(uncovered, np.nan, crr), np.where(uncovered, np.nan, churn)
        if uncovered.any():
            last = int(np.flatnonzero(uncovered)[-1])
            ax.axvspan(-0.5, last + 0.5, color=_GREY, alpha=0.15, linewidth=0)
            ax.text(
                (last) / 2,
                50,
                "not measurable:\nless than a whole\nactive window of data",
                ha="center",
                va="center",
                fontsize="small",
                color=_GREY,
            )
    ax.plot(x, crr, marker="o", color="C0", label="CRR (observed)")
    ax.plot(x, churn, marker=".", color="C3", linewidth=1.0, label="churn rate")
    measurable = forecast is not None and forecast.get("window_covered") is not False
    if forecast is not None and measurable and _finite(forecast.get("expected_crr")):
        expected = float(forecast["expected_crr"])  # type: ignore[arg-type]
        period = str(forecast["period"])
        if period in labels:
            position = float(labels.index(period))
        else:
            labels.append(period)
            position = float(len(labels) - 1)
        observed = crr
        finite = np.flatnonzero(np.isfinite(observed) & (x < position))
        if finite.size:
            last = int(finite[-1])
            ax.plot([last, position], [observed[last], expected], "--", color="C0", linewidth=1.0)
        ax.plot(
            [position],
            [expected],
            marker="o",
            markerfacecolor="white",
            color="C0",
            linestyle="none",
            markersize=8,
            label=f"CRR expected ({period})",
        )
    step = max(1, math.ceil(len(labels) / 14))
    ax.set_xticks(np.arange(len(labels))[::step], labels[::step], rotation=45, ha="right")
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    ax.set_ylabel("% of customers active at the period start")
    ax.set_title(
        "Customer retention rate per period"
        + (f" (active: an order in the last {window_days} days)" if window_days else "")
    )
    ax.legend(loc="best", frameon=False, fontsize="small")
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)
    return ax


def plot_cohort_retention(
    cohorts: pd.DataFrame, max_periods: int = 12, max_cohorts: int = 24, ax: Axes | None = None
) -> Axes:
    """Heatmap of ``cohort_retention``: one row per acquisition cohort (the latest
    ``max_cohorts``), one column per period after acquisition (0 to ``max_periods``); cells
    not yet observed are left blank."""
    columns = [c for c in cohorts.columns if c != "cohort_size"][: max_periods + 1]
    if not columns:
        raise RetainInputError("cohorts: no period columns to draw")
    table = cohorts[columns].tail(max_cohorts)
    values = np.ma.masked_invalid(table.to_numpy(dtype=float) * 100)
    ax = axes_or_new(ax, (8.0, 1.5 + 0.22 * len(table)))
    image = ax.imshow(values, aspect="auto", cmap="Blues", vmin=0, vmax=100, interpolation="none")
    ax.set_xticks(np.arange(len(columns)), [str(c) for c in columns])
    ax.set_yticks(np.arange(len(table)), [str(i) for i in table.index], fontsize="small")
    ax.set_xlabel("Periods after acquisition")
    ax.set_ylabel("Acquisition cohort")
    ax.set_title("Cohort retention (% of the cohort with an order)")
    colorbar = ax.figure.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    colorbar.ax.yaxis.set_major_formatter(PercentFormatter(100))
    return ax


def plot_bars(
    values: pd.Series,
    title: str,
    xlabel: str = "Customers",
    horizontal: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """One bar per entry of ``values`` (indexed by label) in the order given, each labelled with
    its value: segment sizes, tier sizes, discount levels."""
    if not isinstance(values, pd.Series):
        raise RetainInputError(f"values must be a pandas Series, not {type(values).__name__}")
    numbers = pd.to_numeric(values, errors="coerce").fillna(0.0).to_numpy(dtype=float)
    labels = [str(i) for i in values.index]
    if horizontal:
        ax = axes_or_new(ax, (8.0, 1.2 + 0.35 * max(len(labels), 1)))
        positions = np.arange(len(labels))[::-1]  # first entry at the top
        bars = ax.barh(positions, numbers, color="C0")
        ax.set_yticks(positions, labels)
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
    else:
        ax = axes_or_new(ax, (8.0, 3.4))
        positions = np.arange(len(labels))
        bars = ax.bar(positions, numbers, color="C0")
        ax.set_xticks(positions, labels)
        ax.set_ylabel(xlabel)
        ax.grid(axis="y", alpha=0.3)
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in numbers], padding=2, fontsize="small")
    ax.margins(x=0.12) if horizontal else ax.margins(y=0.12)
    ax.set_title(title)
    ax.set_axisbelow(True)
    return ax


def plot_distribution(
    values: pd.Series | np.ndarray,
    title: str,
    xlabel: str,
    bins: int = 40,
    clip_quantile: float | None = None,
    percent: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """Histogram of a score over the customers, with its median marked.

    ``clip_quantile`` (e.g. 0.99) draws values above that quantile in the last bin, so a long
    tail (CLV) does not squeeze the rest into one bar; the title says so. ``percent`` shows a
    0-1 probability on a 0-100 % axis.
    """
    data = (
        pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce").dropna().to_numpy(dtype=float)
    )
    ax = axes_or_new(ax, (8.0, 3.4))
    if data.size == 0:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        return ax
    shown_title = title
    if clip_quantile is not None:
        top = float(np.quantile(data, clip_quantile))
        clipped = int((data > top).sum())
        if clipped:
            data = np.minimum(data, top)
            shown_title = f"{title} ({clipped:,} above {top:,.0f} drawn at it)"
    scale = 100.0 if percent else 1.0
    ax.hist(data * scale, bins=bins, color="C0", alpha=0.85)
    median = float(np.median(data)) * scale
    label = f"median {median:.1f}%" if percent else f"median {median:,.2f}"
    ax.axvline(median, color=_GREY, linestyle="--", linewidth=1.0, label=label)
    if percent:
        ax.xaxis.set_major_formatter(PercentFormatter(100))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Customers")
    ax.set_title(shown_title)
    ax.legend(loc="upper right", frameon=False, fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return ax


def plot_outreach_calendar(contacts: pd.Series, overdue: int = 0, ax: Axes | None = None) -> Axes:
    """Contacts planned per day (``contacts`` indexed by date), weekends shaded; ``overdue``
    (the customers later than their usual gap between orders, of all customers, whatever their
    contact date) is said in the title."""
    if not isinstance(contacts, pd.Series):
        raise RetainInputError(f"contacts must be a pandas Series, not {type(contacts).__name__}")
    days = pd.to_datetime(pd.Index(contacts.index))
    counts = pd.to_numeric(contacts, errors="coerce").fillna(0.0).to_numpy(dtype=float)
    ax = axes_or_new(ax, (8.0, 3.4))
    x = np.arange(len(days))
    colors = ["C1" if d.day_of_week >= 5 else "C0" for d in days]
    ax.bar(x, counts, color=colors, width=0.85)
    step = max(1, math.ceil(len(days) / 16))
    ax.set_xticks(x[::step], [f"{d:%a %d %b}" for d in days[::step]], rotation=45, ha="right")
    ax.set_ylabel("Customers to contact")
    title = "Outreach calendar: contacts per day (weekends in orange)"
    if overdue:
        title += f"; overdue, of all customers: {overdue:,}"
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return ax


# -- helpers -----------------------------------------------------------------------------------


def _finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
