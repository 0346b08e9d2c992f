"""What ``retain audiences`` and the scoring job write beside the scores: the action plan, the
audiences and the HTML report.

From a scoring output (``scores.parquet`` and ``manifest.json``, see :mod:`retain.batch`) and a
discount budget, :func:`write_actions` writes into one folder:

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

The report's own settings (:class:`ReportSettings`: the currency its money figures are labelled
with) come from a ``[report]`` table of the same settings file, or ``RETAIN_REPORT_*`` variables::

    [report]
    currency = "GBP"

:func:`publish_actions` does it atomically into a folder of its own (``retain audiences``); the
scoring job calls :func:`write_actions` into its staging folder, so the scores and their actions are
published together.
"""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from retain.batch.publish import check_replaceable
from retain.batch.settings import BatchSettings
from retain.errors import RetainInputError
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
    from retain.actions.discounts import DiscountSettings
    from retain.batch.manifest import Manifest

__all__ = [
    "ACTIONS_FOLDER",
    "ActionRun",
    "JobActions",
    "ReportSettings",
    "load_action_settings",
    "load_report_settings",
    "publish_actions",
    "read_campaign_history",
    "read_scores",
    "write_actions",
]

ACTIONS_FOLDER: Final = "actions"
"""The sub-folder of a scoring output that holds its actions."""
SUMMARY_FILE: Final = "actions.json"
PLAN_FILE: Final = "actions.parquet"
DISCOUNTS_FILE: Final = "discounts.csv"
OUTREACH_FILE: Final = "outreach.csv"
REPORT_FILE: Final = "report.html"
_SCORES_FILE: Final = "scores.parquet"
_MANIFEST_FILE: Final = "manifest.json"
_DAY: Final = pd.Timedelta(days=1)
_REPORT_TABLE: Final = "report"
logger = logging.getLogger("retain.reporting")


class ReportSettings(BaseSettings):
    """How the report labels its figures: a ``[report]`` table in the action settings file, or
    ``RETAIN_REPORT_<FIELD>`` environment variables (the file wins)."""

    model_config = SettingsConfigDict(env_prefix="RETAIN_REPORT_", extra="forbid", frozen=True)

    currency: str | None = Field(default=None, min_length=1, max_length=8, pattern=r"^\S+$")
    """The currency of the transactions' amounts, as it should be shown: a code such as GBP or
    EUR, or a symbol. retain converts nothing; the amounts stay as they are. Default: none, and
    money figures are labelled "amount" (the unit of the amount column)."""

    def __init__(self, **values: Any) -> None:
        """A bad value is a :class:`RetainInputError` naming the field."""
        try:
            super().__init__(**values)
        except (SettingsError, ValidationError) as error:
            raise RetainInputError(f"report settings: {error}") from error


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


# -- inputs ------------------------------------------------------------------------------------


