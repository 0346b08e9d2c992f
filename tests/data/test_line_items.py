"""Line-item exports: a unit price and a quantity, no line total (amount = quantity x price)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from retain.data.contract import PYFUNC_INPUT_COLUMNS, TRANSACTIONS
from retain.data.io import load_table
from retain.data.validation import validate_transactions
from retain.errors import RetainInputError
from retain.features import build_features
from retain.serving.schemas import Transaction

LINE_ITEMS = "customer_id=Customer,timestamp=When,price=Price,quantity=Qty"


def lines(**extra: list[object]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Customer": ["a", "a", "b", "c"],
            "When": ["2021-01-01", "2021-01-01", "2021-01-02", "2021-01-03"],
            "Price": [2.5, 4.0, 10.0, 3.0],
            "Qty": [4, 1, -2, 3],
            **extra,
        }
    )


def test_amount_is_quantity_times_price_when_no_amount_is_mapped() -> None:
    validated = validate_transactions(lines(), LINE_ITEMS)
    TRANSACTIONS.check(validated.frame)
    frame = validated.frame
    assert frame["amount"].tolist() == [10.0, 4.0, -20.0, 9.0]
    assert frame["price"].tolist() == [2.5, 4.0, 10.0, 3.0]
    assert validated.report.refund_rows == 1  # a returned line: negative quantity
    assert validated.report.notes == [
        "amount = quantity x price ('Qty' x 'Price'): no amount column is mapped"
    ]
    assert validated.report.warnings == []


def test_unreadable_price_or_quantity_sets_the_row_aside_with_its_reason() -> None:
    table = pd.concat([lines()] * 3, ignore_index=True).astype({"Price": object, "Qty": object})
    table.loc[0, "Price"] = "n/a"
    table.loc[1, "Qty"] = None
    table.loc[2, "Price"] = ""
    validated = validate_transactions(table, LINE_ITEMS)
    assert validated.report.quarantined == {
        "non-numeric price": 1,
        "missing quantity": 1,
        "missing price": 1,
    }
    assert validated.quarantine["reason"].tolist() == [
        "non-numeric price",
        "missing quantity",
        "missing price",
    ]
    assert validated.report.rows_valid == 9
    assert validated.frame["amount"].notna().all()


def test_a_mostly_unreadable_price_is_a_column_error() -> None:
    table = lines().astype({"Price": object})
    table["Price"] = ["£2.50", "£4.00", "£10", "3.0"]
    with pytest.raises(RetainInputError, match=r"column 'Price': 3 of 4 rows .* non-numeric price"):
        validate_transactions(table, LINE_ITEMS)


def test_without_an_amount_the_error_says_how_to_map_line_items() -> None:
    with pytest.raises(RetainInputError) as error:
        validate_transactions(lines(), "customer_id=Customer,timestamp=When,price=Price")
    message = str(error.value)
    assert "required column 'amount' is missing (4 rows)" in message
    assert "--columns amount=<your column> (the line total), or, for line items, " in message
    assert "quantity=<your column>,price=<your column>" in message


def test_an_amount_mapped_to_the_unit_price_is_warned_about() -> None:
    """``amount=Price,quantity=Quantity`` would count one unit's price as a line's revenue."""
    mapping = "customer_id=Customer,timestamp=When,amount=Price,quantity=Qty"
    (warning,) = validate_transactions(lines(), mapping).report.warnings
    assert warning == (
        "amount is read from 'Price', named like a unit price, and 2 rows have a quantity above "
        "1: unit prices would be counted as revenue; map price=Price,quantity=Qty and no amount "
        "(amount = quantity x price), or map amount to the line total"
    )
    # A line total named like one is not warned about, nor a unit price with no quantity above 1.
    totals = lines(**{"Line total": [10.0, 4.0, -20.0, 9.0]})
    totals_mapping = 'customer_id=Customer,timestamp=When,amount="Line total",quantity=Qty'
    assert validate_transactions(totals, totals_mapping).report.warnings == []
    singles = lines().assign(Qty=1)
    assert validate_transactions(singles, mapping).report.warnings == []


def test_an_amount_equal_to_the_mapped_price_on_most_multi_unit_lines_is_warned_about() -> None:
    table = lines(Net=[2.5, 4.0, 10.0, 3.0])  # the "net" column repeats the unit price
    mapping = "customer_id=Customer,timestamp=When,amount=Net,price=Price,quantity=Qty"
    (warning,) = validate_transactions(table, mapping).report.warnings
    assert warning.startswith(
        "amount ('Net') equals the unit price ('Price') on 2 of the 2 rows with a quantity above 1"
    )
    assert "map price=Price,quantity=Qty and no amount" in warning
    good = lines(Net=[10.0, 4.0, -20.0, 9.0])
    assert validate_transactions(good, mapping).report.warnings == []


def test_features_are_the_same_from_line_items_as_from_line_totals() -> None:
    """price is carried in the frame and ignored by the feature builder: amount holds revenue."""
    derived = validate_transactions(lines(), LINE_ITEMS).frame
    totals = validate_transactions(
        lines(Total=[10.0, 4.0, -20.0, 9.0]),
        "customer_id=Customer,timestamp=When,amount=Total,quantity=Qty",
    ).frame
    assert "price" in derived and "price" not in totals
    pd.testing.assert_frame_equal(
        build_features(derived, "2021-01-31"), build_features(totals, "2021-01-31")
    )


def test_the_service_and_the_pyfunc_take_net_amounts_not_prices() -> None:
    """A decision kept in one place: the HTTP request and the MLflow pyfunc take the same
    transaction columns, net amounts among them (what a caller already has); price only lets a
    file stand in for a missing amount, and the models never read it."""
    served = set(Transaction.model_fields) | {"customer_id"}
    assert served == {name for name, _, _ in PYFUNC_INPUT_COLUMNS}
    assert served <= set(TRANSACTIONS.columns)
    assert "amount" in served and "price" not in served


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_online_retail_line_items_give_the_file_s_own_amounts(
    online_retail_file: Path, tmp_path: Path, suffix: str
) -> None:
    """The native export (no Amount) read with price and quantity gives, line by line, the
    Amount column the data set's curators computed."""
    source = pd.read_parquet(online_retail_file)
    customers = source["Customer ID"].dropna().unique()[:300]
    cut = source[source["Customer ID"].isin(customers)].reset_index(drop=True)
    path = tmp_path / f"export{suffix}"
    native = cut.drop(columns="Amount")
    native.to_csv(path, index=False) if suffix == ".csv" else native.to_parquet(path)
    mapping = 'customer_id="Customer ID",timestamp=InvoiceDate,price=Price,quantity=Quantity'
    loaded = load_table(path, TRANSACTIONS, mapping, {"timezone": "Europe/London"})
    assert loaded.report.rows_valid == len(cut)
    pd.testing.assert_series_equal(
        loaded.frame["amount"], cut["Amount"], check_names=False, check_dtype=False, rtol=1e-12
    )
    # The same file mapped the wrong way round is warned about.
    wrong = 'customer_id="Customer ID",timestamp=InvoiceDate,amount=Price,quantity=Quantity'
    warnings = load_table(path, TRANSACTIONS, wrong, {"timezone": "Europe/London"}).report.warnings
    assert any(
        re.match(r"amount is read from 'Price', named like a unit price", w) for w in warnings
    )
