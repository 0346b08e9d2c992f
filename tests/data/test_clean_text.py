"""Large text columns are found clean or not exactly as small ones are (Arrow buffers above
``_SMALL`` rows, pandas below): a column is used as it is only when stripping changes nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from retain.data.validation import _SMALL, _clean_text_columns, validate_transactions

# Values that make a column dirty, each at an end of a value: ASCII, Unicode white space
# (no-break space, em space, ideographic space, line separator) and empty text.
DIRTY = [" C1", "C1 ", "\tC1", "C1\n", "\u00a0C1", "C1\u2003", "\u3000C1", "C1\u2028", ""]
# Values with odd bytes at their ends that are not white space: they must not make it dirty.
CLEAN = ["é1", "C1é", "日本", "C1\u00ad", "~", "Ω"]


def _column(values: list[str | None], n: int, chunked: bool) -> pd.Series:
    base = [f"C{i:07d}" for i in range(n)]
    rng = np.random.default_rng(0)
    for value, at in zip(values, rng.choice(n, size=len(values), replace=False), strict=False):
        base[at] = value  # type: ignore[call-overload]
    if not chunked:
        return pd.Series(base, dtype="str")
    half = n // 2  # a sliced second chunk: offsets that do not start at the buffer's start
    array = pa.chunked_array([pa.array(base[:half]), pa.array(["pad", *base[half:]]).slice(1)])
    return pd.Series(pd.arrays.ArrowStringArray(array)).astype("str")


@pytest.mark.parametrize("n", [100, 2 * _SMALL])
@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("value", DIRTY)
def test_one_value_with_white_space_at_an_end_makes_a_column_dirty(
    n: int, chunked: bool, value: str
) -> None:
    column = _column([value], n, chunked)
    assert _clean_text_columns({"customer_id": column}) == set()


@pytest.mark.parametrize("n", [100, 2 * _SMALL])
@pytest.mark.parametrize("chunked", [False, True])
def test_odd_bytes_that_are_not_white_space_and_missing_values_keep_it_clean(
    n: int, chunked: bool
) -> None:
    column = _column([*CLEAN, None, None], n, chunked)
    assert column.isna().sum() == 2
    assert _clean_text_columns({"customer_id": column}) == {"customer_id"}


def test_a_large_table_with_padded_ids_is_stripped_and_counted_as_a_small_one_would_be() -> None:
    n = 2 * _SMALL
    ids = [f"C{i % 997:04d}" for i in range(n)]
    ids[5], ids[7], ids[11] = " C0005", "C0007\u3000", "  "
    raw = pd.DataFrame(
        {
            "customer_id": pd.Series(ids, dtype="str"),
            "timestamp": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(range(n), "min"),
            "amount": 1.0,
        }
    )
    large = validate_transactions(raw)
    small = validate_transactions(raw.iloc[:100])
    assert large.frame["customer_id"].iloc[[5, 6, 7]].tolist() == ["C0005", "C0006", "C0007"]
    assert small.frame["customer_id"].iloc[[5, 6, 7]].tolist() == ["C0005", "C0006", "C0007"]
    assert large.report.quarantined == {"missing customer_id": 1}
    assert small.report.quarantined == {"missing customer_id": 1}
