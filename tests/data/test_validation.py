import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain.data.columns import ColumnMapping
from retain.data.contract import TRANSACTIONS
from retain.data.io import load_table
from retain.data.validation import (
    ValidationOptions,
    validate_customers,
    validate_events,
    validate_transactions,
    write_quarantine,
)
from retain.errors import RetainInputError


def raw(**columns: list[object]) -> pd.DataFrame:
    return pd.DataFrame(columns)


GOOD = {
    "customer_id": ["a", "b", "c", "d"],
    "timestamp": ["2021-01-01 10:00", "2021-01-02", "2021-01-03T08:30:00", "2021-01-04"],
    "amount": [10.0, 20.5, -5.0, 7.0],
}


def test_good_table_meets_the_contract() -> None:
    validated = validate_transactions(raw(**GOOD))
    TRANSACTIONS.check(validated.frame)
    report = validated.report
    assert (report.rows_read, report.rows_valid, report.rows_quarantined) == (4, 4, 0)
    assert report.refund_rows == 1
    assert report.customers == 4
    assert validated.frame["timestamp"].iloc[0] == pd.Timestamp("2021-01-01 10:00", tz="UTC")


def test_missing_column_names_the_column_and_the_fix() -> None:
    with pytest.raises(RetainInputError) as error:
        validate_transactions(raw(customer_id=["a"], amount=[1.0]))
    message = str(error.value)
    assert "required column 'timestamp' is missing" in message
    assert "customer_id, amount" in message
    assert "--columns timestamp=" in message


def test_mapping_to_an_absent_file_column_is_refused() -> None:
    with pytest.raises(RetainInputError, match=r"'InvoiceDate' \(for timestamp\)"):
        validate_transactions(raw(**GOOD), {"timestamp": "InvoiceDate"})


def test_column_mapping_renames() -> None:
    table = raw(**{"Customer ID": [1.0, 2.0], "When": ["2021-01-01", "2021-01-02"], "Net": [1, 2]})
    validated = validate_transactions(
        table, ColumnMapping.parse('customer_id="Customer ID",timestamp=When,amount=Net')
    )
    assert validated.frame.columns.tolist() == ["customer_id", "timestamp", "amount"]
    # Integer-valued float ids (as pandas reads an id column with gaps) lose their ".0".
    assert validated.frame["customer_id"].tolist() == ["1", "2"]


def test_a_few_unparseable_timestamps_are_set_aside_and_counted() -> None:
    table = raw(
        customer_id=["a", "b", "c", "d", "e"],
        timestamp=["2021-01-01", "2021-13-45", "yesterday", "2021-01-04", "2021-01-05"],
        amount=[1, 2, 3, 4, 5],
    )
    validated = validate_transactions(table)
    assert validated.report.quarantined == {"unparseable timestamp": 2}
    assert validated.report.rows_valid == 3
    assert validated.quarantine["reason"].tolist() == ["unparseable timestamp"] * 2
    assert validated.quarantine["timestamp"].tolist() == ["2021-13-45", "yesterday"]


def test_mostly_unparseable_timestamps_mean_a_wrong_format() -> None:
    table = raw(customer_id=["a", "b", "c"], timestamp=["31/01/2021"] * 3, amount=[1, 2, 3])
    with pytest.raises(RetainInputError) as error:
        validate_transactions(table)
    message = str(error.value)
    assert "column 'timestamp': 3 of 3 rows (100%) have unparseable timestamp" in message
    assert "'31/01/2021'" in message and "--timestamp-format" in message
    # With the format given, the same file is fine.
    options = ValidationOptions(timestamp_format="%d/%m/%Y")
    assert validate_transactions(table, options=options).report.rows_valid == 3


def test_missing_ids_are_set_aside_and_counted() -> None:
    table = raw(
        customer_id=["a", None, "  ", "d"],
        timestamp=["2021-01-01"] * 4,
        amount=[1, 2, 3, 4],
    )
    validated = validate_transactions(table)
    assert validated.report.quarantined == {"missing customer_id": 2}
    assert validated.frame["customer_id"].tolist() == ["a", "d"]


