"""The actions step: from scores to the action plan, the audiences and the HTML report.

From a scoring output (``scores.parquet`` and ``manifest.json``) and a discount budget,
:func:`write_actions` writes into one folder:

- ``actions.parquet``: the scores with the action plan's columns (lifecycle segment, loyalty tier,
  value at risk, contact date, overdue; :func:`retain.actions.plan_actions`) and the recommended
  ``discount`` level (0 for none);
- ``retargeting.csv`` (:func:`retain.actions.retargeting_audience`) and, when a customers table with
  e-mails is given, ``retargeting_customer_match.csv`` (SHA-256 digests only);
- ``discounts.csv``: the customers offered a discount, best net value first
  (:class:`retain.actions.discounts.DiscountPolicy`: uplift mode when a campaign history is given,
  else rule mode);
- ``outreach.csv``: the customers to contact in the next :data:`~retain.reporting.html.CALENDAR_DAYS`
  days, by contact date;
- ``report.html``: the report (:mod:`retain.reporting.html`), with the KPIs, cohorts and the CRR
  forecast when the transactions are given;
- ``actions.json``: what was written, the budget and the counts (it also marks the folder as an
  output of this step, which :func:`publish_actions` may replace).

Its settings come from one file (:mod:`retain.jobs.action_settings`). :func:`publish_actions` does
it atomically into a folder of its own (``retain audiences``); the scoring job calls
:func:`write_actions` into its staging folder (:class:`ScoringActions`) with the frames its engine
validated, so the scores and their actions are published together and no file is read twice.

This module sits above :mod:`retain.batch` and :mod:`retain.reporting`: reporting only renders
(:class:`~retain.reporting.html.ReportData`), and imports nothing from here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from retain.batch.publish import atomic_directory, check_replaceable
from retain.errors import RetainInputError
from retain.jobs.action_settings import (
    ReportSettings,
    load_action_settings,
    load_report_settings,
)
from retain.kpis import CRRForecast, cohort_retention, forecast_crr, retention_kpis
from retain.reporting.html import (
    CALENDAR_DAYS,
    AudienceSummary,
    DiscountSection,
    ReportData,
    write_report,
)

if TYPE_CHECKING:
    from retain.actions import ActionSettings
    from retain.actions.discounts import DiscountPolicy, DiscountSettings
    from retain.batch.engine import ScoredInputs
    from retain.batch.manifest import Manifest

__all__ = [
    "ACTIONS_FOLDER",
    "ActionRun",
    "ScoringActions",
    "publish_actions",
    "write_actions",
]

ACTIONS_FOLDER: Final = "actions"
"""The sub-folder of a scoring output that holds its actions."""
SUMMARY_FILE: Final = "actions.json"
PLAN_FILE: Final = "actions.parquet"
DISCOUNTS_FILE: Final = "discounts.csv"
OUTREACH_FILE: Final = "outreach.csv"
REPORT_FILE: Final = "report.html"
_DAY: Final = pd.Timedelta(days=1)
_PERIOD_NAMES: Final = {"M": "month", "Q": "quarter", "Y": "year"}
logger = logging.getLogger("retain.jobs")


@dataclass
class ActionRun:
    """What :func:`write_actions` wrote and the figures it printed."""

    folder: Path
    as_of: str
    customers: int
    files: dict[str, str] = field(default_factory=dict)
    audiences: list[AudienceSummary] = field(default_factory=list)
    discounts: dict[str, Any] = field(default_factory=dict)
    forecast: CRRForecast | None = None
    report_bytes: int = 0
    currency: str | None = None

    def lines(self) -> list[str]:
        """A short summary for the terminal; money with its currency when one was set."""
        unit = f" {self.currency}" if self.currency else ""
        lines = [f"actions for {self.customers:,} customers as of {self.as_of} -> {self.folder}"]
        for audience in self.audiences:
            value = (
                f", {audience.value_is or 'value'} {audience.value:,.2f}{unit}"
                if audience.value is not None
                else ""
            )
            cost = f", cost {audience.cost:,.2f}{unit}" if audience.cost is not None else ""
            lines.append(f"  {audience.name}: {audience.customers:,} customers{value}{cost}")
        if self.forecast is not None:
            observed = self.forecast.observed
            last = (
                f" (last observed {observed['period'].iloc[-1]}: {observed['crr'].iloc[-1]:.1f}%)"
                if not observed.empty
                else ""
            )
            lines.append(
                f"  expected CRR {self.forecast.period}: {self.forecast.expected_crr:.1f}%{last}"
            )
        lines.append(f"  report: {self.folder / REPORT_FILE} ({self.report_bytes / 1024:,.0f} KiB)")
        return lines

    def moved_to(self, folder: Path) -> ActionRun:
        """The same run, its files named where the folder they were written in is published."""
        self.files = {name: str(folder / Path(path).name) for name, path in self.files.items()}
        self.folder = folder
        return self


# -- writing -----------------------------------------------------------------------------------


def publish_actions(
    out: str | Path,
    scores: pd.DataFrame,
    manifest: Mapping[str, Any],
    *,
    inputs: tuple[Path | None, ...] = (),
    **options: Any,
) -> ActionRun:
    """:func:`write_actions` into ``out``, published atomically: ``out`` is replaced as a whole,
    and only when everything was written. ``out`` must be new, empty or an earlier output of this
    step (it holds ``actions.json``), and must not hold any of ``inputs``."""
    out = Path(out)
    check_replaceable(out, SUMMARY_FILE, "retain audiences", inputs)
    with atomic_directory(out) as staging:
        run = write_actions(staging, scores, manifest, **options)
    return run.moved_to(out)


def write_actions(
    folder: str | Path,
    scores: pd.DataFrame,
    manifest: Mapping[str, Any],
    *,
    budget: float | None = None,
    transactions: pd.DataFrame | None = None,
    transactions_after_as_of: int = 0,
    customers: pd.DataFrame | None = None,
    campaign_history: pd.DataFrame | None = None,
    action_settings: ActionSettings | None = None,
    discount_settings: DiscountSettings | None = None,
    period: str = "M",
    active_window_days: int = 365,
    report_settings: ReportSettings | None = None,
    log: Callable[[str], None] | None = None,
) -> ActionRun:
    """Plan the actions of ``scores`` and write every output file into ``folder`` (module doc).

    ``manifest`` is the scoring run's (``as_of`` and ``horizon_days`` are needed; the model's
    name and version are shown in the report). ``budget`` caps the discounts' expected cost
    (default: the discount settings' budget). ``transactions`` (validated) give the KPIs, cohorts
    and CRR forecast; rows after ``as_of`` are left out of them (``transactions_after_as_of``
    counts such rows the caller already left out). ``report_settings`` label the report (default:
    ``RETAIN_REPORT_*`` variables, else no currency).
    """
    from retain.actions import ActionSettings, plan_actions, retargeting_audience, write_audience

    report_settings = report_settings or ReportSettings()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    as_of, horizon = _as_of(manifest), _horizon(manifest)
    action_settings = action_settings or ActionSettings()
    discount_settings = _discount_settings(discount_settings, budget)

    plan = plan_actions(scores, as_of, action_settings)
    audience = retargeting_audience(scores, action_settings, customers=customers)
    audience_files = write_audience(audience, folder, "retargeting")
    discounts = _Discounts.decide(plan, discount_settings, campaign_history, budget, log)
    plan["discount"] = discounts.recommendation["discount"].to_numpy()
    files = _write_plan_files(folder, plan, audience_files, discounts, as_of)
    kpis = _KpiSection.of(
        scores,
        as_of,
        horizon,
        transactions,
        transactions_after_as_of,
        period=period,
        active_window_days=active_window_days,
    )
    audiences = _audiences(
        audience, audience_files, discounts, files.calendar, action_settings, horizon
    )
    data = ReportData(
        as_of=as_of,
        scores=plan,
        manifest=manifest,
        kpis=kpis.kpis,
        cohorts=kpis.cohorts,
        forecast=kpis.forecast,
        segments=_segments(plan),
        tiers=_tiers(scores, action_settings),
        audiences=audiences,
        discounts=discounts.section(discount_settings),
        notes=kpis.notes,
        period_name=_PERIOD_NAMES[period],
        currency=report_settings.currency,
        active_window_days=active_window_days,
        overdue_rule=_overdue_rule(action_settings),
    )
    return _finish(folder, data, files.paths, discounts.summary, budget, report_settings)


def _discount_settings(settings: DiscountSettings | None, budget: float | None) -> DiscountSettings:
    """The discount settings in force: a given ``budget`` replaces the settings' own, so that the
    report's assumptions print the budget that was applied."""
    from retain.actions.discounts import DiscountSettings

    settings = settings or DiscountSettings()
    if budget is None:
        return settings
    return DiscountSettings(**(settings.model_dump() | {"budget": budget}))


@dataclass(frozen=True)
class _Discounts:
    """The discount policy after fitting, its recommendation for every customer, and its summary."""

    policy: DiscountPolicy
    recommendation: pd.DataFrame
    summary: dict[str, Any]

    @classmethod
    def decide(
        cls,
        plan: pd.DataFrame,
        settings: DiscountSettings,
        campaign_history: pd.DataFrame | None,
        budget: float | None,
        log: Callable[[str], None] | None,
    ) -> _Discounts:
        from retain.actions.discounts import DiscountPolicy

        policy = DiscountPolicy(settings)
        if campaign_history is not None:
            say = log or logger.info
            say(f"discounts: learning the uplift of each level from {len(campaign_history):,} rows")
            policy.fit(campaign_history)
        # Refunds can exceed purchases (net spend below 0, 22 customers in Online Retail II as of
        # 2011-09-30): such a customer's order value counts as 0 here, so no offer is worth
        # sending.
        candidates = plan
        if "spend_total" in plan:
            candidates = plan.assign(spend_total=plan["spend_total"].clip(lower=0.0))
        recommendation = policy.recommend(candidates, budget)
        return cls(policy, recommendation, policy.summary(recommendation))

    @property
    def offers(self) -> pd.DataFrame:
        """The customers offered a discount, best net value first."""
        recommendation = self.recommendation
        return recommendation.loc[recommendation["discount"] > 0].sort_values(
            ["net_value", "customer_id"], ascending=[False, True], kind="stable"
        )

    def section(self, settings: DiscountSettings) -> DiscountSection:
        """The report's discount section."""
        summary = self.summary
        return DiscountSection(
            mode=self.policy.mode,
            budget=summary.get("budget"),
            summary={k: v for k, v in summary.items() if k not in ("customers_per_level",)},
            levels=_levels(self.recommendation),
            assumptions=_assumptions(self.policy, settings),
            validation=getattr(self.policy, "validation_", None),
        )


@dataclass(frozen=True)
class _PlanFiles:
    """The files written from the plan (name -> path), and the outreach calendar among them."""

    paths: dict[str, str]
    calendar: pd.DataFrame


def _write_plan_files(
    folder: Path,
    plan: pd.DataFrame,
    audience_files: Mapping[str, Any],
    discounts: _Discounts,
    as_of: str,
) -> _PlanFiles:
    """``actions.parquet``, ``discounts.csv`` and ``outreach.csv`` (the retargeting files are
    written already): their paths, under the names ``actions.json`` lists them by."""
    plan.to_parquet(folder / PLAN_FILE, index=False)
    paths: dict[str, str] = {
        "actions": str(folder / PLAN_FILE),
        "retargeting": str(audience_files["audience"]),
    }
    if "customer_match" in audience_files:
        paths["retargeting_customer_match"] = str(audience_files["customer_match"])
    discounts.offers.to_csv(folder / DISCOUNTS_FILE, index=False)
    paths["discounts"] = str(folder / DISCOUNTS_FILE)
    calendar = _outreach(plan, as_of)
    calendar.to_csv(folder / OUTREACH_FILE, index=False, date_format="%Y-%m-%d")
    paths["outreach"] = str(folder / OUTREACH_FILE)
    return _PlanFiles(paths, calendar)


@dataclass(frozen=True)
class _KpiSection:
    """The KPIs, cohorts and CRR forecast the report shows, and the notes on what is missing."""

    kpis: pd.DataFrame | None = None
    cohorts: pd.DataFrame | None = None
    forecast: CRRForecast | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        scores: pd.DataFrame,
        as_of: str,
        horizon: int,
        transactions: pd.DataFrame | None,
        rows_left_out: int,
        *,
        period: str,
        active_window_days: int,
    ) -> _KpiSection:
        """From the transactions when given (rows after ``as_of`` left out), else the forecast
        alone, which the scores give only when ``as_of`` ends a period."""
        cutoff = pd.Timestamp(as_of, tz="UTC") + _DAY
        options: dict[str, Any] = {"period": period, "active_window_days": active_window_days}
        if transactions is not None:
            section = cls._from_transactions(
                scores, as_of, horizon, transactions, rows_left_out, cutoff, options
            )
        else:
            section = cls._from_scores(scores, as_of, horizon, cutoff, options)
        forecast = section.forecast
        if forecast is not None and forecast.extrapolated:
            section.notes.append(
                f"The CRR forecast predicts {forecast.days_predicted} days, more than the model's "
                f"{horizon}-day horizon: its constant hazard is extrapolated."
            )
        return section

    @classmethod
    def _from_transactions(
        cls,
        scores: pd.DataFrame,
        as_of: str,
        horizon: int,
        transactions: pd.DataFrame,
        rows_left_out: int,
        cutoff: pd.Timestamp,
        options: dict[str, Any],
    ) -> _KpiSection:
        notes: list[str] = []
        known = transactions.loc[(transactions["timestamp"] < cutoff).to_numpy()]
        section = cls(notes=notes)
        if known.empty:
            notes.append(f"The transactions hold nothing on or before {as_of}: no KPIs.")
        else:
            all_kpis = retention_kpis(known, **options)
            section = cls(
                kpis=all_kpis.loc[all_kpis["period_end"] <= cutoff].reset_index(drop=True),
                cohorts=cohort_retention(known, period=options["period"]),
                forecast=forecast_crr(
                    scores,
                    as_of,
                    horizon_days=horizon,
                    transactions=known,
                    kpis=all_kpis,
                    **options,
                ),
                notes=notes,
            )
        after = int(len(transactions) - len(known)) + rows_left_out
        if after:
            notes.append(
                f"{after:,} transaction rows after {as_of} are left out of the KPIs and the forecast."
            )
        return section

    @classmethod
    def _from_scores(
        cls,
        scores: pd.DataFrame,
        as_of: str,
        horizon: int,
        cutoff: pd.Timestamp,
        options: dict[str, Any],
    ) -> _KpiSection:
        notes = [
            "No transactions were given: the KPIs per period, the cohorts and the last observed "
            "CRRs are not shown (give --transactions)."
        ]
        period_start = pd.Period(cutoff.tz_localize(None), freq=options["period"]).start_time
        if cutoff == period_start.tz_localize("UTC"):
            forecast = forecast_crr(scores, as_of, horizon_days=horizon, **options)
            return cls(forecast=forecast, notes=notes)
        notes.append(
            f"The CRR forecast needs the transactions: {as_of} is not the last day of a "
            "period, so who was active at the period start is not in the scores."
        )
        return cls(notes=notes)


