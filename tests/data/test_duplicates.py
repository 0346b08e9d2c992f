"""Duplicates are rows identical to an earlier row in every column of the source, mapped or not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from retain.data.contract import TRANSACTIONS
from retain.data.io import load_table
from retain.data.validation import _exact_duplicates, validate_transactions
from retain.errors import RetainInputError

# The README's mappings: the old one (an Amount column) and the native line-item one.
AMOUNT_MAPPING = 'customer_id="Customer ID",timestamp=InvoiceDate,amount=Amount,order_id=Invoice'
NATIVE_MAPPING = (
    'customer_id="Customer ID",timestamp=InvoiceDate,price=Price,quantity=Quantity,'
    "order_id=Invoice,product_id=StockCode"
)
LONDON = {"timezone": "Europe/London"}


def invoice_lines(n: int) -> pd.DataFrame:
    """``n`` lines of one invoice: one customer, one time, one amount, each a different product."""
    return pd.DataFrame(
        {
            "Customer ID": ["12345"] * n,
            "InvoiceDate": ["2011-01-05 10:00"] * n,
            "Amount": [2.5] * n,
            "Invoice": ["536365"] * n,
            "StockCode": [f"P{i}" for i in range(n)],
        }
    )


@pytest.mark.parametrize("n", [10, 60_000])  # pandas below 50,000 rows, DuckDB's hash above
def test_lines_differing_only_in_an_unmapped_column_are_not_duplicates(n: int) -> None:
    lines = invoice_lines(n)
    validated = validate_transactions(lines, AMOUNT_MAPPING)
    assert validated.report.duplicate_rows == 0
    assert validated.report.warnings == []

    repeated = pd.concat([lines, lines.iloc[:3]], ignore_index=True)
    validated = validate_transactions(repeated, AMOUNT_MAPPING, {"duplicates": "drop"})
    assert validated.report.duplicate_rows == 3
    assert validated.report.quarantined == {"duplicate row": 3}
    assert validated.quarantine.index.tolist() == [n, n + 1, n + 2]


def test_the_message_names_the_columns_compared_and_both_spellings_of_the_option() -> None:
    lines = pd.concat([invoice_lines(2)] * 2, ignore_index=True)
    validated = validate_transactions(lines, AMOUNT_MAPPING)
    assert validated.report.warnings == [
        "rows identical to an earlier row in all 5 columns (Customer ID, InvoiceDate, Amount, "
        "Invoice, StockCode): 2 rows (kept; to set them aside: --duplicates drop, or "
        'duplicates="drop" in Python)'
    ]
    with pytest.raises(RetainInputError) as error:
        validate_transactions(lines, AMOUNT_MAPPING, {"duplicates": "error"})
    assert str(error.value).startswith("transactions: rows identical to an earlier row in all 5")
    assert '--duplicates keep|drop (duplicates="keep"|"drop" in Python)' in str(error.value)


def test_a_wide_table_lists_its_first_columns_and_how_many_more() -> None:
    lines = pd.concat([invoice_lines(1)] * 2, ignore_index=True)
    for i in range(20):
        lines[f"extra{i}"] = i
    (warning,) = validate_transactions(lines, AMOUNT_MAPPING).report.warnings
    assert "in all 25 columns (Customer ID, InvoiceDate, " in warning
    assert "extra6 and 13 more): 1 row (kept" in warning


def test_unusable_rows_are_not_counted_as_duplicates() -> None:
    lines = pd.concat([invoice_lines(2)] * 2, ignore_index=True)
    lines["Customer ID"] = [
        None,
        "1",
        None,
        "1",
    ]  # the guests' repeat is set aside, not a duplicate
    validated = validate_transactions(lines, AMOUNT_MAPPING)
    assert validated.report.quarantined == {"missing customer_id": 2}
    assert validated.report.duplicate_rows == 1


def test_the_fast_path_finds_what_pandas_finds() -> None:
    """DuckDB's row hash, confirmed exactly, against pandas' ``duplicated`` on every column type
    a file brings: text with missing values, numbers with NaN, typed timestamps, and columns
    whose names need quoting."""
    rng = np.random.default_rng(3)
    n = 120_000
    frame = pd.DataFrame(
        {
            'say "hi"': pd.array(rng.choice(["a", "b", None, "c d"], n), dtype="str"),
            "x": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 30, n).astype(float)),
            "when": pd.Timestamp("2021-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 40, n), unit="h"),
            "n": rng.integers(0, 5, n),
        }
    )
    expected = frame.duplicated().to_numpy()
    assert 0 < expected.sum() < n
    np.testing.assert_array_equal(_exact_duplicates(frame), expected)
    mixed = frame.assign(n=[1 if i % 2 else "one" for i in range(n)])  # DuckDB refuses: pandas
    np.testing.assert_array_equal(_exact_duplicates(mixed), mixed.duplicated().to_numpy())


@pytest.fixture(scope="module")
def native_csv(online_retail_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Online Retail II as the shop exports it: its own columns, no Amount, CSV."""
    path = tmp_path_factory.mktemp("native") / "export.csv"
    table = pq.read_table(online_retail_file).drop_columns(["Amount"])
    pacsv.write_csv(table, path)  # pyarrow's writer: seconds faster than pandas' on a million rows
    return path


def test_online_retail_duplicates_are_the_rows_identical_in_every_column(native_csv: Path) -> None:
    """What the count is: usable rows (here, rows with a customer id: guest lines are the file's
    only unusable rows) that repeat an earlier row in all 8 columns of the export, as text."""
    loaded = load_table(native_csv, TRANSACTIONS, NATIVE_MAPPING, LONDON)

    text = pd.read_csv(native_csv, dtype=str, keep_default_na=False)
    usable = text["Customer ID"] != ""
    identical = text.duplicated()
    assert int(identical.sum()) == 11_812  # in the whole file, guest lines included
    expected = int((identical & usable).sum())
    assert expected == 11_676

    report = loaded.report
    assert report.rows_valid == int(usable.sum())  # the usable rows are exactly those with an id
    assert report.duplicate_rows == expected
    assert (
        "rows identical to an earlier row in all 8 columns (Invoice, StockCode, Description, "
        "Quantity, InvoiceDate, Price, Customer ID, Country): 11,676 rows (kept"
        in report.warnings[0]
    )


def test_online_retail_drop_sets_aside_only_whole_row_repeats(online_retail_file: Path) -> None:
    """With the README's former mapping (amount, order id: no product), the contract's columns
    alone would call 322,529 lines duplicates; only the 11,676 whole-row repeats go."""
    options = LONDON | {"duplicates": "drop"}
    loaded = load_table(online_retail_file, TRANSACTIONS, AMOUNT_MAPPING, options)
    assert loaded.report.duplicate_rows == 11_676
    assert loaded.report.quarantined == {"missing customer_id": 235_287, "duplicate row": 11_676}
    assert loaded.report.rows_valid == 1_044_847 - 235_287 - 11_676
