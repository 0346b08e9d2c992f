"""Order ids shared by several customers are found the same way on large tables (DuckDB) as on
small ones (pandas)."""

import numpy as np
import pandas as pd

from retain.data.validation import _SMALL, _shared_orders


def pandas_shared_orders(frame: pd.DataFrame) -> list[str]:
    pairs = frame[["order_id", "customer_id"]].dropna().drop_duplicates()
    shared = pairs["order_id"][pairs["order_id"].duplicated()].drop_duplicates()
    return sorted(shared.astype("str").tolist())


def test_a_large_table_finds_the_same_shared_orders() -> None:
    rng = np.random.default_rng(4)
    n = 2 * _SMALL
    orders = rng.integers(0, n // 2, n)  # most orders hold two lines
    customers = orders % 9_973  # one customer per order ...
    shared = rng.choice(n, 40, replace=False)
    customers[shared] += 1  # ... but for a few lines
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series([f"c{c}" for c in customers], dtype="str"),
            "order_id": pd.Series([f"o{o}" for o in orders], dtype="str"),
        }
    )
    frame.loc[:5, "order_id"] = None  # lines without an order id are never shared
    expected = pandas_shared_orders(frame)
    assert 10 < len(expected) <= 40
    assert _shared_orders(frame) == expected