def test_non_numeric_amounts_are_set_aside_and_counted() -> None:
    table = raw(
        customer_id=["a", "b", "c", "d", "e"],
        timestamp=["2021-01-01"] * 5,
        amount=["10.5", "ten", "", "1e2", "inf"],
    )
    validated = validate_transactions(table)
    assert validated.report.quarantined == {
        "non-numeric amount": 1,
        "missing amount": 1,
        "non-finite amount": 1,
    }
    assert validated.frame["amount"].tolist() == [10.5, 100.0]
    assert "  set aside: 1 row with non-numeric amount" in validated.report.lines()


def test_empty_table_is_refused() -> None:
    with pytest.raises(RetainInputError, match="transactions: the table has no rows"):
        validate_transactions(raw(customer_id=[], timestamp=[], amount=[]))


def test_empty_and_header_only_files_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(RetainInputError, match=r"empty\.csv is empty"):
        load_table(empty, TRANSACTIONS)
    header = tmp_path / "header.csv"
    header.write_text("customer_id,timestamp,amount\n")
    with pytest.raises(RetainInputError, match="the table has no rows"):
        load_table(header, TRANSACTIONS)


def test_duplicate_rows_are_counted_and_kept_by_default() -> None:
    table = raw(
        customer_id=["a", "a", "a", "b"],
        timestamp=["2021-01-01", "2021-01-01", "2021-01-01", "2021-01-01"],
        amount=[5, 5, 5, 5],
    )
    kept = validate_transactions(table)
    assert kept.report.duplicate_rows == 2
    assert kept.report.rows_valid == 4
    what = (
        "rows identical to an earlier row in all 3 columns (customer_id, timestamp, amount): 2 rows"
    )
    assert kept.report.warnings == [
        f'{what} (kept; to set them aside: --duplicates drop, or duplicates="drop" in Python)'
    ]

    dropped = validate_transactions(table, options=ValidationOptions(duplicates="drop"))
    assert dropped.report.rows_valid == 2
    assert dropped.report.quarantined == {"duplicate row": 2}

    with pytest.raises(RetainInputError, match=re.escape(f"{what}; remove them")):
        validate_transactions(table, options=ValidationOptions(duplicates="error"))


def test_rows_differing_in_one_column_are_not_duplicates() -> None:
    table = raw(customer_id=["a", "a"], timestamp=["2021-01-01"] * 2, amount=[5.0, 5.01])
    assert validate_transactions(table).report.duplicate_rows == 0


def test_mixed_zoned_and_naive_timestamps_are_refused() -> None:
    table = raw(
        customer_id=["a", "b", "c"],
        timestamp=["2021-03-01T10:00:00+01:00", "2021-03-01T10:00:00", "2021-03-02T10:00:00"],
        amount=[1, 2, 3],
    )
    with pytest.raises(RetainInputError) as error:
        validate_transactions(table)
    message = str(error.value)
    assert "column 'timestamp' mixes time zones: 1 row with a zone" in message
    assert "2 rows without" in message


def test_different_offsets_are_normalised_to_utc() -> None:
    table = raw(
        customer_id=["a", "b", "c"],
        timestamp=["2021-03-01T10:00:00+01:00", "2021-07-01T10:00:00+02:00", "2021-07-01T08:00Z"],
        amount=[1, 2, 3],
    )
    stamps = validate_transactions(table).frame["timestamp"]
    assert stamps.tolist() == [
        pd.Timestamp("2021-03-01 09:00", tz="UTC"),
        pd.Timestamp("2021-07-01 08:00", tz="UTC"),
        pd.Timestamp("2021-07-01 08:00", tz="UTC"),
    ]


def test_naive_timestamps_are_read_in_the_given_zone() -> None:
    table = raw(
        customer_id=["a", "b"], timestamp=["2011-01-10 12:00", "2011-07-10 12:00"], amount=[1, 2]
    )
    options = ValidationOptions(timezone="Europe/London")
    stamps = validate_transactions(table, options=options).frame["timestamp"]
    # GMT in winter, BST (UTC+1) in summer.
    assert stamps.dt.hour.tolist() == [12, 11]


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(RetainInputError, match="unknown time zone 'Mars/Olympus'"):
        validate_transactions(raw(**GOOD), options=ValidationOptions(timezone="Mars/Olympus"))


