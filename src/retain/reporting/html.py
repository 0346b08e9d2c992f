"""One static HTML file a marketer opens in a browser: KPIs, segments, tiers, audiences, outreach.

The file is self-contained: inline CSS, plots embedded as base64 PNG (matplotlib's Agg renderer,
drawn into figures made without pyplot), no script and nothing fetched from elsewhere, so it can be
mailed, archived or opened offline. Rendering the same data twice gives the same bytes (no clock is
read: the times shown come from the inputs).

The markup is in Jinja2 templates (``templates/report.html.j2`` and the block macros of
``templates/blocks.html.j2``), rendered with autoescape on: every value that reaches the page
(customer segments, file names, settings, the manifest) is escaped by the template engine, not by
a helper each caller must remember. This module only shapes the data: numbers formatted as text,
tables as lists of rows, figures as PNG data URIs, each section a list of blocks whose ``kind``
names the macro that draws it.

:func:`render_report` takes a :class:`ReportData`: plain frames and values, as the KPI and action
functions return them, so the report can be rendered from any source (the ``retain audiences``
command, the scoring job, a notebook).

Every figure says what it counts: its window (the KPIs' active window, a customer being active with
a purchase in the last ``active_window_days``), its horizon (predictions cover the ``horizon_days``
after ``as_of``) and its unit (money in ``currency``, or in the unit of the amount column when no
currency is set). The same word means the same thing everywhere: *overdue* is always the outreach
rule's flag, and each count of it says over which customers it is taken. CRRs of periods the data
do not cover a whole active window before (``window_covered`` of the KPIs) are shown as not
measurable ("n/m"), not as the 100 % the formula gives there.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Final

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from retain.kpis.forecast import CRRForecast
from retain.reporting.plots import (
    plot_bars,
    plot_cohort_retention,
    plot_crr,
    plot_distribution,
    plot_outreach_calendar,
)

__all__ = ["AudienceSummary", "DiscountSection", "ReportData", "render_report", "write_report"]

KPI_TABLE_PERIODS: Final = 13
"""Periods shown in the KPI table (the plot shows them all)."""
CALENDAR_DAYS: Final = 42
"""Days of the outreach calendar, from as_of (the earliest contact date) on."""
_DPI: Final = 96

_KPI_HEADERS: Final = {
    "period": "Period",
    "customers_start": "B (active at start)",
    "customers_end": "E (active at end)",
    "new_customers": "N (new)",
    "crr": "CRR %",
    "churn_rate": "Churn %",
    "buyers": "Buyers",
    "orders": "Orders",
    "revenue": "Revenue",
    "average_order_value": "AOV",
    "purchase_frequency": "Orders / buyer",
    "repeat_purchase_rate": "Repeat rate %",
}


NOT_MEASURABLE: Final = "n/m"
"""Shown for a CRR or churn rate of a period the data do not cover a whole active window before."""


@dataclass(frozen=True)
class AudienceSummary:
    """One audience: how many customers, the value it stands for and what it costs.

    ``value_is`` names the value, since audiences differ: a retargeting audience's is the value at
    risk (what its customers would take with them), a discount's the margin it is expected to add.
    """

    name: str
    customers: int
    value: float | None = None
    cost: float | None = None
    file: str | None = None
    description: str = ""
    value_is: str = ""


@dataclass(frozen=True)
class DiscountSection:
    """The discount recommendation: its mode, budget, totals, per-level table and assumptions."""

    mode: str
    budget: float | None
    """Cap on the expected discount cost; None: no cap."""
    summary: Mapping[str, Any] = field(default_factory=dict)
    levels: pd.DataFrame | None = None
    assumptions: Sequence[str] = ()
    validation: pd.DataFrame | None = None
    """Uplift mode: the learner's held-out Qini coefficient and AUUC per level and outcome."""


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows. Only ``as_of`` and ``scores`` are required; a section whose
    data is missing says so instead of being drawn.

    ``scores`` is one row per customer: the scores (``churn_probability``, ``clv``...) and, when the
    actions were planned, their columns (``lifecycle_segment``, ``loyalty_tier``,
    ``value_at_risk``, ``contact_date``, ``overdue``). ``segments`` and ``tiers`` are the summary
    tables of the action plan (tier cut points included); ``kpis`` and ``cohorts`` are
    ``retention_kpis`` and ``cohort_retention`` of the transactions; ``manifest`` the scoring run's
    ``manifest.json``.
    """

    as_of: str
    scores: pd.DataFrame
    manifest: Mapping[str, Any] = field(default_factory=dict)
    kpis: pd.DataFrame | None = None
    cohorts: pd.DataFrame | None = None
    forecast: CRRForecast | None = None
    segments: pd.DataFrame | None = None
    tiers: pd.DataFrame | None = None
    audiences: Sequence[AudienceSummary] = ()
    discounts: DiscountSection | None = None
    notes: Sequence[str] = ()
    title: str = "Retention report"
    period_name: str = "month"
    currency: str | None = None
    """The currency of the amounts (a code such as GBP, shown beside every money figure); None
    labels them "amount", the unit of the transactions' amount column."""
    active_window_days: int = 365
    """W of the KPIs: a customer is active with a purchase in the W days before an instant."""
    overdue_rule: str = "later than their usual gap between orders"
    """When a customer counts as overdue (the outreach settings, in words)."""

    @property
    def horizon_days(self) -> int | None:
        """Days the predictions cover after as_of (the manifest's, or its model's)."""
        manifest = self.manifest or {}
        model = manifest.get("model")
        horizon = manifest.get("horizon_days") or (
            model.get("horizon_days") if isinstance(model, Mapping) else None
        )
        return horizon if isinstance(horizon, int) and horizon > 0 else None

    @property
    def unit(self) -> str:
        """What money is counted in: the currency, or "amount" when none was given."""
        return self.currency or "amount"

    @property
    def next_days(self) -> str:
        """The prediction window in words: "next 90 days" (or "horizon" when it is unknown)."""
        horizon = self.horizon_days
        return f"next {horizon} days" if horizon else "horizon"


