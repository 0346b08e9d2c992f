"""Training examples from rolling origins inside the given history.

A model that predicts the next ``horizon_days`` after ``as_of`` learns from cutoffs whose horizon
has already been seen: the last one at ``as_of - horizon_days``, earlier ones ``step_days`` apart.
Features come from data on or before each cutoff and labels from the horizon after it, so nothing
after ``as_of`` is ever read: the transactions are cut at ``as_of`` before anything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, overload

import numpy as np
import pandas as pd

from retain.data.dates import DateLike
from retain.errors import RetainInputError
from retain.features import FeatureBuilder, build_features, to_cutoff

__all__ = [
    "TrainingPlan",
    "on_or_before",
    "plan_training",
    "rolling_cutoffs",
    "training_table",
    "up_to",
]


@overload
def up_to(frame: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame: ...
@overload
def up_to(frame: None, day: pd.Timestamp) -> None: ...
def up_to(frame: pd.DataFrame | None, day: pd.Timestamp) -> pd.DataFrame | None:
    """Rows of a timestamped frame on or before ``day`` (a naive UTC midnight)."""
    if frame is None:
        return None
    keep = on_or_before(frame["timestamp"], day)
    return frame if keep.all() else frame.loc[keep]


def on_or_before(timestamps: pd.Series, day: pd.Timestamp) -> np.ndarray:
    """Which UTC timestamps fall on or before ``day`` (a naive UTC midnight)."""
    # In NumPy: a zoned column comes out in UTC, and pandas' own comparison costs far more.
    end = (day + pd.Timedelta(days=1)).as_unit("us").to_datetime64()
    return timestamps.to_numpy(dtype="datetime64[us]") < end


# Shortest history and horizon a labelled training cutoff is worth having: with less, the features
# at the cutoff describe a few weeks of buying and the labels a few days of it.
MIN_HISTORY_DAYS: Final = 28
MIN_TRAINING_HORIZON_DAYS: Final = 14
# Rolling cutoffs are spread out to at most this much history each when none is asked for: enough
# for the 90-day features to mean something, without spending a short history on it.
DEFAULT_MIN_HISTORY_DAYS: Final = 90


@dataclass(frozen=True)
class TrainingPlan:
    """Where training takes its labelled examples from, and why (see :func:`plan_training`).

    ``cutoffs`` may be empty: no labelled cutoff fits, and the models fall back to BTYD alone.
    ``horizon_days`` is the horizon of the training labels, shorter than the horizon predicted
    when the history cannot hold both; ``notes`` say what was chosen differently from the
    defaults, and why.
    """

    cutoffs: list[pd.Timestamp]
    horizon_days: int
    step_days: int
    min_history_days: int
    history_days: int
    notes: list[str] = field(default_factory=list)

    def as_params(self) -> dict[str, str]:
        """The plan as flat text parameters (an MLflow run's params)."""
        return {
            "cutoffs": ", ".join(f"{c:%Y-%m-%d}" for c in self.cutoffs) or "none",
            "training_horizon_days": str(self.horizon_days),
            "step_days": str(self.step_days),
            "min_history_days": str(self.min_history_days),
            "history_days": str(self.history_days),
        }


def plan_training(
    transactions: pd.DataFrame,
    as_of: DateLike,
    horizon_days: int,
    n_cutoffs: int = 4,
    step_days: int | None = None,
    min_history_days: int | None = None,
    same_season: bool = True,
) -> TrainingPlan:
    """Training cutoffs, their spacing, the history before them and the training horizon, chosen
    from the history before ``as_of``. Never fails for lack of history: the plan may have no
    cutoff (the caller then falls back to models that need no labels).

    Left to the data (``None``):

    - ``min_history_days``: 90 days when the history leaves room for it after a full horizon,
      less when it does not, down to 28 (a shorter history costs feature quality, a shorter
      horizon costs the labels' meaning: the horizon is kept whole first);
    - the training horizon: the horizon predicted, or what the history leaves after the minimum
      history when that is shorter (at least 14 days; else no cutoff). The models learn
      corrections to BTYD, and those carry to the longer horizon scored
      (:class:`~retain.models.retention.RetentionModel`);
    - ``step_days``: half the training horizon. Not shrunk to fit more cutoffs into a short
      history: cutoffs a week apart hold nearly the same rows and labels, so early stopping on
      the latest one stops nothing (Online Retail II from 2011-01-01 as of 2011-08-09, 122 days:
      cutoffs 7 days apart took the churn AUC from 0.749 to 0.716).

    Given values are kept as given: a ``min_history_days`` that leaves no room gives no cutoff.
    The last cutoff is always ``as_of - training horizon``; see :func:`rolling_cutoffs` for the
    same-season cutoff.
    """
    if horizon_days < 1 or n_cutoffs < 1:
        raise RetainInputError("horizon_days and n_cutoffs must be at least 1")
    if step_days is not None and step_days < 1:
        raise RetainInputError(f"step_days must be at least 1, not {step_days}")
    if min_history_days is not None and min_history_days < 0:
        raise RetainInputError(f"min_history_days must be 0 or more, not {min_history_days}")
    day = to_cutoff(as_of)
    first = transactions["timestamp"].min().tz_convert("UTC").tz_localize(None).normalize()
    history = max((day - first).days, 0)
    notes: list[str] = []
    if min_history_days is None:
        room = history - horizon_days
        min_history = int(np.clip(room, MIN_HISTORY_DAYS, DEFAULT_MIN_HISTORY_DAYS))
        if min_history < DEFAULT_MIN_HISTORY_DAYS:
            notes.append(
                f"minimum history before a cutoff {min_history} days (default "
                f"{DEFAULT_MIN_HISTORY_DAYS}): the data hold {history} days before "
                f"{day:%Y-%m-%d}"
            )
    else:
        min_history = min_history_days
    horizon = min(horizon_days, history - min_history)
    if horizon < MIN_TRAINING_HORIZON_DAYS:
        notes.append(
            f"no labelled cutoff: {history} days of history leave "
            f"{max(history - min_history, 0)} days of labels after {min_history} days of "
            f"history, fewer than {MIN_TRAINING_HORIZON_DAYS}"
        )
        return TrainingPlan([], max(horizon, 0), step_days or 0, min_history, history, notes)
    if horizon < horizon_days:
        notes.append(
            f"training horizon {horizon} days (predicted: {horizon_days}): {history} days of "
            f"history hold no more labels after {min_history} days of history"
        )
    step = max(horizon // 2, 1) if step_days is None else step_days
    cutoffs = rolling_cutoffs(
        transactions, day, horizon, n_cutoffs, step, min_history, same_season=same_season
    )
    if len(cutoffs) < n_cutoffs:
        notes.append(
            f"{len(cutoffs)} of {n_cutoffs} cutoffs fit, {step} days apart, each with "
            f"{min_history} days of history before it"
        )
    return TrainingPlan(cutoffs, horizon, step, min_history, history, notes)


def rolling_cutoffs(
    transactions: pd.DataFrame,
    as_of: DateLike,
    horizon_days: int,
    n_cutoffs: int = 4,
    step_days: int | None = None,
    min_history_days: int = 90,
    same_season: bool = True,
) -> list[pd.Timestamp]:
    """Cutoffs for training, oldest first: the last at ``as_of - horizon_days``.

    ``step_days`` defaults to half the horizon. Cutoffs with less than ``min_history_days`` of
    history before them are left out; at least one must remain.

    ``same_season``: also train on the cutoff a year before ``as_of`` when the history reaches back
    that far and no cutoff is already within a month of it. Its horizon covers the same weeks of
    the year as the horizon predicted, so the models see the season they are asked about, and the
    value models take their level from it (:func:`~retain.models.retention.reference_cutoff`).
    Rolling cutoffs alone stop a horizon before ``as_of``: on Online Retail II as of 2011-09-09
    (90 days, Christmas orders inside), they all look at spring and summer, and the predicted
    spend came out 41% short; with the year-ago cutoff, 3% short.
    """
    if horizon_days < 1 or n_cutoffs < 1:
        raise RetainInputError("horizon_days and n_cutoffs must be at least 1")
    day = to_cutoff(as_of)
    step = step_days or max(horizon_days // 2, 1)
    first = transactions["timestamp"].min().tz_convert("UTC").tz_localize(None).normalize()
    earliest = first + pd.Timedelta(days=min_history_days)
    last_cutoff = day - pd.Timedelta(days=horizon_days)
    cutoffs = [last_cutoff - pd.Timedelta(days=k * step) for k in range(n_cutoffs)]
    cutoffs = [c for c in cutoffs if c >= earliest]
    if not cutoffs:
        raise RetainInputError(
            f"training: the history from {first:%Y-%m-%d} to {day:%Y-%m-%d} is too short for a "
            f"{horizon_days}-day horizon: the last training cutoff ({last_cutoff:%Y-%m-%d}) needs "
            f"at least {min_history_days} days of history before it"
        )
    year_ago = day - pd.Timedelta(days=365)
    if (
        same_season
        and earliest <= year_ago <= last_cutoff
        and all(abs((year_ago - c).days) > 31 for c in cutoffs)
    ):
        cutoffs.append(year_ago)
    return sorted(cutoffs)


def training_table(
    transactions: pd.DataFrame,
    cutoffs: list[pd.Timestamp],
    horizon_days: int,
    *,
    as_of: DateLike,
    events: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    builder: FeatureBuilder | None = None,
) -> pd.DataFrame:
    """Features and labels of every customer at every cutoff, stacked, with a ``cutoff`` column."""
    day = to_cutoff(as_of)
    late = [c for c in cutoffs if c + pd.Timedelta(days=horizon_days) > day]
    if late:
        raise RetainInputError(
            f"training: cutoffs {[f'{c:%Y-%m-%d}' for c in late]} have horizons that end after "
            f"the as-of date {day:%Y-%m-%d}"
        )
    history = up_to(transactions, day)
    events = up_to(events, day)
    tables = [
        build_features(
            history,
            cutoff,
            events=events,
            customers=customers,
            horizon_days=horizon_days,
            observed_until=day,
            builder=builder,
        ).assign(cutoff=cutoff)
        for cutoff in cutoffs
    ]
    return pd.concat(tables, ignore_index=True)