def _segments(plan: pd.DataFrame) -> pd.DataFrame:
    from retain.actions import segment_summary

    return segment_summary(plan)


def _tiers(scores: pd.DataFrame, settings: ActionSettings) -> Any:
    from retain.actions import tier_cuts

    return tier_cuts(scores["clv"], settings)


def _finish(
    folder: Path,
    data: ReportData,
    files: dict[str, str],
    discounts: dict[str, Any],
    budget: float | None,
    report_settings: ReportSettings,
) -> ActionRun:
    """Write ``report.html`` and ``actions.json``: the last two files, which list the others."""
    report = write_report(data, folder / REPORT_FILE)
    files["report"] = str(report)
    run = ActionRun(
        folder=folder,
        as_of=data.as_of,
        customers=len(data.scores),
        files=files,
        audiences=list(data.audiences),
        discounts=discounts,
        forecast=data.forecast,
        report_bytes=report.stat().st_size,
        currency=report_settings.currency,
    )
    _write_summary(run, folder / SUMMARY_FILE, budget)
    files["summary"] = str(folder / SUMMARY_FILE)
    return run


# -- the scoring job's step --------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringActions:
    """The scoring job's step after the scores (``retain score``, unless ``--no-actions``): the
    actions of the scores just written into the job's staging folder, into ``actions/`` inside
    it, with the KPIs from the frames the engine validated (nothing is read again), so they are
    published with the scores."""

    out: Path
    budget: float | None
    action_settings: ActionSettings
    discount_settings: DiscountSettings
    report_settings: ReportSettings = field(default_factory=ReportSettings)

    @classmethod
    def prepare(cls, out: Path, budget: float | None, settings: Path | None) -> ScoringActions:
        """Read the settings file now, so that a mistake in it fails before the scoring."""
        if settings is not None and Path(settings).resolve().is_relative_to(Path(out).resolve()):
            raise RetainInputError(
                f"output: {settings} is inside {out}, which the job replaces as a whole; give "
                "another output folder"
            )
        action_settings, discount_settings = load_action_settings(settings)
        return cls(
            Path(out), budget, action_settings, discount_settings, load_report_settings(settings)
        )

    def write(
        self, folder: Path, manifest: Manifest, inputs: ScoredInputs, log: Callable[[str], None]
    ) -> ActionRun:
        """Write the actions into ``folder/actions`` (the staging folder) and log their lines."""
        from retain.data.contract import SCORES_FILE

        customers = inputs.customers
        run = write_actions(
            folder / ACTIONS_FOLDER,
            pd.read_parquet(folder / SCORES_FILE),
            manifest.model_dump(mode="json"),
            budget=self.budget,
            transactions=inputs.transactions,
            transactions_after_as_of=inputs.transactions_after_as_of,
            customers=customers if customers is not None and "email" in customers else None,
            action_settings=self.action_settings,
            discount_settings=self.discount_settings,
            report_settings=self.report_settings,
            log=log,
        )
        run = run.moved_to(self.out / ACTIONS_FOLDER)  # where the job publishes its staging
        for line in run.lines():
            log(line)
        return run


