"""A mapping and options are accepted in every form a user writes them: a notebook pastes the
command line's ``--columns`` text, or writes dicts, without importing retain's classes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retain.data.columns import ColumnMapping
from retain.data.contract import TRANSACTIONS
from retain.data.io import load_table, read_table
from retain.data.validation import ValidationOptions, validate_transactions
from retain.errors import RetainInputError

TEXT = 'customer_id="Customer ID",timestamp=InvoiceDate,amount=Amount'
DICT = {"customer_id": "Customer ID", "timestamp": "InvoiceDate", "amount": "Amount"}


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "export.csv"
    pd.DataFrame(
        {
            "Customer ID": ["17850", "13047"],
            "InvoiceDate": ["2010-12-01 08:26", "2010-07-01 09:00"],
            "Amount": [15.3, 22.0],
        }
    ).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "columns", [TEXT, DICT, ColumnMapping(DICT)], ids=["text", "dict", "class"]
)
@pytest.mark.parametrize(
    "options",
    [{"timezone": "Europe/London"}, ValidationOptions(timezone="Europe/London")],
    ids=["dict", "class"],
)
def test_load_table_takes_a_mapping_and_options_in_any_form(
    export: Path, columns: object, options: object
) -> None:
    loaded = load_table(export, TRANSACTIONS, columns, options)  # type: ignore[arg-type]
    stamps = loaded.frame["timestamp"].dt.strftime("%H:%M").tolist()
    assert stamps == ["08:26", "08:00"]  # GMT in December, BST (UTC+1) in July
    assert read_table(export, TRANSACTIONS, columns).columns.tolist() == list(DICT.values())  # type: ignore[arg-type]
    raw = pd.read_csv(export, dtype={"Customer ID": str})
    assert validate_transactions(raw, columns, options).report.rows_valid == 2  # type: ignore[arg-type]


def test_a_misspelt_option_is_named_with_the_valid_ones(export: Path) -> None:
    with pytest.raises(RetainInputError) as error:
        load_table(export, TRANSACTIONS, TEXT, {"time_zone": "Europe/London"})
    message = str(error.value)
    assert "validation options: time_zone: Extra inputs are not permitted" in message
    assert "the options are timezone, timestamp_format, duplicates" in message
    with pytest.raises(RetainInputError, match="validation options: duplicates: Input should be"):
        load_table(export, TRANSACTIONS, TEXT, {"duplicates": "remove"})


def test_a_mapping_of_another_kind_is_refused_with_the_forms_it_takes(export: Path) -> None:
    with pytest.raises(RetainInputError, match="give a dict such as"):
        load_table(export, TRANSACTIONS, ["customer_id"])  # type: ignore[arg-type]
    with pytest.raises(RetainInputError, match="names and file columns must be text"):
        load_table(export, TRANSACTIONS, {"customer_id": 1})  # type: ignore[dict-item]
    with pytest.raises(RetainInputError, match=r"\['customer'\] are not transactions columns"):
        load_table(export, TRANSACTIONS, {"customer": "Customer ID"})
