"""Reading files: CSV separators, and pyarrow's CSV reader against pandas' own."""

from pathlib import Path

import pandas as pd
import pytest

from retain.data.contract import TRANSACTIONS
from retain.data.io import csv_separator, load_table
from retain.data.validation import ValidatedTable, ValidationOptions, validate_table

MESSY = (
    "customer_id,timestamp,amount,order_id\n"
    "00017,2021-01-03 10:00,20.00,A1\n"
    "00017,2021-02-03 10:00:30.250,35.50,A2\n"
    "00017,2021-03-01 09:00,-5.00,C3\n"
    "00018,2021-01-10 12:00,12,A4\n"
    ",2021-01-11 12:00,9.00,A5\n"
    "00019,not a date,9.00,A6\n"
    "00019,2021-02-20 08:00,abc,A7\n"
    "00019,2021-02-21 08:00,14.00,A8\n"
    "00020,2021-03-28 01:30,14.00,A9\n"
)
CLEAN = (
    "customer_id,timestamp,amount\n"
    "1,2021-03-27 23:59:59.5,20\n"
    "2,2021-03-28 01:30:00,5\n"
    "2,2021-10-31 01:30:00,7.25\n"
)
ZONED = "customer_id,timestamp,amount\n1,2021-01-03T10:00:00+01:00,20\n2,2021-01-04T10:00:00Z,5\n"
MIXED = "customer_id,timestamp,amount\n1,2021-01-03T10:00:00+01:00,20\n2,2021-01-04 10:00:00,5\n"


def _by_pandas(path: Path, options: ValidationOptions) -> ValidatedTable:
    """The reference: pandas' own CSV reader, every column as it reads it but the id as text."""
    raw = pd.read_csv(path, dtype={"customer_id": "str", "order_id": "str"})
    return validate_table(raw, TRANSACTIONS, options=options)


@pytest.mark.parametrize(
    ("text", "timezone"),
    [(MESSY, "UTC"), (MESSY, "Europe/London"), (CLEAN, "Europe/London"), (ZONED, "UTC")],
)
def test_pyarrow_reads_what_pandas_reads(tmp_path: Path, text: str, timezone: str) -> None:
    """pyarrow types ISO timestamps while reading (pandas leaves text for validation to parse):
    the validated table, its report and the rows set aside are the same either way, DST gaps and
    leading zeros included."""
    path = tmp_path / "export.csv"
    path.write_text(text)
    options = ValidationOptions(timezone=timezone)
    ours, reference = load_table(path, TRANSACTIONS, options=options), _by_pandas(path, options)
    pd.testing.assert_frame_equal(ours.frame, reference.frame)
    assert ours.report == reference.report
    assert ours.quarantine["reason"].tolist() == reference.quarantine["reason"].tolist()


def test_a_column_mixing_zoned_and_naive_timestamps_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(MIXED)
    with pytest.raises(Exception, match="mixes time zones"):
        load_table(path, TRANSACTIONS)


def test_a_timestamp_format_is_applied_to_the_text_not_to_a_guess(tmp_path: Path) -> None:
    """'2021-03-04' would be 4 March to pyarrow; with --timestamp-format '%Y-%d-%m' it is 3 April."""
    path = tmp_path / "export.csv"
    path.write_text("customer_id,timestamp,amount\n1,2021-03-04 10:00,20\n")
    options = ValidationOptions(timestamp_format="%Y-%d-%m %H:%M")
    stamp = load_table(path, TRANSACTIONS, options=options).frame["timestamp"].iloc[0]
    assert stamp == pd.Timestamp("2021-04-03 10:00", tz="UTC")


def test_a_file_pyarrow_refuses_is_read_by_pandas(tmp_path: Path) -> None:
    """A short row: pyarrow stops at it, pandas reads it with the missing amount empty, and that
    row is set aside with its reason like any other."""
    path = tmp_path / "export.csv"
    path.write_text("customer_id,timestamp,amount\n1,2021-01-03 10:00\n2,2021-01-04 10:00,5\n")
    validated = load_table(path, TRANSACTIONS)
    assert validated.report.quarantined == {"missing amount": 1}
    assert validated.frame["customer_id"].tolist() == ["2"]


@pytest.mark.parametrize(
    ("name", "sep"),
    [("export.csv", ";"), ("export.csv", "|"), ("export.txt", "\t"), ("export.tsv", ",")],
)
def test_a_csv_with_another_separator_is_read_by_its_header(
    tmp_path: Path, name: str, sep: str
) -> None:
    """Exports from locales with decimal commas separate with ';' (or a tab, or '|'): the header
    says which, and the ids keep their leading zeros as with a comma."""
    path = tmp_path / name
    rows = [["customer_id", "timestamp", "amount"], ["007", "2024-01-01 10:00", "10.5"]]
    rows.append(["008", "2024-01-02 11:00", "3.25"])
    path.write_text("".join(sep.join(row) + "\n" for row in rows))
    assert csv_separator(path) == sep
    validated = load_table(path, TRANSACTIONS)
    assert validated.frame["customer_id"].tolist() == ["007", "008"]
    assert validated.frame["amount"].tolist() == [10.5, 3.25]


def test_a_comma_in_a_header_name_does_not_change_the_separator(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text('customer_id,"net amount; incl. VAT",timestamp\n1,2.5,2024-01-01\n')
    assert csv_separator(path) == ","