# -- helpers -----------------------------------------------------------------------------------


def _as_of(manifest: Mapping[str, Any]) -> str:
    from retain.data.dates import utc_day

    if "as_of" not in manifest:
        raise RetainInputError("scores: the manifest has no as_of")
    return f"{utc_day(manifest['as_of'], 'as_of'):%Y-%m-%d}"


def _horizon(manifest: Mapping[str, Any]) -> int:
    horizon = manifest.get("horizon_days") or (manifest.get("model") or {}).get("horizon_days")
    if not isinstance(horizon, int) or horizon <= 0:
        raise RetainInputError(
            f"scores: the manifest's horizon_days is not a day count: {horizon!r}"
        )
    return horizon


def _outreach(plan: pd.DataFrame, as_of: str) -> pd.DataFrame:
    """The customers whose contact date falls in the calendar (as_of and the days after it)."""
    first = pd.Timestamp(as_of)
    contact = pd.to_datetime(plan["contact_date"])
    due = (contact >= first) & (contact < first + CALENDAR_DAYS * _DAY)
    columns = [
        c
        for c in (
            "customer_id",
            "contact_date",
            "expected_next_purchase_date",
            "overdue",
            "days_overdue",
            "lifecycle_segment",
            "loyalty_tier",
            "p_purchase_30d",
            "churn_probability",
            "clv",
            "value_at_risk",
            "action",
            "discount",
        )
        if c in plan
    ]
    calendar = plan.loc[due.to_numpy(), columns]
    return calendar.sort_values(
        ["contact_date", "value_at_risk", "customer_id"],
        ascending=[True, False, True],
        kind="stable",
    ).reset_index(drop=True)


