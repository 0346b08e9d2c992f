"""Backtest: the temporal holdout repeated at several cutoffs, and what holds across them.

One holdout is one season: a model can beat its baselines after Christmas and lose after the
summer. A backtest runs :func:`~retain.evaluation.holdout.temporal_holdout` at several cutoffs,
the last at ``data end - horizon_days`` and earlier ones ``step_days`` apart (by default a whole
horizon, so the judged horizons do not overlap and each cutoff is new evidence), and stacks the
metrics into one long table with a summary across cutoffs.

Time discipline: each cutoff's holdout gets the transactions up to ``cutoff + horizon_days`` and
nothing later, so a backtest cannot be helped by data its cutoff could not have had; the model is
trained afresh at every cutoff (from ``model_factory``) on the history up to that cutoff.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from retain.data.dates import DateLike, utc_day
from retain.errors import RetainInputError
from retain.evaluation.comparison import BEST_COLUMN, compare, text_table
from retain.evaluation.holdout import HoldoutResult, temporal_holdout
from retain.features import to_cutoff
from retain.models.btyd.tracking import cumulative_repeat_transactions, purchase_days
from retain.models.retention import RetentionModel
from retain.models.training import up_to

__all__ = [
    "METRICS_COLUMNS",
    "SUMMARY_COLUMNS",
    "BacktestResult",
    "DataSummary",
    "backtest",
    "format_summary",
    "stack_metrics",
    "summarize_backtest",
]

METRICS_COLUMNS = ["cutoff", "contender", "metric", "value", "best"]
"""Columns of the long metrics table: one row per cutoff x contender x metric. ``value`` is NaN
where a contender has no such metric (the naive rule has no Brier score); ``best`` says whether
the contender was (one of) the best on that metric at that cutoff."""

SUMMARY_COLUMNS = ["metric", "contender", "cutoffs", "mean", "min", "max", "wins"]
"""Columns of the summary: per metric and contender, the cutoffs with a value, the mean, lowest
and highest value across them, and ``wins``, the cutoffs where the contender was (one of) the
best. The retain rows' ``wins`` is how many cutoffs retain won the metric."""

TRACKING_PERIOD_DAYS = 7
"""Periods of the cumulative repeat transactions curve: weeks, as in the BTYD papers."""


MIN_HISTORY_DAYS: Final = 56
"""Least history before a backtest cutoff: eight weeks (see :func:`_check_history`)."""


@dataclass(frozen=True)
class DataSummary:
    """What the backtest read: the transactions up to the latest cutoff's horizon end."""

    rows: int
    customers: int
    first_day: pd.Timestamp
    last_day: pd.Timestamp  # the latest cutoff + horizon: nothing after it was read
    data_end: pd.Timestamp  # the last transaction day of the data given


@dataclass
class BacktestResult:
    """Every cutoff's holdout (oldest first), the long metrics table and the summary.

    ``tracking`` and ``rfm`` describe the latest cutoff for the report: the cumulative repeat
    transactions of its customers, actual against the BG/NBD fitted at that cutoff, to the end of
    its horizon; and each customer's ``frequency`` (repeat purchase days), ``recency`` and ``T``
    (days) at the cutoff, which set the extent of the frequency/recency matrices.
    """

    horizon_days: int
    step_days: int | None  # None: the cutoffs were given
    holdouts: list[HoldoutResult]
    metrics: pd.DataFrame
    summary: pd.DataFrame
    data: DataSummary
    tracking: pd.DataFrame
    rfm: pd.DataFrame

    @property
    def cutoffs(self) -> list[pd.Timestamp]:
        return [holdout.as_of for holdout in self.holdouts]

    @property
    def latest(self) -> HoldoutResult:
        return self.holdouts[-1]

    def table(self, cutoff: DateLike | None = None) -> pd.DataFrame:
        """The comparison table (:func:`~retain.evaluation.compare`) of one cutoff (default: the
        latest)."""
        if cutoff is None:
            return self.latest.table()
        day = to_cutoff(cutoff)
        for holdout in self.holdouts:
            if holdout.as_of == day:
                return holdout.table()
        raise RetainInputError(
            f"{day:%Y-%m-%d} is not a cutoff of this backtest; its cutoffs are "
            f"{', '.join(f'{c:%Y-%m-%d}' for c in self.cutoffs)}"
        )


