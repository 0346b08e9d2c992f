"""The NumPy engine of the feature builder gives the SQL engine's table, column by column."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retain.data.contract import EVENT_TYPES
from retain.data.datasets import Dataset
from retain.errors import RetainInputError
from retain.features import FeatureBuilder
from retain.features.in_memory import MAX_ROWS

CUTOFF = "2021-06-30"
CUSTOMERS = ["a", "b", "Zoë", "10", "9", "c d"]  # ids sort as text: "10" < "9" < "Zoë" < "a"


def assert_same_tables(
    transactions: pd.DataFrame,
    cutoff: str,
    events: pd.DataFrame | None = None,
    builder: dict[str, object] | None = None,
) -> pd.DataFrame:
    options = builder or {}
    sql = FeatureBuilder(engine="duckdb", **options).build(transactions, cutoff, events=events)  # type: ignore[arg-type]
    numpy = FeatureBuilder(engine="numpy", **options).build(transactions, cutoff, events=events)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(numpy, sql, check_exact=False, rtol=1e-12, atol=0)
    return sql


def test_cdnow_sample(cdnow_sample: Dataset) -> None:
    table = assert_same_tables(cdnow_sample.transactions.frame, "1997-09-30")
    assert len(table) == 2357


def test_synthetic_with_orders_products_discounts_refunds_and_events() -> None:
    from retain.data.synthetic import simulate

    data = simulate(800, events=True, discounts=True, refund_rate=0.1, seed=11)
    assert data.events is not None
    table = assert_same_tables(data.transactions, "2023-09-30", events=data.events)
    assert (table["refund_total"] > 0).any() and (table["discount_share"] > 0).any()
    assert (table["sessions_90d"] > 0).any() and table["ipt_std"].notna().any()


@st.composite
def tables(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Small transaction tables with everything that can go wrong: same-day orders, refunds,
    rows without order or product, rows after the cutoff, optional columns present or not."""
    n = draw(st.integers(1, 40))
    base = pd.Timestamp("2020-01-01", tz="UTC")
    minutes = st.integers(0, 600 * 24 * 60)  # about 20 months around the cutoff
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series(
                draw(st.lists(st.sampled_from(CUSTOMERS), min_size=n, max_size=n)), dtype="str"
            ),
            "timestamp": [
                base + pd.Timedelta(minutes=m)
                for m in draw(st.lists(minutes, min_size=n, max_size=n))
            ],
            "amount": draw(
                st.lists(
                    st.integers(-5_000, 20_000).map(lambda cents: cents / 100),
                    min_size=n,
                    max_size=n,
                )
            ),
        }
    )
    frame["timestamp"] = frame["timestamp"].astype("datetime64[us, UTC]")
    # The first row is a purchase before the cutoff: somebody has a row.
    frame.loc[0, ["timestamp", "amount"]] = [pd.Timestamp("2020-02-03 04:05", tz="UTC"), 10.0]
    labels = st.one_of(st.none(), st.sampled_from(["o1", "o2", "o3", "p", "q"]))
    for column in ("order_id", "product_id", "category"):
        if draw(st.booleans()):
            frame[column] = pd.Series(draw(st.lists(labels, min_size=n, max_size=n)), dtype="str")
    if draw(st.booleans()):
        discount = st.one_of(st.none(), st.sampled_from([0.0, 0.0, 5.0]))
        frame["discount"] = pd.Series(
            draw(st.lists(discount, min_size=n, max_size=n)), dtype="float64"
        )
    events = None
    if draw(st.booleans()):
        k = draw(st.integers(1, 30))
        events = pd.DataFrame(
            {
                "customer_id": pd.Series(
                    draw(st.lists(st.sampled_from(CUSTOMERS), min_size=k, max_size=k)),
                    dtype="str",
                ),
                "timestamp": [
                    base + pd.Timedelta(minutes=m)
                    for m in draw(st.lists(minutes, min_size=k, max_size=k))
                ],
                "event_type": pd.Series(
                    draw(
                        st.lists(st.sampled_from([*EVENT_TYPES, "other"]), min_size=k, max_size=k)
                    ),
                    dtype="str",
                ),
            }
        )
        events["timestamp"] = events["timestamp"].astype("datetime64[us, UTC]")
    return frame, events


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.sampled_from([(30, 90, 180, 365), (7, 30)]), st.integers(1, 120))
def test_random_tables(
    data: tuple[pd.DataFrame, pd.DataFrame | None], windows: tuple[int, ...], trend_days: int
) -> None:
    transactions, events = data
    assert_same_tables(
        transactions, CUTOFF, events, builder={"windows": windows, "trend_days": trend_days}
    )


def test_auto_takes_numpy_for_small_inputs_only(cdnow_master: Dataset) -> None:
    tx = cdnow_master.transactions.frame
    assert len(tx) > MAX_ROWS  # the master file takes the SQL path, the sample the NumPy one
    small = tx.head(1000)
    auto = FeatureBuilder()
    assert auto._in_memory(small, None) and not auto._in_memory(tx, None)
    assert not FeatureBuilder(engine="duckdb")._in_memory(small, None)
    assert FeatureBuilder(engine="numpy")._in_memory(tx, None)
    pd.testing.assert_frame_equal(
        auto.build(small, "1997-03-31"), FeatureBuilder(engine="duckdb").build(small, "1997-03-31")
    )


def test_an_unknown_engine_is_refused() -> None:
    tx = pd.DataFrame(
        {
            "customer_id": pd.Series(["a"], dtype="str"),
            "timestamp": pd.Series([pd.Timestamp("2021-01-01", tz="UTC")]).astype(
                "datetime64[us, UTC]"
            ),
            "amount": [1.0],
        }
    )
    with pytest.raises(RetainInputError, match=r"feature engine must be .* not 'spark'"):
        FeatureBuilder(engine="spark").build(tx, CUTOFF)
    assert np.isnan(FeatureBuilder(engine="numpy").build(tx, CUTOFF).loc[0, "ipt_median"])