def _audiences(
    audience: pd.DataFrame,
    files: Mapping[str, Any],
    decided: _Discounts,
    calendar: pd.DataFrame,
    settings: ActionSettings,
    horizon: int,
) -> list[AudienceSummary]:
    rules = settings.audience
    offers, discounts = decided.offers, decided.summary
    summaries = [
        AudienceSummary(
            name="retargeting",
            customers=len(audience),
            value=float(audience["value_at_risk"].sum()),
            value_is="value at risk",
            cost=None,
            file=Path(str(files["audience"])).name,
            description=f"churn probability at least {rules.min_churn_probability:g}, ranked by "
            f"value at risk (churn probability x CLV over the next {horizon} days: what these "
            "customers would take with them, not what retargeting brings back); the media cost "
            "is set on the ad platform",
        )
    ]
    if "customer_match" in files:
        summaries.append(
            AudienceSummary(
                name="retargeting (customer match)",
                customers=int(files["customer_match_rows"]),
                file=Path(str(files["customer_match"])).name,
                description=f"SHA-256 of the normalised e-mails of the audience; "
                f"{int(files['rows_without_email']):,} customers have no usable e-mail",
            )
        )
    summaries.append(
        AudienceSummary(
            name="discounts",
            customers=len(offers),
            value=float(discounts["expected_incremental_margin"]),
            value_is="expected incremental margin",
            cost=float(discounts["expected_cost"]),
            file=DISCOUNTS_FILE,
            description=f"{discounts['mode']} mode; value = expected incremental margin, cost = "
            f"expected discount cost (net {float(discounts['expected_net_value']):,.2f})",
        )
    )
    overdue = int(calendar["overdue"].sum()) if "overdue" in calendar else 0
    summaries.append(
        AudienceSummary(
            name="outreach",
            customers=len(calendar),
            file=OUTREACH_FILE,
            description=f"contact date in the next {CALENDAR_DAYS} days; {overdue:,} of these "
            f"{len(calendar):,} are overdue ({_overdue_rule(settings)})",
        )
    )
    return summaries


