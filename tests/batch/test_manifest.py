"""The manifest's input summary adds up the reports of a table's parts (chunks, partitions)."""

from __future__ import annotations

import pandas as pd

from retain.batch.manifest import InputSummary
from retain.data.validation import report_counts, validate_transactions


def _part(ids: list[str], orders: list[str], quantities: list[int]) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "timestamp": [f"2024-01-{d + 1:02d}" for d in range(n)],
            "amount": ["10.0"] * n,
            "order_id": orders,
            "quantity": [str(q) for q in quantities],
            "currency": ["EUR"] * (n - 1) + ["USD"],
        }
    )


def test_every_count_of_the_parts_is_summed() -> None:
    """Issue 17's counts (decimal ids, non-positive quantities, shared order ids, currencies)
    reach the manifest whole when a table is validated in parts."""
    parts = [
        _part(["1.0", "2", "3"], ["a", "a", "b"], [1, 0, 2]),
        _part(["4.00", "5.0", "6"], ["c", "c", "d"], [-1, 0, 1]),
    ]
    reports = [validate_transactions(part, options={"currency": "EUR"}).report for part in parts]
    summary = InputSummary(path="t.csv", sha256="0" * 64, bytes=1)
    for report in reports:
        summary = summary.add(report_counts(report))
    assert [r.normalised_ids for r in reports] == [1, 2]
    assert summary.normalised_ids == 3
    assert summary.nonpositive_quantity_rows == 3
    assert summary.shared_order_ids == 2
    assert summary.currencies == {"EUR": 4, "USD": 2}
    assert summary.rows_rejected == {"currency other than EUR": 2}
    assert (summary.rows_read, summary.rows_valid) == (6, 4)
