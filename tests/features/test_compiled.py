"""The compiled (numba) engine of the feature builder gives the SQL engine's table, column by
column: on the simulator, on CDNOW, on random histories and on the cases that break one-pass code
(refunds, several orders a day, a customer whose only purchase is on the cutoff day, rows out of
time order)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import transactions

from retain.data.datasets import Dataset
from retain.data.synthetic import simulate
from retain.errors import RetainInputError
from retain.features import FeatureBuilder, compiled
from retain.features.in_memory import MAX_ROWS

from .test_in_memory import tables


def same_as_sql(
    tx: pd.DataFrame,
    cutoff: str,
    events: pd.DataFrame | None = None,
    builder: dict[str, object] | None = None,
) -> pd.DataFrame:
    """The numba engine's table, after checking it equals the SQL's: the same customers, columns
    and NaNs; floats equal to 1e-9 relative (both round to 9 decimals; a sum that adds in another
    order could land on the other side of a rounding boundary)."""
    options = builder or {}
    sql = FeatureBuilder(engine="duckdb", **options).build(tx, cutoff, events=events)  # type: ignore[arg-type]
    ours = FeatureBuilder(engine="numba", **options).build(tx, cutoff, events=events)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(ours, sql, check_exact=False, rtol=1e-9, atol=0)
    return ours


def test_the_kernel_passed_its_check_against_numpy() -> None:
    assert compiled.available()


def test_simulator_with_orders_products_discounts_refunds_and_events() -> None:
    data = simulate(3000, events=True, discounts=True, refund_rate=0.1, seed=5)
    assert data.events is not None
    table = same_as_sql(data.transactions, "2023-09-30", data.events)
    assert len(table) > 2000 and (table["refund_total"] > 0).sum() > 100
    assert table["n_categories"].notna().all() and (table["discount_share"] > 0).any()


def test_simulator_without_the_optional_columns() -> None:
    tx = simulate(2000, refund_rate=0.05, seed=3).transactions
    bare = tx[["customer_id", "timestamp", "amount"]]
    table = same_as_sql(bare, "2023-06-30", builder={"windows": (7, 60), "trend_days": 30})
    assert table["n_products"].isna().all() and table["discount_share"].isna().all()


@pytest.mark.parametrize("cutoff", ["1997-09-30", "1998-06-30"])
def test_cdnow(cdnow_master: Dataset, cutoff: str) -> None:
    tx = cdnow_master.transactions.frame
    assert len(tx) > MAX_ROWS
    assert FeatureBuilder()._engine_for(tx, None) == "numba"  # auto takes it for large tables
    table = same_as_sql(tx, cutoff)
    assert len(table) == 23_570 if cutoff == "1998-06-30" else len(table) > 20_000


def test_odd_cases_by_hand() -> None:
    # a: two orders and a same-day refund on Jan 5 (rows out of time order), an order of two
    #    lines on Jan 9, a refund-only day on Jan 20; b: its only purchase is on the cutoff day,
    #    at 23:59; c: refunds only (no row); d: only a purchase after the cutoff (no row).
    tx = transactions(
        [
            ("a", "2021-01-09 10:00", 30.0),
            ("a", "2021-01-05 09:00", 100.0),
            ("a", "2021-01-05 18:00", 50.0),
            ("a", "2021-01-05 20:00", -20.0),
            ("a", "2021-01-09 10:00", 5.0),
            ("a", "2021-01-20 11:00", -10.0),
            ("b", "2021-01-31 23:59", 12.5),
            ("c", "2021-01-10 12:00", -4.0),
            ("d", "2021-02-01 00:00", 8.0),
        ],
        order_id=["o3", "o1", "o2", "r1", "o3", "r2", "o9", "r3", "o8"],
        product_id=["p1", "p1", "p2", None, "p3", None, "p1", None, "p1"],
    )
    table = same_as_sql(tx, "2021-01-31", builder={"windows": (7, 30), "trend_days": 14})
    rows = table.set_index("customer_id")
    assert rows.index.tolist() == ["a", "b"]
    a, b = rows.loc["a"], rows.loc["b"]
    assert (a["frequency"], a["recency"], a["orders_total"], a["n_products"]) == (1, 4, 3, 3)
    assert a["monetary_value"] == 35.0  # Jan 9's net; Jan 5 (net 130) is the first
    assert (a["spend_total"], a["gross_total"], a["refund_total"]) == (155.0, 185.0, 30.0)
    assert (b["frequency"], b["T"], b["days_since_last_purchase"], b["orders_7d"]) == (0, 0, 0, 1)
    assert b["mean_purchase_hour"] == pytest.approx(23 + 59 / 60)


def test_ids_order_as_text_byte_by_byte() -> None:
    """Ids that share their first 8 bytes, differ in length, carry non-ASCII letters or digits
    of different widths come in DuckDB's order (the hashing route sorts them by 8-byte words)."""
    ids = ["customer_0010", "customer_009", "customer_0010x", "Zoë", "Zoe", "10", "9", "c d", ""]
    rows = [(c, f"2021-01-{1 + k:02d} 10:00", 1.0 + k) for k, c in enumerate(ids)]
    tx = transactions(rows * 3)
    table = same_as_sql(tx, "2021-02-01")
    assert table["customer_id"].tolist() == sorted(ids)
    assert (table["frequency"] == 0).all() and (table["orders_total"] == 3).all()


def test_customer_codes_equal_a_sorted_factorize() -> None:
    rng = np.random.default_rng(1)
    values = pd.Series(
        [f"id{'x' * int(k % 13)}{k}" for k in rng.integers(0, 5000, 20_000)], dtype="str"
    )
    code, ids = compiled._customer_codes(values)
    expected_code, expected_ids = pd.factorize(values, sort=True)
    assert ids.tolist() == list(expected_ids)
    np.testing.assert_array_equal(code, expected_code)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.sampled_from([(30, 90, 180, 365), (7, 30)]), st.integers(1, 120))
def test_random_tables(
    data: tuple[pd.DataFrame, pd.DataFrame | None], windows: tuple[int, ...], trend_days: int
) -> None:
    transactions_, events = data
    same_as_sql(
        transactions_, "2021-06-30", events, builder={"windows": windows, "trend_days": trend_days}
    )


def test_a_row_without_a_customer_is_refused_by_name() -> None:
    tx = transactions([("a", "2021-01-01 10:00", 1.0), ("b", "2021-01-02 10:00", 2.0)])
    tx.loc[1, "customer_id"] = None
    with pytest.raises(RetainInputError, match=r"customer_id is missing on 1 rows"):
        FeatureBuilder(engine="numba").build(tx, "2021-02-01")
    assert FeatureBuilder()._engine_for(pd.concat([tx] * MAX_ROWS), None) == "duckdb"