def test_strict_mode_refuses_any_unusable_row() -> None:
    table = raw(customer_id=["a", None], timestamp=["2021-01-01"] * 2, amount=[1, 2])
    with pytest.raises(RetainInputError, match="1 row with missing customer_id"):
        validate_transactions(table, options=ValidationOptions(strict=True))


def test_nothing_usable_left_is_an_error() -> None:
    table = raw(customer_id=[None, None], timestamp=["2021-01-01"] * 2, amount=[1, 2])
    with pytest.raises(RetainInputError, match="missing customer_id"):
        validate_transactions(table, options=ValidationOptions(max_invalid_share=1.0))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_quarantine_file_holds_the_rows_and_reasons(tmp_path: Path, suffix: str) -> None:
    table = raw(
        customer_id=["a", None, "c", "d"],
        timestamp=["2021-01-01", "2021-01-02", "never", "2021-01-04"],
        amount=[1, 2, 3, 4],
    )
    validated = validate_transactions(table)
    path = write_quarantine(validated, tmp_path / f"bad{suffix}")
    written = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert written["reason"].tolist() == ["missing customer_id", "unparseable timestamp"]
    assert written["source_row"].tolist() == [1, 2]
    # Every input row is either used or quarantined: nothing disappears.
    assert validated.report.rows_valid + len(written) == len(table)


