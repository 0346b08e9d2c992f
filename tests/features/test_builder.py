import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifetimes.utils import summary_data_from_transaction_data
from tests.helpers import transactions

from retain.data.datasets import Dataset
from retain.errors import RetainInputError
from retain.features import RFM_COLUMNS, FeatureBuilder, build_features


@pytest.fixture(params=["duckdb", "numpy", "numba"])
def engine(request: pytest.FixtureRequest) -> str:
    """The builder's engines (SQL, NumPy for small inputs, numba for large ones) must agree on
    every test."""
    return str(request.param)


def lifetimes_rfm(tx: pd.DataFrame, cutoff: str) -> pd.DataFrame:
    naive = tx.assign(timestamp=tx["timestamp"].dt.tz_localize(None))
    summary = summary_data_from_transaction_data(
        naive, "customer_id", "timestamp", "amount", observation_period_end=cutoff, freq="D"
    )
    summary.index = summary.index.astype("str")
    return summary.sort_index()


@pytest.mark.parametrize(
    ("kind", "cutoff"),
    [("master", "1997-09-30"), ("master", "1998-06-30"), ("sample", "1997-09-30")],
)
def test_rfm_equals_lifetimes_on_cdnow(
    kind: str, cutoff: str, cdnow_master: Dataset, cdnow_sample: Dataset, engine: str
) -> None:
    tx = (cdnow_master if kind == "master" else cdnow_sample).transactions.frame
    ours = (
        FeatureBuilder(engine=engine)
        .build(tx, cutoff)
        .set_index("customer_id")[RFM_COLUMNS]
        .sort_index()
    )
    theirs = lifetimes_rfm(tx, cutoff)
    assert ours.index.tolist() == theirs.index.tolist()
    pd.testing.assert_frame_equal(ours, theirs[RFM_COLUMNS], check_names=False, rtol=1e-12)
    assert (ours["frequency"] > 0).sum() >= 946  # repeat customers are compared (946 in the sample)


