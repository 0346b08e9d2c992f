"""Retention KPIs: by hand on a small table, against a slow reference on random tables, and errors.

Hand table (W = 60 days, monthly periods). Boundaries minus 60 days:
  2011-01-01 -> 2010-11-02, 2011-02-01 -> 2010-12-03, 2011-03-01 -> 2010-12-31,
  2011-04-01 -> 2011-01-31, 2011-05-01 -> 2011-03-02.
A customer counts at boundary b with a purchase in [b - 60 days, b).

  A  2011-01-10 a1 100 | 2011-02-15 a2 50 | 2011-02-15 a3 30 (two orders that day) | 2011-03-20 a4 40
  B  2011-01-05 b1 200 | 2011-01-20 b1 -50 (refund) | 2011-04-10 b2 80 (reactivated: lapsed at 04-01)
  C  2011-02-01 00:00 c1 70 (first purchase exactly on the February boundary)
  D  2011-01-25 d1 10 + d1 10 (one order, two lines) | 2011-01-25 d2 40 (second order, same day)
  E  2011-03-05 e1 90
  G  2010-12-15 g1 25 (only purchase, before the reported months)
  H  2011-01-31 00:00 h1 35 (exactly 60 days before 2011-04-01: still active then)

Active sets at the boundaries:
  2011-01-01: [11-02, 01-01) -> G                         B(Jan) = 1
  2011-02-01: [12-03, 02-01) -> A, B, D, G, H (not C)     E(Jan) = B(Feb) = 5
  2011-03-01: [12-31, 03-01) -> A, B, C, D, H (G lapsed)  E(Feb) = B(Mar) = 5
  2011-04-01: [01-31, 04-01) -> A, C, E, H (B, D lapsed)  E(Mar) = B(Apr) = 4
  2011-05-01: [03-02, 05-01) -> A, B, E                   E(Apr) = 3
First purchases: G 2010-12; A, B, D, H 2011-01; C 2011-02; E 2011-03; nobody new in 2011-04.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from tests.helpers import transactions

from retain.errors import RetainInputError
from retain.kpis import KPI_COLUMNS, cohort_retention, retention_kpis, summarize_kpis

HAND_ROWS = [
    ("A", "2011-01-10T10:00", 100.0, "a1"),
    ("A", "2011-02-15T09:00", 50.0, "a2"),
    ("A", "2011-02-15T18:00", 30.0, "a3"),
    ("A", "2011-03-20T12:00", 40.0, "a4"),
    ("B", "2011-01-05T12:00", 200.0, "b1"),
    ("B", "2011-01-20T12:00", -50.0, "b1"),
    ("B", "2011-04-10T12:00", 80.0, "b2"),
    ("C", "2011-02-01T00:00", 70.0, "c1"),
    ("D", "2011-01-25T15:00", 10.0, "d1"),
    ("D", "2011-01-25T15:00", 10.0, "d1"),
    ("D", "2011-01-25T16:00", 40.0, "d2"),
    ("E", "2011-03-05T11:00", 90.0, "e1"),
    ("G", "2010-12-15T12:00", 25.0, "g1"),
    ("H", "2011-01-31T00:00", 35.0, "h1"),
]


def hand_table(*, with_order_id: bool = True) -> pd.DataFrame:
    rows = [(c, t, a) for c, t, a, _ in HAND_ROWS]
    if not with_order_id:
        return transactions(rows)
    return transactions(rows, order_id=[o for *_, o in HAND_ROWS])


# Expected rows, every figure by hand from the table above.
EXPECTED = {
    # B = {G}; E = {A,B,D,G,H}; N = {A,B,D,H}; CRR = (5 - 4) / 1 = 100 %; G still active at 02-01,
    # so churn 0 %. Orders a1, b1, d1, d2, h1 = 5 by buyers A, B, D, H. Revenue
    # 100 + 200 - 50 + 10 + 10 + 40 + 35 = 345; gross 395, AOV 395 / 5 = 79; frequency 5 / 4;
    # repeat: only D has two orders by 01-31 -> 1 / 4 = 25 %.
    "2011-01": dict(
        customers_start=1,
        customers_end=5,
        new_customers=4,
        crr=100.0,
        churn_rate=0.0,
        buyers=4,
        orders=5,
        revenue=345.0,
        average_order_value=79.0,
        purchase_frequency=1.25,
        repeat_purchase_rate=25.0,
    ),
    # B = {A,B,D,G,H}; E = {A,B,C,D,H}; N = {C}; CRR = (5 - 1) / 5 = 80 %; churned {G}: 1 / 5 = 20 %.
    # Orders a2, a3, c1 = 3 by A, C; revenue = gross = 150, AOV 50, frequency 1.5; repeat: A (3
    # orders), not C -> 50 %.
    "2011-02": dict(
        customers_start=5,
        customers_end=5,
        new_customers=1,
        crr=80.0,
        churn_rate=20.0,
        buyers=2,
        orders=3,
        revenue=150.0,
        average_order_value=50.0,
        purchase_frequency=1.5,
        repeat_purchase_rate=50.0,
    ),
    # B = {A,B,C,D,H}; E = {A,C,E,H}; N = {E}; CRR = (4 - 1) / 5 = 60 %; churned {B, D}: 40 %.
    # Orders a4, e1 by A, E; revenue 130, AOV 65, frequency 1; repeat: A yes, E no -> 50 %.
    "2011-03": dict(
        customers_start=5,
        customers_end=4,
        new_customers=1,
        crr=60.0,
        churn_rate=40.0,
        buyers=2,
        orders=2,
        revenue=130.0,
        average_order_value=65.0,
        purchase_frequency=1.0,
        repeat_purchase_rate=50.0,
    ),
    # B = {A,C,E,H}; E = {A,B,E} (B reactivated, counted as retained by the formula); N = {};
    # CRR = (3 - 0) / 4 = 75 %; churned {C, H}: 2 / 4 = 50 %. Order b2 by B: revenue 80, AOV 80;
    # repeat: B has b1 and b2 -> 100 %.
    "2011-04": dict(
        customers_start=4,
        customers_end=3,
        new_customers=0,
        crr=75.0,
        churn_rate=50.0,
        buyers=1,
        orders=1,
        revenue=80.0,
        average_order_value=80.0,
        purchase_frequency=1.0,
        repeat_purchase_rate=100.0,
    ),
}


def test_monthly_kpis_equal_the_hand_computation() -> None:
    kpis = retention_kpis(hand_table(), active_window_days=60)

    assert list(kpis.columns) == list(KPI_COLUMNS)
    assert kpis["period"].tolist() == ["2010-12", "2011-01", "2011-02", "2011-03", "2011-04"]
    by_period = kpis.set_index("period")
    for period, expected in EXPECTED.items():
        row = by_period.loc[period]
        for column, value in expected.items():
            assert row[column] == pytest.approx(value), (period, column)
    # December 2010: nobody active at its start, so CRR and churn are undefined (NaN), not 0.
    december = by_period.loc["2010-12"]
    assert (december["customers_start"], december["new_customers"]) == (0, 1)
    assert math.isnan(december["crr"]) and math.isnan(december["churn_rate"])


def test_period_bounds_are_utc_and_one_periods_end_is_the_next_start() -> None:
    kpis = retention_kpis(hand_table(), active_window_days=60)

    assert str(kpis["period_start"].dtype) == "datetime64[us, UTC]"
    assert kpis.loc[2, "period_start"] == pd.Timestamp("2011-02-01", tz="UTC")
    assert kpis.loc[2, "period_end"] == pd.Timestamp("2011-03-01", tz="UTC")
    assert (
        kpis["period_end"].iloc[:-1].to_numpy() == kpis["period_start"].iloc[1:].to_numpy()
    ).all()
    assert (
        kpis["customers_end"].iloc[:-1].to_numpy() == kpis["customers_start"].iloc[1:].to_numpy()
    ).all()


def test_start_and_end_pick_periods_but_activity_uses_the_whole_history() -> None:
    kpis = retention_kpis(hand_table(), active_window_days=60, start="2011-02-10", end="2011-03-01")

    assert kpis["period"].tolist() == ["2011-02", "2011-03"]
    # February's B still counts G and the January buyers, whose purchases precede `start`.
    assert kpis["customers_start"].tolist() == [5, 5]
    assert kpis["crr"].tolist() == [80.0, 60.0]

    padded = retention_kpis(hand_table(), active_window_days=60, start="2010-10-15")
    assert padded["period"].tolist()[:3] == ["2010-10", "2010-11", "2010-12"]
    assert padded["orders"].tolist()[:2] == [0, 0]
    assert math.isnan(padded.loc[0, "average_order_value"])


def test_the_window_length_changes_who_is_active() -> None:
    # With a 365-day window nobody lapses within the table: B at 2011-04-01 is everyone who bought
    # before it (A, B, C, D, E, G, H) and churn is 0.
    april = retention_kpis(hand_table(), start="2011-04-01").iloc[0]
    assert (april["customers_start"], april["churn_rate"]) == (7, 0.0)


def test_periods_the_data_do_not_cover_a_window_before_are_marked() -> None:
    # The data start on 2010-12-15 (G). With W = 60 days a period is covered when its start minus
    # 60 days is on or after that day: 2011-03-01 - 60 = 2010-12-31 is, 2011-02-01 - 60 =
    # 2010-12-03 is not (B of February misses whoever bought from 12-03 to 12-14).
    kpis = retention_kpis(hand_table(), active_window_days=60)
    assert kpis["window_covered"].tolist() == [False, False, False, True, True]
    # A window that starts on the first day covers it, whatever the hour of the first sale
    # (G bought at 12:00): March's start minus 76 days is 2010-12-15 00:00, minus 77 days the
    # day before the data.
    march = retention_kpis(hand_table(), active_window_days=76).set_index("period")
    assert march.loc["2011-03", "window_covered"]
    assert (
        not retention_kpis(hand_table(), active_window_days=77)
        .set_index("period")
        .loc["2011-03", "window_covered"]
    )
    # With the default 365 days nothing here is covered, and January's CRR is the artefact the
    # mark is for: 100 % with churn 0, since no purchase in the data can be a year old yet.
    year = retention_kpis(hand_table()).set_index("period")
    assert not year["window_covered"].any()
    assert (year.loc["2011-01", "crr"], year.loc["2011-01", "churn_rate"]) == (100.0, 0.0)


def test_quarter_and_year_labels() -> None:
    quarters = retention_kpis(hand_table(), period="Q", active_window_days=60)
    assert quarters["period"].tolist() == ["2010Q4", "2011Q1", "2011Q2"]
    # 2011Q1: B = active at 2011-01-01 = {G}; E = active at 2011-04-01 = {A, C, E, H};
    # N = {A, B, C, D, E, H}; CRR = (4 - 6) / 1 = -200 % (the formula is not bounded below).
    q1 = quarters.set_index("period").loc["2011Q1"]
    assert (q1["customers_start"], q1["customers_end"], q1["new_customers"]) == (1, 4, 6)
    assert q1["crr"] == pytest.approx(-200.0)
    assert q1["orders"] == 10

    years = retention_kpis(hand_table(), period="Y", active_window_days=60)
    assert years["period"].tolist() == ["2010", "2011"]
    assert years["period_end"].iloc[-1] == pd.Timestamp("2012-01-01", tz="UTC")


def test_without_an_order_id_every_purchase_row_is_an_order() -> None:
    kpis = retention_kpis(hand_table(with_order_id=False), active_window_days=60)
    january = kpis.set_index("period").loc["2011-01"]
    # January purchase rows: a1, b1, d1, d1, d2, h1 = 6 orders (the refund row is not one).
    assert january["orders"] == 6
    assert january["average_order_value"] == pytest.approx(395 / 6)
    assert january["purchase_frequency"] == pytest.approx(6 / 4)
    assert january["revenue"] == pytest.approx(345.0)

    summary = summarize_kpis(hand_table(with_order_id=False))
    assert summary["orders"] == 13


def test_rows_of_one_order_count_once_and_missing_order_ids_are_orders_of_their_own() -> None:
    tx = transactions(
        [
            ("X", "2011-01-03T10:00", 10.0),
            ("X", "2011-01-03T10:00", 20.0),
            ("X", "2011-01-04T10:00", 5.0),
            ("X", "2011-01-05T10:00", 5.0),
        ],
        order_id=["o1", "o1", None, None],
    )
    summary = summarize_kpis(tx)
    assert summary["orders"] == 3
    assert summary["average_order_value"] == pytest.approx(40 / 3)


def test_whole_history_summary_by_hand() -> None:
    summary = summarize_kpis(hand_table())
    # Customers with an order: A, B, C, D, E, G, H = 7. Orders: A 4, B 2, C 1, D 2, E 1, G 1, H 1
    # = 12. Revenue 25 + 345 + 150 + 130 + 80 = 730; gross 780; refunded 50.
    assert summary == pytest.approx(
        {
            "customers": 7,
            "customers_without_purchase": 0,
            "orders": 12,
            "revenue": 730.0,
            "average_order_value": 65.0,
            "purchase_frequency": 12 / 7,
            "repeat_purchase_rate": 3 / 7 * 100,  # A, B, D
            "refund_share": 50 / 780 * 100,
        }
    )


def test_a_customer_with_only_refunds_is_not_a_customer() -> None:
    tx = transactions([("X", "2011-01-03T10:00", 10.0), ("Y", "2011-01-04T10:00", -4.0)])
    summary = summarize_kpis(tx)
    # Validation counts two customers; the KPIs one, and say how many they leave out.
    assert (summary["customers"], summary["customers_without_purchase"]) == (1, 1)
    january = retention_kpis(tx).iloc[0]
    assert (january["buyers"], january["new_customers"], january["revenue"]) == (1, 1, 6.0)


# -- Cohorts -------------------------------------------------------------------------------------


def test_monthly_cohorts_by_hand_with_future_cells_missing() -> None:
    cohorts = cohort_retention(hand_table())
    # Months with an order: G Dec; A Jan, Feb, Mar; B Jan, Apr; D Jan; H Jan; C Feb; E Mar.
    # The data ends in April 2011, so a cohort of month m is observed for offsets 0..(Apr - m).
    # No customer was acquired in April: no April row.
    expected = pd.DataFrame(
        {
            "cohort_size": [1, 4, 1, 1],
            0: [1.0, 1.0, 1.0, 1.0],
            1: [0.0, 0.25, 0.0, 0.0],  # Jan cohort in Feb: A
            2: [0.0, 0.25, 0.0, np.nan],  # Jan cohort in Mar: A
            3: [0.0, 0.25, np.nan, np.nan],  # Jan cohort in Apr: B (back after lapsing)
            4: [0.0, np.nan, np.nan, np.nan],
        },
        index=pd.Index(["2010-12", "2011-01", "2011-02", "2011-03"], name="cohort", dtype="str"),
    )
    pd.testing.assert_frame_equal(cohorts, expected, check_column_type=False)


def test_quarterly_cohorts_and_max_periods() -> None:
    quarters = cohort_retention(hand_table(), period="Q")
    # 2011Q1 cohort: A, B, C, D, E, H (6); in 2011Q2 only B orders -> 1/6; nothing after 2011Q2.
    assert quarters.index.tolist() == ["2010Q4", "2011Q1"]
    assert quarters.loc["2011Q1", "cohort_size"] == 6
    assert quarters.loc["2011Q1", 1] == pytest.approx(1 / 6)
    assert math.isnan(quarters.loc["2011Q1", 2])

    capped = cohort_retention(hand_table(), max_periods=1)
    assert list(capped.columns) == ["cohort_size", 0, 1]
    assert capped.loc["2011-01", 1] == pytest.approx(0.25)


# -- Errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("period", ["W", "m", "ME", ""])
def test_unknown_period_is_refused(period: str) -> None:
    with pytest.raises(RetainInputError, match=r"period must be one of 'M', 'Q', 'Y'"):
        retention_kpis(hand_table(), period=period)
    with pytest.raises(RetainInputError, match=r"period must be one of"):
        cohort_retention(hand_table(), period=period)


@pytest.mark.parametrize("window", [0, -30, 2.5, True])
def test_window_must_be_a_positive_whole_number_of_days(window: object) -> None:
    with pytest.raises(RetainInputError, match=r"active_window_days must be a positive whole"):
        retention_kpis(hand_table(), active_window_days=window)  # type: ignore[arg-type]


def test_empty_frame_is_refused() -> None:
    empty = hand_table().iloc[:0]
    for compute in (retention_kpis, cohort_retention, summarize_kpis):
        with pytest.raises(RetainInputError, match=r"transactions: the frame is empty"):
            compute(empty)


def test_start_after_end_and_unreadable_dates_are_refused() -> None:
    with pytest.raises(RetainInputError, match=r"start \(2011-03-01 00:00\) is after end"):
        retention_kpis(hand_table(), start="2011-03-01", end="2011-02-01")
    with pytest.raises(RetainInputError, match=r"end: cannot read 'soon' as a date"):
        retention_kpis(hand_table(), end="soon")


def test_missing_columns_values_and_bad_max_periods_are_refused() -> None:
    with pytest.raises(RetainInputError, match=r"missing column\(s\) amount"):
        retention_kpis(hand_table().drop(columns="amount"))
    with pytest.raises(RetainInputError, match=r"column amount has 1 missing"):
        retention_kpis(hand_table().assign(amount=[np.nan] + [1.0] * (len(HAND_ROWS) - 1)))
    with pytest.raises(RetainInputError, match=r"max_periods must be"):
        cohort_retention(hand_table(), max_periods=-1)


# -- Against a slow reference ----------------------------------------------------------------------


def reference_kpis(tx: pd.DataFrame, period: str, window_days: int) -> pd.DataFrame:
    """The definitions applied literally, with sets and one pass per period (slow, obviously right)."""
    window = pd.Timedelta(days=window_days)
    purchases = tx[tx["amount"] >= 0]
    first_purchase = purchases.groupby("customer_id")["timestamp"].min()
    orders = purchases.groupby(["customer_id", "order_id"], as_index=False).agg(
        timestamp=("timestamp", "min"), gross=("amount", "sum")
    )
    naive = tx["timestamp"].dt.tz_localize(None)
    periods = pd.period_range(naive.min().to_period(period), naive.max().to_period(period))
    first_day = tx["timestamp"].min().normalize()

    def active(boundary: pd.Timestamp) -> set[str]:
        recent = purchases["timestamp"].between(boundary - window, boundary, inclusive="left")
        return set(purchases.loc[recent, "customer_id"])

    rows = []
    for p in periods:
        start = p.start_time.tz_localize("UTC")
        end = (p + 1).start_time.tz_localize("UTC")
        b, e = active(start), active(end)
        new = set(first_purchase[(first_purchase >= start) & (first_purchase < end)].index)
        in_period = orders[(orders["timestamp"] >= start) & (orders["timestamp"] < end)]
        to_date = orders[orders["timestamp"] < end].groupby("customer_id").size()
        buyers = set(in_period["customer_id"])
        repeaters = {c for c in buyers if to_date[c] >= 2}
        rows.append(
            {
                "period": str(p),
                "customers_start": len(b),
                "customers_end": len(e),
                "new_customers": len(new),
                "crr": (len(e) - len(new)) / len(b) * 100 if b else np.nan,
                "churn_rate": len(b - e) / len(b) * 100 if b else np.nan,
                "window_covered": start - window >= first_day,
                "buyers": len(buyers),
                "orders": len(in_period),
                "revenue": tx.loc[
                    (tx["timestamp"] >= start) & (tx["timestamp"] < end), "amount"
                ].sum(),
                "average_order_value": in_period["gross"].sum() / len(in_period)
                if len(in_period)
                else np.nan,
                "purchase_frequency": len(in_period) / len(buyers) if buyers else np.nan,
                "repeat_purchase_rate": len(repeaters) / len(buyers) * 100 if buyers else np.nan,
            }
        )
    return pd.DataFrame(rows)


def random_table(seed: int) -> pd.DataFrame:
    """Random purchases and refunds; many at midnight so that boundaries are hit exactly."""
    rng = np.random.default_rng(seed)
    n = 400
    days = rng.integers(0, 500, n)
    seconds = np.where(rng.random(n) < 0.4, 0, rng.integers(0, 86_400, n))
    timestamps = pd.Timestamp("2011-01-01", tz="UTC") + pd.to_timedelta(
        days * 86_400 + seconds, unit="s"
    )
    customers = rng.integers(0, 60, n)
    amounts = np.round(rng.gamma(2.0, 20.0, n), 2) * np.where(rng.random(n) < 0.1, -1, 1)
    # Order ids repeat within a customer, sometimes across periods (an order is dated by its first row).
    orders = [f"{c}-{o}" for c, o in zip(customers, rng.integers(0, 6, n), strict=True)]
    return pd.DataFrame(
        {
            "customer_id": pd.Series(customers.astype(str), dtype="str"),
            "timestamp": pd.Series(timestamps).astype("datetime64[us, UTC]"),
            "amount": amounts,
            "order_id": pd.Series(orders, dtype="str"),
        }
    )


@pytest.mark.parametrize(
    ("seed", "period", "window"),
    [(0, "M", 60), (1, "M", 10), (2, "Q", 120), (3, "Q", 30), (4, "Y", 400), (5, "M", 1)],
)
def test_kpis_equal_a_literal_reference_on_random_tables(
    seed: int, period: str, window: int
) -> None:
    tx = random_table(seed)
    ours = retention_kpis(tx, period=period, active_window_days=window).drop(
        columns=["period_start", "period_end"]
    )
    expected = reference_kpis(tx, period, window)
    pd.testing.assert_frame_equal(ours, expected, check_dtype=False, check_exact=False)


@pytest.mark.parametrize(("seed", "period"), [(6, "M"), (7, "Q")])
def test_cohorts_equal_a_literal_reference_on_random_tables(seed: int, period: str) -> None:
    tx = random_table(seed)
    cohorts = cohort_retention(tx, period=period)
    purchases = tx[tx["amount"] >= 0].assign(
        p=lambda f: f["timestamp"].dt.tz_localize(None).dt.to_period(period)
    )
    orders = purchases.sort_values("timestamp").drop_duplicates(["customer_id", "order_id"])
    acquired = orders.groupby("customer_id")["p"].min()
    last = tx["timestamp"].dt.tz_localize(None).max().to_period(period)
    for cohort, members in acquired.groupby(acquired):
        row = cohorts.loc[str(cohort)]
        assert row["cohort_size"] == len(members)
        for offset in range(len(cohorts.columns) - 1):
            target = cohort + offset
            bought = set(orders.loc[orders["p"] == target, "customer_id"])
            share = len(bought & set(members.index)) / len(members)
            if target > last:
                assert math.isnan(row[offset])
            else:
                assert row[offset] == pytest.approx(share)