def backtest(
    transactions: pd.DataFrame,
    cutoffs: Sequence[DateLike] | None = None,
    *,
    horizon_days: int,
    n_cutoffs: int | None = None,
    step_days: int | None = None,
    last_cutoff: DateLike | None = None,
    model_factory: Callable[[int], RetentionModel] | None = None,
) -> BacktestResult:
    """Temporal holdouts at several cutoffs: retain, BG/NBD + Gamma-Gamma and the naive rule.

    Either give ``cutoffs`` (any days, each with a full horizon of data after it), or let them be
    placed: ``n_cutoffs`` (default 1) cutoffs, the last at ``last_cutoff`` (default: the last
    transaction day minus ``horizon_days``), earlier ones ``step_days`` apart (default:
    ``horizon_days``, so the judged horizons do not overlap). ``model_factory(horizon_days)``
    makes the unfitted :class:`~retain.models.retention.RetentionModel` trained at each cutoff
    (default: ``RetentionModel(horizon_days)``); a fresh one per cutoff, so nothing learned at one
    cutoff leaks into another.

    Each cutoff's holdout sees the transactions up to ``cutoff + horizon_days`` only.
    """
    _check_transactions(transactions)
    horizon = _whole_number("horizon_days", horizon_days)
    first_day = utc_day(transactions["timestamp"].min(), "first transaction")
    data_end = utc_day(transactions["timestamp"].max(), "last transaction")
    length = pd.Timedelta(days=horizon)
    days, step = _place_cutoffs(cutoffs, horizon, data_end, n_cutoffs, step_days, last_cutoff)
    _check_history(transactions, days, horizon, step)

    factory = model_factory or RetentionModel
    holdouts = []
    for day in days:
        end = day + length
        model = _fresh_model(factory, horizon)
        try:
            holdouts.append(
                temporal_holdout(up_to(transactions, end), day, horizon, model, observed_until=end)
            )
        except RetainInputError as error:
            raise RetainInputError(f"backtest cutoff {day:%Y-%m-%d}: {error}") from error

    latest = holdouts[-1]
    history = up_to(transactions, latest.as_of + length)
    tracking, rfm = _latest_cohort(history, latest)
    metrics = stack_metrics({h.as_of: h.metrics for h in holdouts})
    return BacktestResult(
        horizon_days=horizon,
        step_days=step,
        holdouts=holdouts,
        metrics=metrics,
        summary=summarize_backtest(metrics),
        data=DataSummary(
            rows=len(history),
            customers=int(history["customer_id"].nunique()),
            first_day=first_day,
            last_day=latest.as_of + length,
            data_end=data_end,
        ),
        tracking=tracking,
        rfm=rfm,
    )


def _place_cutoffs(
    cutoffs: Sequence[DateLike] | None,
    horizon: int,
    data_end: pd.Timestamp,
    n_cutoffs: int | None,
    step_days: int | None,
    last_cutoff: DateLike | None,
) -> tuple[list[pd.Timestamp], int | None]:
    """The cutoff days (oldest first) and the step between them (None: the cutoffs were given),
    each with a whole horizon of data after it (see :func:`backtest`)."""
    length = pd.Timedelta(days=horizon)
    if cutoffs is not None:
        if n_cutoffs is not None or step_days is not None or last_cutoff is not None:
            raise RetainInputError(
                "give either cutoffs, or n_cutoffs / step_days / last_cutoff to place them, "
                "not both"
            )
        days = _given_cutoffs(cutoffs)
        step = None
    else:
        count = 1 if n_cutoffs is None else _whole_number("n_cutoffs", n_cutoffs)
        step = horizon if step_days is None else _whole_number("step_days", step_days)
        last = data_end - length if last_cutoff is None else to_cutoff(last_cutoff)
        days = [last - pd.Timedelta(days=k * step) for k in reversed(range(count))]
    late = [c for c in days if c + length > data_end]
    if late:
        raise RetainInputError(
            f"the transactions end on {data_end:%Y-%m-%d}, but a {horizon}-day horizon after "
            f"cutoff {late[-1]:%Y-%m-%d} needs data up to {late[-1] + length:%Y-%m-%d}; the "
            f"latest cutoff can be {data_end - length:%Y-%m-%d}"
        )
    return days, step