def test_csv_keeps_leading_zeros_of_ids(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("cust,when,net\n00042,2021-01-01,3.5\n7,2021-01-02,1\n")
    validated = load_table(
        path, TRANSACTIONS, ColumnMapping.parse("customer_id=cust,timestamp=when,amount=net")
    )
    assert validated.frame["customer_id"].tolist() == ["00042", "7"]


def test_optional_columns_are_typed() -> None:
    table = raw(**GOOD, order_id=[1, 2, 3, 4], quantity=["1", "2", "x", "4"])
    validated = validate_transactions(table, options=ValidationOptions(max_invalid_share=0.5))
    assert validated.frame["order_id"].tolist() == ["1", "2", "4"]
    assert validated.frame["quantity"].dtype == np.float64
    assert validated.report.quarantined == {"non-numeric quantity": 1}


def test_events_and_customers_tables() -> None:
    events = validate_events(
        raw(
            customer_id=["a", "b"],
            timestamp=["2021-01-01", "2021-01-02"],
            event_type=["session", "email_open"],
        )
    )
    assert events.report.rows_valid == 2
    customers = validate_customers(
        raw(
            customer_id=["a", "a", "b"],
            signup_date=["2020-01-01", "2020-02-01", "bad"],
            country=["UK", "UK", "FR"],
        ),
        options=ValidationOptions(max_invalid_share=0.5),
    )
    assert customers.report.quarantined == {"unparseable signup_date": 1, "repeated customer_id": 1}


def test_parquet_reads_every_column_to_judge_duplicates(tmp_path: Path) -> None:
    """Two lines of one order, alike in the contract's columns, are two products."""
    path = tmp_path / "export.parquet"
    pd.DataFrame(
        {"cid": ["a", "a"], "when": ["2021-01-01"] * 2, "net": [1.0] * 2, "Item": ["mug", "cup"]}
    ).to_parquet(path)
    columns = ColumnMapping.parse("customer_id=cid,timestamp=when,amount=net")
    from retain.data.io import read_table

    assert read_table(path, TRANSACTIONS, columns).columns.tolist() == [
        "cid",
        "when",
        "net",
        "Item",
    ]
    loaded = load_table(path, TRANSACTIONS, columns)
    assert (loaded.report.rows_valid, loaded.report.duplicate_rows) == (2, 0)
    assert loaded.frame.columns.tolist() == ["customer_id", "timestamp", "amount"]


def test_unreadable_parquet_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not a parquet file")
    with pytest.raises(RetainInputError, match="cannot read"):
        load_table(path, TRANSACTIONS)


@pytest.mark.parametrize(
    ("written", "hint"),
    [
        (["1,234.50", "12,345"], "these have commas (decimal or thousands separators)"),
        (["£10.50", "€3"], "these carry a currency sign or unit: write the bare numbers"),
        (["10 EUR", "3 EUR"], "these carry a currency sign or unit: write the bare numbers"),
        (["ten", "three"], "check the column mapping"),
    ],
)
def test_unreadable_amounts_get_a_hint_from_how_they_are_written(
    written: list[str], hint: str
) -> None:
    table = raw(customer_id=["a", "b"], timestamp=["2024-01-01", "2024-01-02"], amount=written)
    with pytest.raises(RetainInputError, match=f"have non-numeric amount .*; {re.escape(hint)}"):
        validate_transactions(table)


def test_decimal_commas_are_refused_with_a_hint(tmp_path: Path) -> None:
    """'10,5' is not read as 10.5: '1,234' could as well be a thousand. The error says why."""
    path = tmp_path / "export.csv"
    path.write_text("customer_id;timestamp;amount\n1;2024-01-01;10,5\n2;2024-01-02;3,2\n")
    with pytest.raises(RetainInputError) as error:
        load_table(path, TRANSACTIONS)
    assert str(error.value) == (
        "transactions: column 'amount': 2 of 2 rows (100%) have non-numeric amount "
        "(e.g. '10,5', '3,2'); these have commas (decimal or thousands separators): write plain "
        "numbers with a decimal point, e.g. 1234.5"
    )


def test_one_row_and_one_customer_are_said_in_the_singular() -> None:
    raw = pd.DataFrame({"customer_id": ["a"], "timestamp": ["2024-01-01"], "amount": [1.0]})
    report = validate_transactions(raw).report
    assert report.lines()[0] == "transactions: 1 row read, 1 usable, 0 set aside; 1 customer"


def test_quarantine_writes_only_the_contracts_columns_unless_all_are_asked_for(
    tmp_path: Path,
) -> None:
    """Finding 13 (issue 17): a quarantine file is for finding and fixing rows, not a copy of the
    customers' personal data: by default the contract's columns (under the file's own names),
    the source row number and the reason; every raw column only when asked for."""
    table = pd.DataFrame(
        {
            "Customer ID": ["a", None, "c"],
            "when": ["2021-01-01", "2021-01-02", "never"],
            "amount": [1.0, 2.0, 3.0],
            "email": ["a@example.com", "b@example.com", "c@example.com"],
            "name": ["Ann", "Bob", "Cid"],
        }
    )
    mapping = ColumnMapping.parse('customer_id="Customer ID",timestamp=when')
    validated = validate_transactions(table, mapping)
    path = write_quarantine(validated, tmp_path / "bad.csv", mapping)
    written = pd.read_csv(path)
    assert written.columns.tolist() == ["source_row", "Customer ID", "when", "amount", "reason"]
    assert written["source_row"].tolist() == [1, 2]
    assert written["reason"].tolist() == ["missing customer_id", "unparseable timestamp"]
    everything = pd.read_parquet(
        write_quarantine(validated, tmp_path / "all.parquet", mapping, all_columns=True)
    )
    assert everything.columns.tolist() == ["source_row", *table.columns, "reason"]
    assert everything["email"].tolist() == ["b@example.com", "c@example.com"]


@pytest.mark.parametrize("all_columns", [False, True])
def test_the_validate_command_quarantines_personal_columns_only_when_asked(
    tmp_path: Path, all_columns: bool
) -> None:
    """Finding 13 through the command line: ``--quarantine-all-columns`` is the explicit way to
    get the file's other columns (here an e-mail) into the quarantine file."""
    export = tmp_path / "export.csv"
    export.write_text(
        "cust,when,net,email\nk1,2021-01-01,3.5,k1@example.com\n,2021-01-02,1,x@y.z\n"
    )
    command = [
        sys.executable, "-m", "retain.cli", "validate", "--transactions", str(export),
        "--columns", "customer_id=cust,timestamp=when,amount=net",
        "--quarantine", str(tmp_path / "bad.csv"),
    ]  # fmt: skip
    if all_columns:
        command.append("--quarantine-all-columns")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    written = pd.read_csv(tmp_path / "bad.csv")
    personal = ["email"] if all_columns else []
    assert written.columns.tolist() == ["source_row", "cust", "when", "net", *personal, "reason"]
    assert written["reason"].tolist() == ["missing customer_id"]