def write_report(data: ReportData, path: str | Path) -> Path:
    """Render the report and write it to ``path`` (UTF-8)."""
    path = Path(path)
    path.write_text(render_report(data), encoding="utf-8")
    return path


def render_report(data: ReportData) -> str:
    """The whole report as one HTML document (a string)."""
    sections = [
        _summary(data),
        _kpis(data),
        _cohorts(data),
        _segments(data),
        _tiers(data),
        _distributions(data),
        _audiences(data),
        _discounts(data),
        _outreach(data),
        _run(data),
    ]
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            title=data.title,
            as_of=data.as_of,
            model=_model_line(data.manifest),
            nav=_NAV,
            notes=[str(note) for note in data.notes],
            sections=sections,
        )
    )


_NAV: Final = (
    ("summary", "Summary"),
    ("kpis", "KPIs"),
    ("cohorts", "Cohorts"),
    ("segments", "Segments"),
    ("tiers", "Tiers"),
    ("scores", "Scores"),
    ("audiences", "Audiences"),
    ("discounts", "Discounts"),
    ("outreach", "Outreach"),
    ("run", "Model and run"),
)


@cache
def _environment() -> Environment:
    """The templates beside this module, with autoescape on for everything they render (the
    safety of the page rests on it) and an error for any name a template uses but is not given."""
    return Environment(
        loader=PackageLoader("retain.reporting", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


# -- blocks: what a section holds, drawn by the macro its kind names (templates/blocks.html.j2) ---


@dataclass(frozen=True)
class _Cell:
    text: str
    css: str
    """``num`` (right-aligned) or ``text`` (wraps)."""


@dataclass(frozen=True)
class _Table:
    kind: ClassVar[str] = "table"
    header: list[str]
    rows: list[list[_Cell]]
    caption: str = ""


@dataclass(frozen=True)
class _Figure:
    kind: ClassVar[str] = "figure"
    src: str
    """The PNG as a data URI."""
    alt: str
    width: int
    height: int


@dataclass(frozen=True)
class _Missing:
    kind: ClassVar[str] = "missing"
    text: str


@dataclass(frozen=True)
class _Cards:
    kind: ClassVar[str] = "cards"
    cards: list[tuple[str, str]]
    """(label, value) of each headline figure."""


@dataclass(frozen=True)
class _Definitions:
    kind: ClassVar[str] = "definitions"
    items: list[tuple[str, str]]
    """(term, what it means)."""


@dataclass(frozen=True)
class _Mode:
    kind: ClassVar[str] = "mode"
    mode: str
    budget: str


@dataclass(frozen=True)
class _Bullets:
    kind: ClassVar[str] = "bullets"
    title: str
    items: list[str]
    css: str


_Block = _Table | _Figure | _Missing | _Cards | _Definitions | _Mode | _Bullets


@dataclass(frozen=True)
class _Section:
    anchor: str
    title: str
    blocks: list[_Block]


# -- sections ----------------------------------------------------------------------------------


def _summary(data: ReportData) -> _Section:
    scores = data.scores
    window, unit, upcoming = data.active_window_days, data.unit, data.next_days
    cards = [("Customers scored", f"{len(scores):,}")]
    if "churn_probability" in scores:
        cards.append(
            (
                f"Mean churn risk (no order in the {upcoming})",
                _percent(float(scores["churn_probability"].mean()) * 100),
            )
        )
    if "clv" in scores:
        cards.append(
            (f"Predicted CLV, {upcoming}, total ({unit})", _money(float(scores["clv"].sum())))
        )
    if "value_at_risk" in scores:
        cards.append(
            (
                f"Value at risk, {upcoming}, total ({unit})",
                _money(float(scores["value_at_risk"].sum())),
            )
        )
    if data.forecast is not None:
        forecast = data.forecast
        cards.append(
            (
                f"Expected CRR {forecast.period} (active: an order in {window} days)",
                _crr(forecast.expected_crr, forecast.window_covered),
            )
        )
        observed = forecast.observed
        if not observed.empty:
            last = observed.iloc[-1]
            cards.append((f"Last CRR ({last['period']})", _crr(last["crr"], _covered(last))))
    for audience in data.audiences:
        cards.append((f"Audience: {audience.name} (customers)", f"{audience.customers:,}"))
    return _Section("summary", "Summary", [_Cards(cards), _definitions(data)])


def _definitions(data: ReportData) -> _Definitions:
    """What the figures count, once, under the summary: the horizon, the active window, the unit
    of money, the scores and the overdue rule."""
    horizon = data.horizon_days
    window = data.active_window_days
    if horizon:
        end = pd.Timestamp(data.as_of) + pd.Timedelta(days=horizon)
        predictions = (
            f"the {horizon} days after {data.as_of} (to {end:%Y-%m-%d}): churn risk = P(no "
            f"order in them), CLV = the spend expected in them, value at risk = churn risk x CLV"
        )
    else:
        predictions = (
            "the model's horizon (not in the manifest): churn risk = P(no order in it), CLV = "
            "the spend expected in it, value at risk = churn risk x CLV"
        )
    money = (
        f"in {data.currency}"
        if data.currency
        else 'in the unit of the transactions\' amount column, labelled "amount" (no currency '
        "was set: currency in the [report] table of the settings file, or RETAIN_REPORT_CURRENCY)"
    )
    items = [
        ("Predictions", predictions + "."),
        (
            "Active window",
            f"a customer is active with an order in the {window} days before an instant; CRR = "
            f"(E - N) / B, churn = share of B not active at the period end. In the data's first "
            f"{window} days nobody can have churned yet: those periods show {NOT_MEASURABLE} (not "
            "measurable) instead of 100%.",
        ),
        ("Money", money + "."),
        ("Overdue", f"a repeat customer {data.overdue_rule}; each count says of whom."),
    ]
    return _Definitions(items)


def _kpis(data: ReportData) -> _Section:
    if data.kpis is None or data.kpis.empty:
        return _Section(
            "kpis",
            "KPIs and the CRR forecast",
            [
                _forecast_table(data.forecast),
                _Missing(
                    "No transactions were given: the KPIs per period (CRR, churn, repeat rate, "
                    "AOV) and the cohorts need them (--transactions)."
                ),
            ],
        )
    kpis = data.kpis
    window = data.active_window_days
    forecast = data.forecast.as_dict() if data.forecast is not None else None
    plot = _figure(
        lambda ax: plot_crr(kpis, forecast, window_days=window, ax=ax), (8.5, 3.8), "CRR per period"
    )
    shown = kpis.tail(KPI_TABLE_PERIODS)
    columns = [c for c in _KPI_HEADERS if c in shown]
    rows = [
        [
            NOT_MEASURABLE if c in ("crr", "churn_rate") and not _covered(row) else _cell(row[c], c)
            for c in columns
        ]
        for _, row in shown.iterrows()
    ]
    headers = {
        **_KPI_HEADERS,
        "revenue": f"Revenue ({data.unit}, net)",
        "average_order_value": f"AOV ({data.unit})",
    }
    uncovered = int((~kpis.apply(_covered, axis=1)).sum()) if "window_covered" in kpis else 0
    table = _table(
        [headers[c] for c in columns],
        rows,
        caption=f"The last {len(shown)} {data.period_name}s (of {len(kpis)}). Active = an order in "
        f"the {window} days before an instant: B = active at the {data.period_name}'s start, E = "
        "at its end, N = first order in it. CRR = (E - N) / B; churn = share of B not active at "
        "the end; repeat rate = share of the buyers with two orders or more by the end; AOV = "
        "gross order value / orders."
        + (
            f" {NOT_MEASURABLE}: not measurable, the data do not reach back {window} days before "
            f"the {data.period_name}'s start ({uncovered} {data.period_name}s from the first): "
            "nobody can have churned yet, so the formula would read 100%."
            if uncovered
            else ""
        ),
    )
    return _Section(
        "kpis", "KPIs and the CRR forecast", [_forecast_table(data.forecast), plot, table]
    )


def _forecast_table(forecast: CRRForecast | None) -> _Table | _Missing:
    if forecast is None:
        return _Missing("No CRR forecast (it needs the transactions unless as_of ends a period).")
    rows = [
        [
            "Forecast period",
            f"{forecast.period} ({forecast.period_start:%Y-%m-%d} to "
            f"{forecast.period_end:%Y-%m-%d}, end exclusive)",
        ],
        ["Scores as of", forecast.as_of],
        ["B: customers active at the period start", f"{forecast.customers_start:,}"],
        ["Customers with a purchase before the period start", f"{forecast.existing_customers:,}"],
        ["... of whom active at the period end whatever happens", f"{forecast.active_for_sure:,}"],
        ["Expected E - N (retained)", f"{forecast.expected_retained:,.1f}"],
        ["Expected CRR", _crr(forecast.expected_crr, forecast.window_covered)],
        ["Expected churn rate", _crr(forecast.expected_churn_rate, forecast.window_covered)],
        [
            "Days predicted",
            f"{forecast.days_predicted} (from {forecast.probability_source}"
            f"{', extrapolated beyond the horizon' if forecast.extrapolated else ''})",
        ],
    ]
    if forecast.customers_unscored:
        rows.append(["Existing customers without scores", f"{forecast.customers_unscored:,}"])
    for _, row in forecast.observed.iterrows():
        rows.append([f"Observed CRR {row['period']}", _crr(row["crr"], _covered(row))])
    return _table(
        ["CRR forecast", ""],
        rows,
        caption=f"Active = an order in the {forecast.active_window_days} days before an instant. "
        "Expected E - N = customers active for sure + the sum of the others' probability "
        "of a purchase before the period end, under a constant purchase hazard fitted to "
        "p_purchase_30d (windows up to 31 days) or churn_probability (longer ones).",
        numeric=False,
    )


def _cohorts(data: ReportData) -> _Section:
    if data.cohorts is None or data.cohorts.empty:
        return _Section("cohorts", "Cohort retention", [_Missing("No transactions were given.")])
    cohorts = data.cohorts
    plot = _figure(
        lambda ax: plot_cohort_retention(cohorts, ax=ax),
        (8.5, 1.6 + 0.24 * min(len(cohorts), 24)),
        "Cohort retention heatmap",
    )
    shown = cohorts.tail(12)
    columns = [c for c in shown.columns if c != "cohort_size"][:7]
    rows = [
        [str(index), f"{int(row['cohort_size']):,}", *(_percent(row[c] * 100) for c in columns)]
        for index, row in shown.iterrows()
    ]
    table = _table(
        ["Cohort", "Customers", *(f"+{c}" for c in columns)],
        rows,
        caption=f"Share of each acquisition cohort with an order {data.period_name}s later "
        "(the last 12 cohorts; blank: not observed yet).",
    )
    return _Section("cohorts", "Cohort retention", [plot, table])


# The two segment schemes, named so that they cannot be confused (retain.actions.segments).
_SEGMENT_SCHEMES: Final = {
    "lifecycle_segment": "lifecycle segment (from the predictions)",
    "segment": "RFM segment (from past recency, frequency and spend)",
}


def _segments(data: ReportData) -> _Section:
    column = _first(data.scores, ("lifecycle_segment", "segment"))
    if column is None:
        return _Section("segments", "Segments", [_Missing("The scores hold no segment column.")])
    scheme = _SEGMENT_SCHEMES[column]
    sizes = data.scores[column].astype("str").value_counts()
    plot = _figure(
        lambda ax: plot_bars(sizes, f"Customers per {scheme}", ax=ax),
        (8.5, 1.3 + 0.36 * len(sizes)),
        "Segment sizes",
    )
    if data.segments is not None and not data.segments.empty:
        table = _frame_table(
            data.segments,
            caption="The action plan's segment summary." + _overdue_by_segment(data, column),
            money=_money_labels(data),
        )
    else:
        table = _size_table(sizes, scheme[0].upper() + scheme[1:], data.scores, column)
    return _Section("segments", f"Segments: {scheme}", [table, plot])


def _overdue_by_segment(data: ReportData, column: str) -> str:
    """Where the overdue customers are: segments are exclusive and the first rule a customer
    meets wins, so a segment named "overdue" holds only the overdue customers no earlier rule
    took, a different count from the overdue flag's."""
    scores = data.scores
    if "overdue" not in scores:
        return ""
    flag = scores["overdue"].fillna(False).astype(bool)
    if not flag.any():
        return ""
    where = scores.loc[flag, column].astype("str").value_counts()
    parts = ", ".join(f"{name} {count:,}" for name, count in where.items())
    return (
        f" Overdue customers ({data.overdue_rule}): {int(flag.sum()):,} of the {len(scores):,}, "
        f"by segment: {parts}. Segments are exclusive (the first rule met wins), so a segment's "
        "count is not the overdue count."
    )


def _tiers(data: ReportData) -> _Section:
    column = _first(data.scores, ("loyalty_tier",))
    if column is None and data.tiers is None:
        return _Section("tiers", "Loyalty tiers", [_Missing("No loyalty tiers were planned.")])
    parts: list[_Block] = []
    if data.tiers is not None and not data.tiers.empty:
        parts.append(
            _frame_table(
                data.tiers,
                caption=f"Tiers by predicted CLV ({data.next_days}, {data.unit}), lowest first: a "
                "customer is in the highest tier whose lower cut their CLV reaches.",
                money=_money_labels(data),
            )
        )
    if column is not None:
        values = data.scores[column]
        sizes = values.astype("str").value_counts(sort=False)
        if isinstance(values.dtype, pd.CategoricalDtype):  # tiers in their order, lowest first
            sizes = sizes.reindex([str(c) for c in values.cat.categories], fill_value=0)
        parts.append(
            _figure(
                lambda ax: plot_bars(sizes, "Customers per loyalty tier", horizontal=False, ax=ax),
                (8.5, 3.2),
                "Loyalty tier sizes",
            )
        )
    return _Section("tiers", "Loyalty tiers", parts)


def _distributions(data: ReportData) -> _Section:
    scores = data.scores
    parts: list[_Block] = []
    if "churn_probability" in scores:
        parts.append(
            _figure(
                lambda ax: plot_distribution(
                    scores["churn_probability"],
                    "Churn risk",
                    f"P(no purchase in the {data.next_days})",
                    percent=True,
                    ax=ax,
                ),
                (8.5, 3.3),
                "Churn risk distribution",
            )
        )
    if "clv" in scores:
        parts.append(
            _figure(
                lambda ax: plot_distribution(
                    scores["clv"],
                    f"Predicted CLV, {data.next_days}",
                    f"CLV ({data.unit})",
                    clip_quantile=0.99,
                    ax=ax,
                ),
                (8.5, 3.3),
                "CLV distribution",
            )
        )
    if not parts:
        return _Section("scores", "Scores", [_Missing("No churn or CLV column in the scores.")])
    described = [
        c
        for c in (
            "churn_probability",
            "p_purchase_30d",
            "clv",
            "value_at_risk",
            "expected_purchases",
        )
        if c in scores
    ]
    quantiles = scores[described].quantile([0.1, 0.25, 0.5, 0.75, 0.9]).T
    upcoming, unit = data.next_days, data.unit
    meaning = {
        "churn_probability": f"P(no order in the {upcoming})",
        "p_purchase_30d": "P(an order in the next 30 days)",
        "clv": f"spend expected in the {upcoming} ({unit})",
        "value_at_risk": f"churn probability x CLV, {upcoming} ({unit})",
        "expected_purchases": f"purchase days expected in the {upcoming}",
    }
    rows = [
        [
            name,
            meaning[name],
            f"{scores[name].mean():,.3f}",
            *(f"{v:,.3f}" for v in quantiles.loc[name]),
        ]
        for name in described
    ]
    table = _table(
        ["Score", "What it is", "Mean", "10%", "25%", "Median", "75%", "90%"],
        rows,
        caption="Distribution of the scores over the customers.",
        text=(0, 1),
    )
    return _Section("scores", "Churn risk and CLV", [table, *parts])


def _audiences(data: ReportData) -> _Section:
    if not data.audiences:
        return _Section("audiences", "Audiences", [_Missing("No audience was built.")])
    rows = [
        [
            a.name,
            f"{a.customers:,}",
            _money(a.value),
            a.value_is,
            _money(a.cost),
            a.file or "",
            a.description,
        ]
        for a in data.audiences
    ]
    unit = data.unit
    table = _table(
        [
            "Audience",
            "Customers",
            f"Value ({unit})",
            "Value is",
            f"Cost ({unit})",
            "File",
            "What it is",
        ],
        rows,
        caption="Each audience's size, the value it stands for (what the value is differs: see "
        "its column) and what it costs.",
        text=(0, 3, 5, 6),
    )
    return _Section("audiences", "Audiences", [table])


def _discounts(data: ReportData) -> _Section:
    section = data.discounts
    if section is None:
        return _Section(
            "discounts", "Discounts", [_Missing("No discount recommendation was made.")]
        )
    mode = {
        "rule": "rule mode (no campaign history: assumed response rates from the settings)",
        "uplift": "uplift mode (per-customer uplift learned from the campaign history)",
    }.get(section.mode, section.mode)
    budget = "no cap" if section.budget is None else f"{_money(section.budget)} {data.unit}"
    parts: list[_Block] = [_Mode(mode, budget)]
    if section.summary:
        parts.append(
            _table(
                ["Figure", "Value"],
                [
                    [
                        _money_label(k.replace("_", " "), _money_labels(data)),
                        "no cap" if k == "budget" and v is None else _plain(v),
                    ]
                    for k, v in section.summary.items()
                ],
                caption="The recommendation's totals.",
            )
        )
    levels = section.levels
    if levels is not None and not levels.empty:
        if levels.index.name is not None:
            levels = levels.reset_index()
        parts.append(
            _frame_table(
                levels,
                caption="Customers and value per discount level.",
                money=_money_labels(data),
            )
        )
        count = _first(levels, ("customers", "count", "n"))
        label = _first(levels, ("level", "discount"))
        if count is not None and label is not None:
            bars = pd.Series(
                levels[count].to_numpy(), index=[_level_label(v) for v in levels[label]]
            )
            parts.append(
                _figure(
                    lambda ax: plot_bars(
                        bars, "Customers per discount level", horizontal=False, ax=ax
                    ),
                    (8.5, 3.2),
                    "Discount levels",
                )
            )
    if section.validation is not None and not section.validation.empty:
        parts.append(
            _frame_table(
                section.validation,
                caption="Uplift validated on held-out customers: Qini coefficient and AUUC per "
                "level and outcome (above 0: better than random targeting).",
            )
        )
    if section.assumptions:
        parts.append(_Bullets("Assumptions", [str(a) for a in section.assumptions], "assumptions"))
    return _Section("discounts", "Discounts", parts)


def _outreach(data: ReportData) -> _Section:
    scores = data.scores
    if "contact_date" not in scores:
        return _Section("outreach", "Outreach calendar", [_Missing("No outreach was planned.")])
    first = pd.Timestamp(data.as_of).normalize()  # contact dates are never before as_of
    days = pd.date_range(first, periods=CALENDAR_DAYS, freq="D")
    contact = pd.to_datetime(scores["contact_date"], errors="coerce")
    if isinstance(contact.dtype, pd.DatetimeTZDtype):
        contact = contact.dt.tz_localize(None)
    contact = contact.dt.normalize()
    counts = contact.value_counts().reindex(days, fill_value=0)
    overdue = int(scores["overdue"].fillna(False).astype(bool).sum()) if "overdue" in scores else 0
    earlier = int((contact < first).sum())
    later = int((contact >= first + pd.Timedelta(days=CALENDAR_DAYS)).sum())
    plot = _figure(
        lambda ax: plot_outreach_calendar(counts, overdue=overdue, ax=ax),
        (8.5, 3.4),
        "Outreach calendar",
    )
    rows = [
        [
            f"{days[start]:%Y-%m-%d} to {days[min(start + 6, len(days) - 1)]:%Y-%m-%d}",
            f"{int(counts.iloc[start : start + 7].sum()):,}",
        ]
        for start in range(0, len(days), 7)
    ]
    if earlier:
        rows.append([f"Before {first:%Y-%m-%d}", f"{earlier:,}"])
    rows.append([f"After the {CALENDAR_DAYS} days", f"{later:,}"])
    rows.append(["No contact date (no next order expected)", f"{int(contact.isna().sum()):,}"])
    rows.append([f"Overdue, of all {len(scores):,} customers (any contact date)", f"{overdue:,}"])
    due = (contact >= first) & (contact < first + pd.Timedelta(days=CALENDAR_DAYS))
    if "overdue" in scores:
        flag = scores["overdue"].fillna(False).astype(bool)
        rows.append(
            [
                f"Overdue, of the {int(due.sum()):,} contacts in the {CALENDAR_DAYS} days",
                f"{int((flag & due).sum()):,}",
            ]
        )
    table = _table(
        ["Week", "Contacts"],
        rows,
        caption="Contact date = expected next order date minus the lead time. Overdue = a repeat "
        f"customer {data.overdue_rule}.",
    )
    return _Section("outreach", "Outreach calendar", [plot, table])


def _run(data: ReportData) -> _Section:
    manifest = data.manifest
    if not manifest:
        return _Section("run", "Model and run", [_Missing("No manifest.json beside the scores.")])
    model = manifest.get("model") or {}
    rows = [
        ["Scores as of", manifest.get("as_of", data.as_of)],
        ["Model", model.get("name", "")],
        ["Model version", model.get("version", "")],
        ["Model URI", model.get("uri", "")],
        ["Model trained as of", model.get("trained_as_of", "")],
        ["Horizon (days)", manifest.get("horizon_days", "")],
        ["Engine", manifest.get("engine", "")],
        ["Scored at", manifest.get("created_at", "")],
        ["retain version", manifest.get("retain_version", "")],
        ["Customers scored", manifest.get("customers_scored", "")],
    ]
    for name, summary in (manifest.get("inputs") or {}).items():
        if isinstance(summary, Mapping):
            rows.append(
                [
                    f"Input: {name}",
                    f"{summary.get('path', '')} ({_plain(summary.get('rows_valid', '?'))} rows used)",
                ]
            )
    drift = manifest.get("drift")
    if isinstance(drift, Mapping):
        drifted = drift.get("drifted") or []
        rows.append(["Drift (PSI above threshold)", ", ".join(map(str, drifted)) or "none"])
    rows = [row for row in rows if row[1] not in ("", None)]
    return _Section(
        "run",
        "Model and run",
        [_table(["", ""], [[_plain(k), _plain(v)] for k, v in rows], numeric=False)],
    )


# -- building blocks ---------------------------------------------------------------------------


def _figure(draw: Callable[[Axes], object], size: tuple[float, float], alt: str) -> _Figure:
    """Draw into a new Agg figure (no pyplot) and return it as an inline PNG (a data URI)."""
    figure = Figure(figsize=size, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    draw(figure.add_subplot())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return _Figure(
        src=f"data:image/png;base64,{encoded}",
        alt=alt,
        width=int(size[0] * _DPI),
        height=int(size[1] * _DPI),
    )


def _table(
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    caption: str = "",
    numeric: bool = True,
    text: Sequence[int] = (0,),
) -> _Table:
    """A table of text cells (the template escapes them). With ``numeric``, every column but
    those in ``text`` (the first) is right-aligned; text columns wrap."""
    return _Table(
        header=[str(label) for label in header],
        rows=[
            [
                _Cell(str(cell), "num" if numeric and i not in text else "text")
                for i, cell in enumerate(row)
            ]
            for row in rows
        ],
        caption=caption,
    )


def _frame_table(
    frame: pd.DataFrame, caption: str = "", money: Mapping[str, str] | None = None
) -> _Table:
    """Any small frame as a table (its index too when it is named); ``money`` labels the
    money columns with their unit (:func:`_money_labels`)."""
    if frame.index.name is not None or not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    header = [_money_label(str(c).replace("_", " "), money or {}) for c in frame.columns]
    rows = [
        [_cell(v, str(c)) for c, v in zip(frame.columns, row, strict=True)]
        for row in frame.itertuples(index=False)
    ]
    return _table(header, rows, caption=caption)


def _size_table(sizes: pd.Series, label: str, scores: pd.DataFrame, column: str) -> _Table:
    grouped = scores.groupby(scores[column].astype("str"), observed=True)
    rows = []
    for name, n in sizes.items():
        row = [str(name), f"{int(n):,}", _percent(n / max(len(scores), 1) * 100)]
        for score in ("churn_probability", "clv"):
            if score in scores:
                row.append(f"{grouped[score].mean().get(name, math.nan):,.3f}")
        rows.append(row)
    extra = [s.replace("_", " ") + " (mean)" for s in ("churn_probability", "clv") if s in scores]
    return _table([label, "Customers", "Share", *extra], rows)


def _cell(value: object, column: str = "") -> str:
    """A value as table text: counts with thousands separators, rates to one decimal."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isinf(number):
            return "∞" if number > 0 else "-∞"
        if column == "share" and -1 <= number <= 1:  # a fraction
            return f"{number * 100:.1f}%"
        if column.endswith(("rate", "crr", "share", "pct")):
            return f"{number:,.1f}"
        if column in ("purchase_frequency",) or abs(number) < 10:
            return f"{number:,.3g}" if abs(number) < 1 else f"{number:,.2f}"
        return f"{number:,.2f}"
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d}"
    return str(value)


def _plain(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):,.2f}"
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return f"{int(value):,}"
    if isinstance(value, list | tuple):
        return ", ".join(map(_plain, value))
    return str(value)


def _level_label(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.0%}" if 0 <= number <= 1 else f"{number:g}%"


_MONEY_WORDS: Final = ("margin", "cost", "value", "revenue", "spend", "budget", "bound")


def _money_labels(data: ReportData) -> dict[str, str]:
    """The unit to add to a money column's name: CLV-based figures also carry the horizon."""
    return {"clv": f"{data.unit}, {data.next_days}", "": data.unit}


def _money_label(name: str, money: Mapping[str, str]) -> str:
    """``name`` with its unit when it names money ("clv total (GBP, next 90 days)"); other names
    as they are. Value at risk is churn risk x CLV, so it carries CLV's horizon."""
    if not money:
        return name
    words = name.lower()
    if "clv" in words or "value at risk" in words:
        return f"{name} ({money['clv']})"
    if any(word in words for word in _MONEY_WORDS):
        return f"{name} ({money['']})"
    return name


def _covered(row: Mapping[str, Any] | pd.Series) -> bool:
    """Whether a KPI row's period has a whole active window of data before it (rows without the
    column count as covered)."""
    value = row.get("window_covered", True)
    return bool(value) if value is not None and not pd.isna(value) else True


def _crr(value: object, covered: bool | None) -> str:
    """A CRR or churn rate, or "n/m" when the data do not cover the window before its period."""
    return NOT_MEASURABLE if covered is False else _percent(value)


def _first(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    return next((n for n in names if n in frame), None)


def _percent(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(number) else f"{number:.1f}%"


def _money(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:,.2f}"


def _model_line(manifest: Mapping[str, Any]) -> dict[str, str] | None:
    """The model named in the header (name, version, trained as of, horizon), if the manifest has
    one."""
    model = manifest.get("model") if manifest else None
    if not isinstance(model, Mapping):
        return None
    return {
        "name": str(model.get("name", "")),
        "version": str(model.get("version", "")),
        "trained_as_of": str(model.get("trained_as_of", "")),
        "horizon_days": str(manifest.get("horizon_days", "")),
    }