def _fresh_model(factory: Callable[[int], RetentionModel], horizon: int) -> RetentionModel:
    """An unfitted model for the horizon from ``factory``: a fitted one could have seen the
    horizon it is judged on."""
    model = factory(horizon)
    if not isinstance(model, RetentionModel):
        raise RetainInputError(
            f"model_factory must return a RetentionModel, not {type(model).__name__}"
        )
    if hasattr(model, "churn_"):
        raise RetainInputError(
            "model_factory returned a fitted model: the backtest trains a fresh model at "
            "every cutoff, so that no cutoff is judged by a model that saw its horizon"
        )
    if model.horizon_days != horizon:
        raise RetainInputError(
            f"model_factory made a model for a {model.horizon_days}-day horizon, but the "
            f"backtest judges {horizon} days"
        )
    return model


def stack_metrics(
    metrics_by_cutoff: Mapping[DateLike, Mapping[str, Mapping[str, float]]],
) -> pd.DataFrame:
    """The long table (:data:`METRICS_COLUMNS`) of ``{cutoff: {contender: {metric: value}}}``.

    Every cutoff x contender x metric has a row, NaN where a contender lacks the metric, so the
    table is complete and a pivot of it is rectangular. ``best`` comes from
    :func:`~retain.evaluation.compare` at each cutoff (ties: every tied contender is best).
    """
    if not isinstance(metrics_by_cutoff, Mapping) or not metrics_by_cutoff:
        raise RetainInputError(
            "metrics_by_cutoff must be a non-empty dict {cutoff: {contender: {metric: value}}}"
        )
    tables = {to_cutoff(cutoff): compare(results) for cutoff, results in metrics_by_cutoff.items()}
    if len(tables) != len(metrics_by_cutoff):
        raise RetainInputError("metrics_by_cutoff names the same cutoff day more than once")
    contenders: dict[str, None] = {}  # ordered sets, in first-seen order
    metric_names: dict[str, None] = {}
    for table in tables.values():
        contenders.update(dict.fromkeys(str(c) for c in table.columns if c != BEST_COLUMN))
        metric_names.update(dict.fromkeys(str(m) for m in table.index))
    rows = []
    for cutoff in sorted(tables):
        table = tables[cutoff]
        values = table.reindex(index=list(metric_names), columns=list(contenders))
        best = table[BEST_COLUMN].reindex(list(metric_names)).fillna("")
        for metric, row, winners in zip(
            metric_names, values.to_numpy(dtype=np.float64), best.astype(str), strict=True
        ):
            named = set(winners.split(", "))
            for contender, value in zip(contenders, row, strict=True):
                rows.append((cutoff, contender, metric, float(value), contender in named))
    long = pd.DataFrame(rows, columns=METRICS_COLUMNS)
    long["cutoff"] = pd.to_datetime(long["cutoff"])
    return long