def test_behaviour_features_by_hand(engine: str) -> None:
    # Customer a: purchases on Jan 1 (two orders), Jan 11, Jan 31 (a Sunday, 18:30), a refund on
    # Feb 2, and a purchase after the cutoff that must not count. Customer b: one purchase.
    tx = transactions(
        [
            ("a", "2021-01-01 10:00", 100.0),
            ("a", "2021-01-01 12:00", 50.0),
            ("a", "2021-01-11 09:00", 40.0),
            ("a", "2021-01-31 18:30", 60.0),
            ("a", "2021-02-02 09:00", -30.0),
            ("a", "2021-02-20 09:00", 999.0),
            ("b", "2020-12-01 08:00", 10.0),
        ],
        order_id=["o1", "o2", "o3", "o4", "r1", "o5", "o6"],
        product_id=["p1", "p2", "p1", "p3", "p3", "p9", "p1"],
        discount=[0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    )
    features = FeatureBuilder(windows=(7, 30), trend_days=14, engine=engine).build(tx, "2021-02-10")
    a = features.set_index("customer_id").loc["a"]
    assert a["frequency"] == 2  # three purchase days, the first is not a repeat
    assert a["recency"] == 30 and a["T"] == 40
    assert a["monetary_value"] == pytest.approx((40 + 60) / 2)
    assert a["days_since_last_purchase"] == 10
    assert a["orders_total"] == 4  # the refund is not an order
    assert a["spend_total"] == pytest.approx(220.0)
    assert a["gross_total"] == pytest.approx(250.0)
    assert a["refund_share"] == pytest.approx(30 / 250)
    assert a["avg_order_value"] == pytest.approx(250 / 4)
    assert a["ipt_mean"] == 15 and a["ipt_median"] == 15
    assert a["ipt_std"] == pytest.approx(np.std([10, 20], ddof=1))
    assert a["overdue_ratio"] == pytest.approx(10 / 15)
    # Windows end on the cutoff day: 7 days = Feb 4..10 (nothing), 30 days = Jan 12..Feb 10.
    assert (a["orders_7d"], a["spend_7d"]) == (0, 0)
    assert a["orders_30d"] == 1 and a["spend_30d"] == pytest.approx(60 - 30)
    # Trend: gross of Jan 28..Feb 10 (60) against Jan 14..27 (0).
    assert a["spend_trend"] == pytest.approx(1.0)
    assert a["n_products"] == 3  # p1, p2, p3 (p9 is after the cutoff)
    assert a["discount_share"] == pytest.approx(1 / 4)
    assert a["weekend_share"] == pytest.approx(1 / 3)
    assert a["mean_purchase_hour"] == pytest.approx((10 + 12 + 9 + 18.5) / 4)
    b = features.set_index("customer_id").loc["b"]
    assert b["frequency"] == 0 and b["monetary_value"] == 0
    assert np.isnan(b["ipt_mean"]) and np.isnan(b["overdue_ratio"])
    assert np.isnan(b["n_categories"])  # no category column: unknown, not zero
    assert np.isnan(b["sessions_30d"])  # no events table: unknown, not zero


def test_only_customers_with_a_purchase_by_the_cutoff_get_a_row(engine: str) -> None:
    tx = transactions(
        [("a", "2021-01-01", 10.0), ("b", "2021-03-01", 10.0), ("c", "2021-01-05", -10.0)]
    )
    features = FeatureBuilder(engine=engine).build(tx, "2021-02-01")
    assert features["customer_id"].tolist() == ["a"]


def test_no_purchase_before_the_cutoff_is_an_error(engine: str) -> None:
    tx = transactions([("a", "2021-03-01", 10.0)])
    with pytest.raises(
        RetainInputError, match="no customer has a purchase on or before 2021-02-01"
    ):
        FeatureBuilder(engine=engine).build(tx, "2021-02-01")


def test_cutoff_includes_its_whole_day_in_utc(engine: str) -> None:
    tx = transactions([("a", "2021-01-01", 10.0), ("a", "2021-02-01T23:59:59Z", 5.0)])
    features = FeatureBuilder(engine=engine).build(tx, dt.date(2021, 2, 1))
    assert features.loc[0, "frequency"] == 1
    later = FeatureBuilder(engine=engine).build(
        tx, pd.Timestamp("2021-02-01T12:00", tz="Europe/Paris")
    )
    assert later.loc[0, "frequency"] == 1


def test_event_features(engine: str) -> None:
    tx = transactions([("a", "2021-01-01", 10.0), ("b", "2021-01-01", 10.0)])
    events = pd.DataFrame(
        {
            "customer_id": pd.Series(["a", "a", "a", "a", "a"], dtype="str"),
            "timestamp": pd.to_datetime(
                ["2021-01-20", "2021-01-30", "2021-01-30", "2021-01-30", "2021-02-05"], utc=True
            ).astype("datetime64[us, UTC]"),
            "event_type": pd.Series(
                ["session", "session", "email_open", "email_click", "session"], dtype="str"
            ),
        }
    )
    features = FeatureBuilder(windows=(7, 30), engine=engine).build(tx, "2021-01-31", events=events)
    a, b = features.iloc[0], features.iloc[1]
    assert a["sessions_7d"] == 1 and a["sessions_30d"] == 2
    assert a["days_since_last_session"] == 1
    assert a["email_click_rate_90d"] == 1.0
    # b has no events in a table that exists: zero counts, unknown recency.
    assert b["sessions_30d"] == 0 and np.isnan(b["days_since_last_session"])


def test_labels_by_hand() -> None:
    tx = transactions(
        [
            ("a", "2021-01-01", 10.0),
            ("a", "2021-01-11", 20.0),
            ("a", "2021-01-11", -5.0),
            ("a", "2021-01-25", 30.0),
            ("b", "2021-01-02", 10.0),
            ("b", "2021-01-31", 99.0),  # after the horizon
            ("c", "2021-01-05", 10.0),  # after the cutoff: not a known customer
        ]
    )
    labels = FeatureBuilder().labels(tx, "2021-01-01", horizon_days=28).set_index("customer_id")
    assert labels.index.tolist() == ["a"]
    a = labels.loc["a"]
    assert not a["churned"] and a["purchased"]
    assert a["days_to_next_purchase"] == 10
    assert a["purchases_in_horizon"] == 2
    assert a["spend_in_horizon"] == pytest.approx(45.0)

    labels = FeatureBuilder().labels(tx, "2021-01-02", horizon_days=28).set_index("customer_id")
    b = labels.loc["b"]
    assert b["churned"] and b["days_to_next_purchase"] == 28  # censored at the horizon
    assert b["spend_in_horizon"] == 0


def test_labels_need_data_to_the_end_of_the_horizon() -> None:
    tx = transactions([("a", "2021-01-01", 10.0), ("a", "2021-02-01", 10.0)])
    with pytest.raises(
        RetainInputError,
        match="needs data up to 2021-03-02, but the transactions end on 2021-02-01",
    ):
        FeatureBuilder().labels(tx, "2021-01-31", horizon_days=30)


def test_build_features_adds_segments_and_labels(cdnow_sample: Dataset) -> None:
    table = build_features(cdnow_sample.transactions.frame, "1997-09-30", horizon_days=180)
    assert {"segment", "r_score", "churned", "spend_in_horizon"} <= set(table.columns)
    assert table["customer_id"].is_unique
    # Segments carry signal: Champions churn far less than Lost customers.
    churn = table.groupby("segment", observed=True)["churned"].mean()
    assert churn["Champions"] < churn["Lost"] - 0.3


# -- the point-in-time property --------------------------------------------------------------

CUTOFF = pd.Timestamp("2021-06-30")
START = pd.Timestamp("2021-01-01")


def _rows(draw: st.DrawFn, n: int, before: bool) -> list[tuple[str, pd.Timestamp, float, str, str]]:
    rows = []
    for i in range(n):
        customer = draw(st.sampled_from(["a", "b", "c", "d", "e"]))
        if before:
            seconds = draw(st.integers(0, int((CUTOFF - START).total_seconds()) + 86_399))
            stamp = START + pd.Timedelta(seconds=seconds)
        else:
            seconds = draw(st.integers(86_400, 400 * 86_400))
            stamp = CUTOFF + pd.Timedelta(seconds=seconds)
        amount = draw(st.floats(-50, 200, allow_nan=False).map(lambda x: round(x, 2)))
        order = f"o{draw(st.integers(0, 6))}" if draw(st.booleans()) else f"u{before}{i}"
        product = draw(st.sampled_from(["p1", "p2", "p3"]))
        rows.append((customer, stamp, amount, order, product))
    return rows


@st.composite
def history_and_future(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    past = _rows(draw, draw(st.integers(1, 25)), before=True)
    # Make sure somebody has a purchase by the cutoff.
    past.append(("a", START, 10.0, "first", "p1"))
    future = _rows(draw, draw(st.integers(1, 25)), before=False)

    def frame(rows: list[tuple[str, pd.Timestamp, float, str, str]]) -> pd.DataFrame:
        table = pd.DataFrame(
            rows, columns=["customer_id", "timestamp", "amount", "order_id", "product_id"]
        )
        table["timestamp"] = table["timestamp"].dt.tz_localize("UTC").astype("datetime64[us, UTC]")
        for c in ("customer_id", "order_id", "product_id"):
            table[c] = table[c].astype("str")
        return table

    return frame(past), frame(future)


@pytest.mark.parametrize("engine_name", ["duckdb", "numpy"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history_and_future())
def test_transactions_after_the_cutoff_never_change_a_feature(
    engine_name: str, data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    past, future = data
    builder = FeatureBuilder(windows=(7, 30, 90), trend_days=30, engine=engine_name)
    before = builder.build(past, CUTOFF)
    after = builder.build(
        pd.concat([past, future], ignore_index=True).sample(frac=1, random_state=0), CUTOFF
    )
    pd.testing.assert_frame_equal(before, after, check_exact=False, rtol=1e-9)


def test_rfm_equals_lifetimes_on_synthetic_data(engine: str) -> None:
    from retain.data.synthetic import simulate

    data = simulate(3_000, refund_rate=0.0, seed=5)
    cutoff = "2024-06-30"
    ours = FeatureBuilder(engine=engine).build(data.transactions, cutoff).set_index("customer_id")
    theirs = lifetimes_rfm(data.transactions, cutoff)
    ours = ours[RFM_COLUMNS].sort_index()
    assert ours.index.tolist() == theirs.index.tolist()
    pd.testing.assert_frame_equal(ours, theirs[RFM_COLUMNS], check_names=False, rtol=1e-12)
    # Synthetic timestamps carry a time of day: same-day purchases are merged as in lifetimes.
    assert (data.transactions["timestamp"].dt.hour > 0).any()


@pytest.mark.parametrize(
    ("order_ids", "orders"),
    [
        (["o1", "o1", "o1"], 1),  # one order of three lines
        (["o1", "o2"], 2),  # two single-line orders
        (["o1", "o1", "o2"], 2),  # three lines, two orders: counted exactly
        (["o1", "o2", "o3", "o2"], 3),
        (["o1", "o1", None], 2),  # a line without an order id is an order of its own
    ],
)
def test_orders_are_distinct_order_ids_per_day(
    order_ids: list[str | None], orders: int, engine: str
) -> None:
    rows = [("a", "2021-01-05 10:00", 10.0)] * len(order_ids)
    tx = transactions([*rows, ("b", "2021-01-05", 5.0)], order_id=[*order_ids, "x"])
    features = FeatureBuilder(engine=engine).build(tx, "2021-01-31").set_index("customer_id")
    assert features.loc["a", "orders_total"] == orders
    assert features.loc["a", "orders_30d"] == orders
    assert features.loc["b", "orders_total"] == 1


def test_features_are_identical_run_to_run(cdnow_master: Dataset) -> None:
    # Parallel float sums change their last bits between runs; the builder must not.
    tx = cdnow_master.transactions.frame
    first = FeatureBuilder().build(tx, "1998-03-31")
    for _ in range(3):
        pd.testing.assert_frame_equal(
            FeatureBuilder().build(tx, "1998-03-31"), first, check_exact=True
        )


def test_last_years_orders_in_the_coming_window(engine: str) -> None:
    """Orders a year before the next 30 / 90 days (an annual habit), for customers of a year or
    more; unknown (NaN) for younger ones, whose last year is not in the data."""
    cutoff = "2022-06-30"  # a year before: the next 30 days are 2021-07-01..2021-07-30
    rows = [
        ("old", "2021-01-10", 10.0),
        ("old", "2021-07-02", 10.0),  # in both windows
        ("old", "2021-07-30", 10.0),  # last day of the 30-day window
        ("old", "2021-07-31", 10.0),  # 90-day window only
        ("old", "2021-09-28", 10.0),  # last day of the 90-day window
        ("old", "2021-09-29", 10.0),  # outside both
        ("old", "2022-06-01", 10.0),
        ("young", "2022-01-05", 10.0),
    ]
    features = (
        FeatureBuilder(engine=engine).build(transactions(rows), cutoff).set_index("customer_id")
    )
    assert features.loc["old", "orders_ly_next_30d"] == 2
    assert features.loc["old", "orders_ly_next_90d"] == 4
    assert np.isnan(features.loc["young", "orders_ly_next_30d"])
    assert np.isnan(features.loc["young", "orders_ly_next_90d"])