def read_scores(folder: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``scores.parquet`` (a file, or a folder of part files as the Spark engine writes it) and
    ``manifest.json`` of a scoring output."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RetainInputError(
            f"scores: {folder} is not a folder (give the output of retain score)"
        )
    path = folder / _SCORES_FILE
    if not path.exists():
        raise RetainInputError(f"scores: no {_SCORES_FILE} in {folder}")
    manifest_path = folder / _MANIFEST_FILE
    if not manifest_path.is_file():
        raise RetainInputError(f"scores: no {_MANIFEST_FILE} in {folder}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RetainInputError(f"scores: cannot read {manifest_path}: {error}") from error
    if not isinstance(manifest, dict) or "as_of" not in manifest:
        raise RetainInputError(f"scores: {manifest_path} has no as_of")
    try:
        scores = pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise RetainInputError(f"scores: cannot read {path}: {error}") from error
    if scores.empty:
        raise RetainInputError(f"scores: {path} holds no customer")
    if "customer_id" not in scores:
        raise RetainInputError(f"scores: {path} has no customer_id column")
    return scores, manifest


def load_action_settings(path: str | Path | None) -> tuple[ActionSettings, DiscountSettings]:
    """The action plan's settings and the discount settings, from one TOML or JSON file.

    The file's ``[discounts]`` table holds :class:`~retain.actions.discounts.DiscountSettings`
    fields (levels, margin_rate, response_rates, ...); its other tables are
    :class:`~retain.actions.ActionSettings` parts (segments, tiers, outreach, audience). Without a
    file: the defaults (and the ``RETAIN_ACTIONS_*`` variables).
    """
    from retain.actions import ActionSettings
    from retain.actions.discounts import DiscountSettings

    if path is None:
        return ActionSettings(), DiscountSettings()
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise RetainInputError(f"settings: {path} is neither a .toml nor a .json file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise RetainInputError(f"settings: no file at {path}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise RetainInputError(f"settings: cannot read {path}: {error}") from error
    try:
        values = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise RetainInputError(f"settings: cannot read {path}: {error}") from error
    if not isinstance(values, dict):
        raise RetainInputError(f"settings: {path} must hold tables of settings")
    values.pop(_REPORT_TABLE, None)  # the report's own table: load_report_settings
    discounts = values.pop("discounts", {})
    if not isinstance(discounts, dict):
        raise RetainInputError(f"settings: [discounts] in {path} must be a table")
    try:
        return ActionSettings(**values), DiscountSettings(**discounts)
    except RetainInputError as error:
        raise RetainInputError(f"{error} (in {path})") from error


def load_report_settings(path: str | Path | None) -> ReportSettings:
    """The ``[report]`` table of the settings file that :func:`load_action_settings` reads (what
    it leaves out from ``RETAIN_REPORT_*`` variables, then the defaults); without a file, the
    variables and the defaults. The file was read once already, so its errors were reported."""
    if path is None:
        return ReportSettings()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        values = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise RetainInputError(f"settings: cannot read {path}: {error}") from error
    table = values.get(_REPORT_TABLE, {}) if isinstance(values, dict) else {}
    if not isinstance(table, dict):
        raise RetainInputError(f"settings: [{_REPORT_TABLE}] in {path} must be a table")
    try:
        return ReportSettings(**table)
    except RetainInputError as error:
        raise RetainInputError(f"{error} (in {path})") from error


def read_campaign_history(path: str | Path) -> pd.DataFrame:
    """A campaign history file (CSV or parquet): one row per customer with ``customer_id``,
    ``treatment`` (the discount level they got, 0 for the control group), ``purchased`` (0/1),
    ``revenue`` and the features (their scores at the campaign's start)."""
    path = Path(path)
    if not path.exists():
        raise RetainInputError(f"campaign history: no file at {path}")
    name = path.name.lower()
    try:
        if name.endswith(".parquet") or path.is_dir():
            history = pd.read_parquet(path)
        elif name.endswith((".csv", ".csv.gz")):
            history = pd.read_csv(path, dtype={"customer_id": "str"})
        else:
            raise RetainInputError(
                f"campaign history: {path} is neither parquet nor CSV (.parquet or .csv)"
            )
    except (OSError, ValueError, pd.errors.ParserError) as error:
        if isinstance(error, RetainInputError):
            raise
        raise RetainInputError(f"campaign history: cannot read {path}: {error}") from error
    if history.empty:
        raise RetainInputError(f"campaign history: {path} holds no row")
    if "customer_id" in history:
        history["customer_id"] = history["customer_id"].astype("str")
    return history


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
    from retain.batch.publish import atomic_directory

    out = Path(out)
    check_replaceable(out, SUMMARY_FILE, "retain audiences", inputs)
    with atomic_directory(out) as staging:
        run = write_actions(staging, scores, manifest, **options)
    run.folder = out
    run.files = {name: str(out / Path(path).name) for name, path in run.files.items()}
    return run


def write_actions(
    folder: str | Path,
    scores: pd.DataFrame,
    manifest: Mapping[str, Any],
    *,
    budget: float | None = None,
    transactions: pd.DataFrame | None = None,
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
    and CRR forecast; rows after ``as_of`` are left out of them. ``report_settings`` label the
    report (default: ``RETAIN_REPORT_*`` variables, else no currency).
    """
    from retain.actions import (
        ActionSettings,
        plan_actions,
        retargeting_audience,
        segment_summary,
        tier_cuts,
        write_audience,
    )
    from retain.actions.discounts import DiscountPolicy, DiscountSettings

    say = log or logger.info
    report_settings = report_settings or ReportSettings()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    as_of, horizon = _as_of(manifest), _horizon(manifest)
    action_settings = action_settings or ActionSettings()
    discount_settings = discount_settings or DiscountSettings()
    if budget is not None:  # the budget in force, as the report's assumptions print it
        discount_settings = DiscountSettings(
            **(discount_settings.model_dump() | {"budget": budget})
        )
    notes: list[str] = []

    plan = plan_actions(scores, as_of, action_settings)
    audience = retargeting_audience(scores, action_settings, customers=customers)
    audience_files = write_audience(audience, folder, "retargeting")

    policy = DiscountPolicy(discount_settings)
    if campaign_history is not None:
        say(f"discounts: learning the uplift of each level from {len(campaign_history):,} rows")
        policy.fit(campaign_history)
    # Refunds can exceed purchases (net spend below 0, 22 customers in Online Retail II as of
    # 2011-09-30): such a customer's order value counts as 0 here, so no offer is worth sending.
    candidates = plan
    if "spend_total" in plan:
        candidates = plan.assign(spend_total=plan["spend_total"].clip(lower=0.0))
    recommendation = policy.recommend(candidates, budget)
    discount_summary = policy.summary(recommendation)
    plan["discount"] = recommendation["discount"].to_numpy()

    files: dict[str, str] = {
        "actions": str(_write_parquet(plan, folder / PLAN_FILE)),
        "retargeting": str(audience_files["audience"]),
    }
    if "customer_match" in audience_files:
        files["retargeting_customer_match"] = str(audience_files["customer_match"])
    offers = recommendation.loc[recommendation["discount"] > 0].sort_values(
        ["net_value", "customer_id"], ascending=[False, True], kind="stable"
    )
    offers.to_csv(folder / DISCOUNTS_FILE, index=False)
    files["discounts"] = str(folder / DISCOUNTS_FILE)
    calendar = _outreach(plan, as_of)
    calendar.to_csv(folder / OUTREACH_FILE, index=False, date_format="%Y-%m-%d")
    files["outreach"] = str(folder / OUTREACH_FILE)

    kpis = cohorts = None
    forecast = None
    cutoff = pd.Timestamp(as_of, tz="UTC") + _DAY
    if transactions is not None:
        known = transactions.loc[(transactions["timestamp"] < cutoff).to_numpy()]
        if known.empty:
            notes.append(f"The transactions hold nothing on or before {as_of}: no KPIs.")
        else:
            all_kpis = retention_kpis(known, period=period, active_window_days=active_window_days)
            kpis = all_kpis.loc[all_kpis["period_end"] <= cutoff].reset_index(drop=True)
            cohorts = cohort_retention(known, period=period)
            forecast = forecast_crr(
                scores,
                as_of,
                horizon_days=horizon,
                transactions=known,
                period=period,
                active_window_days=active_window_days,
                kpis=all_kpis,
            )
        after = int(len(transactions) - len(known))
        if after:
            notes.append(
                f"{after:,} transaction rows after {as_of} are left out of the KPIs and the forecast."
            )
    else:
        notes.append(
            "No transactions were given: the KPIs per period, the cohorts and the last observed "
            "CRRs are not shown (give --transactions)."
        )
        if cutoff == pd.Period(cutoff.tz_localize(None), freq=period).start_time.tz_localize("UTC"):
            forecast = forecast_crr(
                scores,
                as_of,
                horizon_days=horizon,
                period=period,
                active_window_days=active_window_days,
            )
        else:
            notes.append(
                f"The CRR forecast needs the transactions: {as_of} is not the last day of a "
                "period, so who was active at the period start is not in the scores."
            )
    if forecast is not None and forecast.extrapolated:
        notes.append(
            f"The CRR forecast predicts {forecast.days_predicted} days, more than the model's "
            f"{horizon}-day horizon: its constant hazard is extrapolated."
        )

    audiences = _audiences(
        audience, audience_files, offers, discount_summary, calendar, action_settings, horizon
    )
    levels = _levels(recommendation)
    discount_section = DiscountSection(
        mode=policy.mode,
        budget=discount_summary.get("budget"),
        summary={k: v for k, v in discount_summary.items() if k not in ("customers_per_level",)},
        levels=levels,
        assumptions=_assumptions(policy, discount_settings),
        validation=getattr(policy, "validation_", None),
    )
    tiers = tier_cuts(scores["clv"], action_settings)
    data = ReportData(
        as_of=as_of,
        scores=plan,
        manifest=manifest,
        kpis=kpis,
        cohorts=cohorts,
        forecast=forecast,
        segments=segment_summary(plan),
        tiers=tiers,
        audiences=audiences,
        discounts=discount_section,
        notes=notes,
        period_name={"M": "month", "Q": "quarter", "Y": "year"}[period],
        currency=report_settings.currency,
        active_window_days=active_window_days,
        overdue_rule=_overdue_rule(action_settings),
    )
    report = write_report(data, folder / REPORT_FILE)
    files["report"] = str(report)
    run = ActionRun(
        folder=folder,
        as_of=as_of,
        customers=len(plan),
        files=files,
        audiences=audiences,
        discounts=discount_summary,
        forecast=forecast,
        report_bytes=report.stat().st_size,
        currency=report_settings.currency,
    )
    _write_summary(run, folder / SUMMARY_FILE, budget)
    files["summary"] = str(folder / SUMMARY_FILE)
    return run


@dataclass(frozen=True)
class JobActions:
    """The scoring job's step after the scores (``retain score``, unless ``--no-actions``): read
    them back from the job's staging folder and write their actions into ``actions/`` inside it,
    with the KPIs from the job's own transactions file, so they are published with the scores."""

    settings: BatchSettings
    action_settings: ActionSettings
    discount_settings: DiscountSettings
    report_settings: ReportSettings = field(default_factory=ReportSettings)

    @classmethod
    def prepare(cls, settings: BatchSettings) -> JobActions:
        """Read the settings file now, so that a mistake in it fails before the scoring."""
        if settings.action_settings is not None and Path(
            settings.action_settings
        ).resolve().is_relative_to(Path(settings.out).resolve()):
            raise RetainInputError(
                f"output: {settings.action_settings} is inside {settings.out}, which the job "
                "replaces as a whole; give another output folder"
            )
        action_settings, discount_settings = load_action_settings(settings.action_settings)
        report_settings = load_report_settings(settings.action_settings)
        return cls(settings, action_settings, discount_settings, report_settings)

    def write(self, folder: Path, manifest: Manifest, log: Callable[[str], None]) -> ActionRun:
        from retain.data.columns import ColumnMapping
        from retain.data.contract import CUSTOMERS, TRANSACTIONS
        from retain.data.io import load_table

        settings = self.settings
        scores = pd.read_parquet(folder / _SCORES_FILE)
        quiet = settings.validation.model_copy(update={"strict": False})
        transactions = load_table(
            settings.transactions, TRANSACTIONS, ColumnMapping(settings.columns), quiet
        ).frame
        customers = None
        if settings.customers is not None:
            table = load_table(
                settings.customers, CUSTOMERS, ColumnMapping(settings.customer_columns), quiet
            ).frame
            customers = table if "email" in table else None
        run = write_actions(
            folder / ACTIONS_FOLDER,
            scores,
            manifest.model_dump(mode="json"),
            budget=settings.budget,
            transactions=transactions,
            customers=customers,
            action_settings=self.action_settings,
            discount_settings=self.discount_settings,
            report_settings=self.report_settings,
            log=log,
        )
        final = Path(settings.out) / ACTIONS_FOLDER  # where the job publishes the staging folder
        run.files = {name: str(final / Path(path).name) for name, path in run.files.items()}
        run.folder = final
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
    offers: pd.DataFrame,
    discounts: Mapping[str, Any],
    calendar: pd.DataFrame,
    settings: ActionSettings,
    horizon: int,
) -> list[AudienceSummary]:
    rules = settings.audience
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


def _write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path, index=False)
    return path


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