def _overdue_rule(settings: ActionSettings) -> str:
    """When a customer is overdue, in words (:mod:`retain.actions.outreach`), for the report."""
    rules = settings.outreach
    gap = "their usual gap" if rules.gap_factor == 1 else f"{rules.gap_factor:g} x their usual gap"
    return (
        f"whose days since their last order exceed {gap} between orders by more than "
        f"{rules.grace_days:g} days"
    )


def _assumptions(policy: object, settings: DiscountSettings) -> list[str]:
    """The policy's own account (its settings, its mode and, in uplift mode, its held-out Qini)
    where it gives one, else the settings' assumptions."""
    describe = getattr(policy, "describe", None)
    lines = describe() if callable(describe) else settings.describe()
    return [str(line) for line in lines]


def _levels(recommendation: pd.DataFrame) -> pd.DataFrame:
    grouped = recommendation.groupby("discount", sort=True)
    levels = pd.DataFrame(
        {
            "customers": grouped.size().astype("int64"),
            "expected_incremental_margin": grouped["expected_incremental_margin"].sum(),
            "expected_cost": grouped["expected_cost"].sum(),
            "net_value": grouped["net_value"].sum(),
        }
    )
    levels.index = [f"{level:.0%}" if level > 0 else "none" for level in levels.index]
    levels.index.name = "level"
    return levels


def _write_summary(run: ActionRun, path: Path, budget: float | None) -> None:
    summary = {
        "as_of": run.as_of,
        "customers": run.customers,
        "budget": budget,
        "currency": run.currency,
        "files": {name: Path(p).name for name, p in run.files.items()},
        "audiences": [
            {
                "name": a.name,
                "customers": a.customers,
                "value": a.value,
                "value_is": a.value_is,
                "cost": a.cost,
                "file": a.file,
            }
            for a in run.audiences
        ],
        "discounts": {
            k: ({str(level): n for level, n in v.items()} if isinstance(v, dict) else v)
            for k, v in run.discounts.items()
        },
        "crr_forecast": run.forecast.as_dict() if run.forecast is not None else None,
    }
    path.write_text(json.dumps(summary, indent=2, default=_json) + "\n", encoding="utf-8")


def _json(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()  # numpy scalars
    return str(value)
