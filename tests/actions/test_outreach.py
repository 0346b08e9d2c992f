"""Outreach timing: contact a few days before the expected order; overdue by the customer's rhythm."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from tests.actions.rows import AS_OF, scores

from retain.actions import (
    OUTREACH_COLUMNS,
    ActionSettings,
    OutreachSettings,
    outreach_schedule,
    overdue,
    usual_gap,
)
from retain.errors import RetainInputError


def day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def lead(days: int) -> ActionSettings:
    return ActionSettings(outreach=OutreachSettings(lead_days=days))


def test_the_contact_date_is_the_expected_date_minus_the_lead() -> None:
    table = scores(
        {"expected_next_purchase_date": dt.date(2024, 7, 20)},
        {"expected_next_purchase_date": dt.date(2024, 7, 3)},  # exactly as_of + lead
        {"expected_next_purchase_date": dt.date(2024, 7, 2)},  # lead would put it before as_of
        {"expected_next_purchase_date": dt.date(2024, 6, 30)},
    )
    schedule = outreach_schedule(table, AS_OF)
    assert list(schedule.columns) == list(OUTREACH_COLUMNS)
    assert schedule["contact_date"].tolist() == [
        day("2024-07-17"),
        day("2024-06-30"),
        day("2024-06-30"),
        day("2024-06-30"),
    ]
    assert (schedule["contact_date"] >= day(AS_OF)).all()
    assert schedule["expected_next_purchase_date"].iloc[0] == day("2024-07-20")


@pytest.mark.parametrize(("days", "expected"), [(0, "2024-07-20"), (10, "2024-07-10"), (30, AS_OF)])
def test_the_lead_is_configurable(days: int, expected: str) -> None:
    schedule = outreach_schedule(scores({}), AS_OF, lead(days))
    assert schedule["contact_date"].iloc[0] == day(expected)


@pytest.mark.parametrize(
    "expected",
    [
        "2024-07-20",
        pd.Timestamp("2024-07-20"),
        pd.Timestamp("2024-07-20 23:30", tz="UTC"),
        np.datetime64("2024-07-20T08:00"),
    ],
)
def test_dates_of_any_kind(expected: object) -> None:
    table = scores({"expected_next_purchase_date": expected})
    for as_of in (AS_OF, dt.date(2024, 6, 30), pd.Timestamp("2024-06-30 18:00")):
        schedule = outreach_schedule(table, as_of)
        assert schedule["contact_date"].iloc[0] == day("2024-07-17")


def test_the_as_of_day_is_a_floor_whatever_its_time() -> None:
    table = scores({"expected_next_purchase_date": dt.date(2024, 6, 1)})
    schedule = outreach_schedule(table, "2024-06-30T15:45:00")
    assert schedule["contact_date"].iloc[0] == day("2024-06-30")


def test_usual_gap() -> None:
    table = scores(
        {"frequency": 4.0, "T": 400.0, "days_since_last_purchase": 20.0},
        {"frequency": 1.0, "T": 130.0, "days_since_last_purchase": 100.0},
        {"frequency": 0.0, "T": 50.0, "days_since_last_purchase": 50.0},
    )
    gap = usual_gap(table)
    assert gap[:2].tolist() == [95.0, 30.0]
    assert np.isnan(gap[2])


@pytest.mark.parametrize(
    ("since", "flag", "late"),
    [
        (95.0, False, 0.0),  # on their usual gap
        (102.0, False, 0.0),  # 7 days past it: within the grace days
        (102.5, True, 7.5),
        (200.0, True, 105.0),
    ],
)
def test_overdue_after_the_usual_gap_plus_the_grace_days(
    since: float, flag: bool, late: float
) -> None:
    # Four repeat purchase days over 380 days: a usual gap of 95 days.
    table = scores({"frequency": 4.0, "T": 380.0 + since, "days_since_last_purchase": since})
    schedule = outreach_schedule(table, AS_OF)
    assert schedule["usual_gap_days"].iloc[0] == 95.0
    assert schedule["overdue"].iloc[0] == flag
    assert schedule["days_overdue"].iloc[0] == late


def test_two_purchases_can_be_overdue() -> None:
    # Bought twice, 30 days apart, 100 days ago: overdue by 70 days. (T / frequency, 130 days,
    # would count the wait itself as part of the rhythm, and never call them overdue.)
    table = scores({"frequency": 1.0, "T": 130.0, "days_since_last_purchase": 100.0})
    flag, late = overdue(table)
    assert flag.tolist() == [True]
    assert late.tolist() == [70.0]


def test_one_time_buyers_are_never_overdue() -> None:
    table = scores(
        {"frequency": 0.0, "T": 5.0, "days_since_last_purchase": 5.0},
        {"frequency": 0.0, "T": 900.0, "days_since_last_purchase": 900.0},
    )
    schedule = outreach_schedule(table, AS_OF)
    assert schedule["overdue"].tolist() == [False, False]
    assert schedule["days_overdue"].tolist() == [0.0, 0.0]
    assert schedule["usual_gap_days"].isna().all()


def test_grace_and_gap_factor_are_configurable() -> None:
    # Usual gap 95 days, 130 days since the last purchase.
    table = scores({"frequency": 4.0, "T": 510.0, "days_since_last_purchase": 130.0})
    assert overdue(table)[0].tolist() == [True]
    assert overdue(table, OutreachSettings(grace_days=40))[0].tolist() == [False]
    # 1.5 x 95 = 142.5 days: not yet.
    assert overdue(table, OutreachSettings(gap_factor=1.5))[0].tolist() == [False]
    flag, late = overdue(table, OutreachSettings(gap_factor=1.2, grace_days=0))
    assert flag.tolist() == [True]
    assert late == pytest.approx([130 - 114])


def test_the_index_and_ids_are_kept() -> None:
    table = scores({}, {}, index=["x", "y"])
    schedule = outreach_schedule(table, AS_OF)
    assert schedule.index.tolist() == ["x", "y"]
    assert schedule["customer_id"].tolist() == ["c0", "c1"]


def test_an_empty_table() -> None:
    schedule = outreach_schedule(scores({}).iloc[:0], AS_OF)
    assert schedule.empty
    assert list(schedule.columns) == list(OUTREACH_COLUMNS)


@pytest.mark.parametrize(
    "column",
    ["customer_id", "expected_next_purchase_date", "frequency", "T", "days_since_last_purchase"],
)
def test_a_missing_column_is_named(column: str) -> None:
    with pytest.raises(RetainInputError, match=f"scores: missing column\\(s\\) {column}"):
        outreach_schedule(scores({}).drop(columns=column), AS_OF)


def test_no_expected_date_means_no_contact_date() -> None:
    """A null expected date (no purchase expected within the horizon) gives a null contact date:
    the customer is out of the reminder calendar; overdue is still judged by their rhythm."""
    table = scores(
        {"expected_next_purchase_date": None, "days_since_last_purchase": 200.0},
        {"expected_next_purchase_date": pd.NaT},
        {"expected_next_purchase_date": dt.date(2024, 7, 20)},
    )
    schedule = outreach_schedule(table, AS_OF)
    assert schedule["contact_date"].isna().tolist() == [True, True, False]
    assert schedule["expected_next_purchase_date"].isna().tolist() == [True, True, False]
    assert schedule["contact_date"].iloc[2] == day("2024-07-17")
    assert schedule["overdue"].tolist() == [True, False, False]
    # The same from a scores table as the batch job reads it (date32 with nulls, from Parquet).
    read = pa.Table.from_pandas(
        table.assign(expected_next_purchase_date=[None, None, dt.date(2024, 7, 20)]),
        preserve_index=False,
    ).to_pandas()
    assert outreach_schedule(read, AS_OF)["contact_date"].isna().tolist() == [True, True, False]


def test_unreadable_dates_are_counted() -> None:
    table = scores(
        {},
        {"expected_next_purchase_date": None},
        {"expected_next_purchase_date": "soon"},
        {"expected_next_purchase_date": "later"},
    )
    with pytest.raises(
        RetainInputError,
        match="column expected_next_purchase_date has 2 unreadable dates in 4 rows",
    ):
        outreach_schedule(table, AS_OF)


def test_a_bad_as_of_is_named() -> None:
    with pytest.raises(RetainInputError, match="as_of: cannot read 'someday'"):
        outreach_schedule(scores({}), "someday")


def test_missing_history_is_counted() -> None:
    with pytest.raises(
        RetainInputError, match="frequency has 1 missing or non-numeric values in 2"
    ):
        outreach_schedule(scores({}, {"frequency": np.nan}), AS_OF)