def summarize_backtest(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per metric and contender, across cutoffs: count, mean, min, max and wins
    (:data:`SUMMARY_COLUMNS`), in the long table's order of metrics and contenders."""
    if not isinstance(metrics, pd.DataFrame) or not set(METRICS_COLUMNS) <= set(metrics.columns):
        raise RetainInputError(
            f"metrics must be the long table of stack_metrics() (columns "
            f"{', '.join(METRICS_COLUMNS)})"
        )
    grouped = metrics.groupby(["metric", "contender"], sort=False)
    summary = grouped["value"].agg(cutoffs="count", mean="mean", min="min", max="max")
    summary["wins"] = grouped["best"].sum().astype("int64")
    return summary.reset_index()[SUMMARY_COLUMNS]


def format_summary(summary: pd.DataFrame, n_cutoffs: int) -> str:
    """The summary as aligned text: ``mean [min, max]`` per contender and retain's wins.

    With one cutoff the mean, min and max are that cutoff's values, already printed in its table,
    so a single line says how many metrics retain won instead.
    """
    if not isinstance(summary, pd.DataFrame) or not set(SUMMARY_COLUMNS) <= set(summary.columns):
        raise RetainInputError("summary must be the table of summarize_backtest()")
    metric_names = list(dict.fromkeys(summary["metric"]))
    retain = summary[summary["contender"] == "retain"].set_index("metric")
    if n_cutoffs == 1:
        won = int((retain["wins"] > 0).sum()) if len(retain) else 0
        return (
            f"summary: one cutoff, so its table is the whole result; retain is best on {won} "
            f"of {len(metric_names)} metrics"
        )
    contenders = list(dict.fromkeys(summary["contender"]))
    cells = summary.set_index(["metric", "contender"])
    header = ["metric", *contenders, "retain wins"]
    rows = [header]
    for metric in metric_names:
        row = [metric]
        for contender in contenders:
            line = cells.loc[(metric, contender)]
            row.append(
                "-"
                if line["cutoffs"] == 0
                else f"{line['mean']:,.3f} [{line['min']:,.3f}, {line['max']:,.3f}]"
            )
        wins = int(retain["wins"].get(metric, 0))
        row.append(f"{wins} of {n_cutoffs}")
        rows.append(row)
    lines = text_table(rows)
    return "\n".join(
        [
            f"summary over {n_cutoffs} cutoffs: mean [min, max]; retain wins = cutoffs where "
            f"retain was best",
            *lines,
        ]
    )


# --- helpers ---------------------------------------------------------------------------------


def _check_transactions(transactions: object) -> None:
    if not isinstance(transactions, pd.DataFrame):
        raise RetainInputError(
            f"transactions must be a pandas DataFrame, not {type(transactions).__name__}"
        )
    missing = [c for c in ("customer_id", "timestamp", "amount") if c not in transactions.columns]
    if missing:
        raise RetainInputError(f"transactions: missing column(s) {', '.join(missing)}")
    if transactions.empty:
        raise RetainInputError("transactions is empty: there is nothing to backtest")


def _whole_number(name: str, value: object) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise RetainInputError(f"{name} must be a whole number >= 1, not {value!r}")
    return int(value)


def _given_cutoffs(cutoffs: Sequence[DateLike]) -> list[pd.Timestamp]:
    if isinstance(cutoffs, str) or not isinstance(cutoffs, Sequence | pd.Index | np.ndarray):
        raise RetainInputError(f"cutoffs must be a list of days, not {cutoffs!r}")
    days = [to_cutoff(c) for c in cutoffs]
    if not days:
        raise RetainInputError("cutoffs is empty: give at least one cutoff day")
    if len(set(days)) != len(days):
        raise RetainInputError(
            f"cutoffs name the same day more than once: {', '.join(f'{d:%Y-%m-%d}' for d in days)}"
        )
    return sorted(days)


def _check_history(
    transactions: pd.DataFrame, days: list[pd.Timestamp], horizon: int, step: int | None
) -> None:
    """Every cutoff leaves at least eight weeks of history to train on (:data:`MIN_HISTORY_DAYS`).

    The model fitted at a cutoff chooses its own training cutoffs and horizon from whatever
    history it gets, and falls back to BTYD alone when it can label none
    (:func:`~retain.models.training.plan_training`); below eight weeks even that is a guess.
    """
    first = transactions["timestamp"].min().tz_convert("UTC").tz_localize(None).normalize()
    early = [d for d in days if (d - first).days < MIN_HISTORY_DAYS]
    if not early:
        return
    advice = (
        "use fewer cutoffs (--cutoffs / n_cutoffs), a shorter step (--step-days / step_days) or "
        "a shorter horizon"
        if step is not None and len(days) > 1
        else "drop the early cutoffs or use a shorter horizon"
    )
    raise RetainInputError(
        f"only {len(days) - len(early)} of the {len(days)} cutoffs fit in the data: "
        f"{', '.join(f'{d:%Y-%m-%d}' for d in early)} leave(s) less than {MIN_HISTORY_DAYS} days "
        f"of history after the first transaction ({first:%Y-%m-%d}); {advice}"
    )


def _latest_cohort(
    history: pd.DataFrame, latest: HoldoutResult
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tracking curve and RFM of the customers scored at the latest cutoff (a purchase by it).

    The BG/NBD is the one the RetentionModel fitted at its as-of date on the same customers as
    the ``bgnbd`` baseline (same features, same settings), so it is that baseline's model. Only
    customers known at the cutoff are tracked: the model was fitted on them, and counting
    customers acquired in the horizon would judge it on people it never saw.
    """
    cutoff = latest.as_of
    days = purchase_days(history)
    days = days[days["first"] <= cutoff]
    cohort = history[history["customer_id"].isin(days["customer_id"].unique())]
    tracking = cumulative_repeat_transactions(
        latest.model.btyd_.transactions_,
        cohort,
        end=cutoff + pd.Timedelta(days=latest.horizon_days),
        period_days=TRACKING_PERIOD_DAYS,
    )
    seen = days[days["day"] <= cutoff].groupby("customer_id", sort=True)
    rfm = pd.DataFrame(
        {
            "frequency": seen.size() - 1,
            "recency": (seen["day"].max() - seen["first"].min()).dt.days,
            "T": (cutoff - seen["first"].min()).dt.days,
        }
    ).astype("float64")
    rfm.index = rfm.index.astype("str")
    return tracking, rfm.rename_axis("customer_id").reset_index()
