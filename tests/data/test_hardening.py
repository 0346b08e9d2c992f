"""Issue 17, findings 9-11: values that validation used to accept quietly or split apart."""

from pathlib import Path

import pandas as pd
import pytest

from retain.data.contract import TRANSACTIONS
from retain.data.io import load_table
from retain.data.validation import parse_customer_ids, report_counts, validate_transactions
from retain.errors import RetainInputError


def test_ids_written_as_decimals_are_one_customer_in_csv_and_parquet(tmp_path: Path) -> None:
    # Finding 9: a CSV exported from a spreadsheet writes some ids as 12346.0, others as 12346.
    frame = pd.DataFrame(
        {
            "customer_id": ["12346.0", "12346", "00042", "00042.00", "A7.0"],
            "timestamp": ["2021-01-01", "2021-01-02", "2021-01-03", "2021-01-04", "2021-01-05"],
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    csv = tmp_path / "t.csv"
    frame.to_csv(csv, index=False)
    parquet = tmp_path / "t.parquet"
    frame.to_parquet(parquet)
    for path in (csv, parquet):
        validated = load_table(path, TRANSACTIONS)
        assert validated.frame["customer_id"].tolist() == [
            "12346",
            "12346",
            "00042",
            "00042",
            "A7.0",
        ]
        assert validated.report.customers == 3
        assert validated.report.normalised_ids == 2
        assert report_counts(validated.report)["normalised_ids"] == 2
        assert any("12346.0" in line for line in validated.report.lines())
    # The Spark engine partitions by this same function: both spellings land in one partition.
    assert parse_customer_ids(pd.Series(["12346.0", "12346"], dtype="str")).tolist() == [
        "12346",
        "12346",
    ]


def test_float_ids_from_parquet_are_counted_as_normalised(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame(
        {"customer_id": [12346.0, 7.0], "timestamp": ["2021-01-01"] * 2, "amount": [1.0, 2.0]}
    ).to_parquet(path)
    validated = load_table(path, TRANSACTIONS)
    assert validated.frame["customer_id"].tolist() == ["12346", "7"]
    assert validated.report.normalised_ids == 2


def test_nonpositive_quantities_on_purchase_rows_are_counted() -> None:
    # Finding 11: a purchase (amount >= 0) of -2 or 0 units is kept but counted and warned about.
    validated = validate_transactions(
        pd.DataFrame(
            {
                "customer_id": ["a", "b", "c", "d"],
                "timestamp": ["2021-01-01", "2021-01-02", "2021-01-03", "2021-01-04"],
                "amount": [10.0, 5.0, 7.0, -3.0],
                "quantity": [2, -2, 0, -1],
            }
        )
    )
    assert validated.report.rows_valid == 4
    assert validated.report.nonpositive_quantity_rows == 2
    assert report_counts(validated.report)["nonpositive_quantity_rows"] == 2
    assert any("quantity" in w and "2 rows" in w for w in validated.report.warnings)


def test_timestamps_decades_before_the_rest_are_set_aside() -> None:
    # Finding 11: placeholder dates (0001-01-01, 1970-01-01) are set aside with their own reason.
    validated = validate_transactions(
        pd.DataFrame(
            {
                "customer_id": ["a", "b", "c", "d", "e"],
                "timestamp": ["0001-01-01", "2021-01-02", "2021-01-03", "1970-01-01", "2020-01-01"],
                "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
            }
        )
    )
    assert validated.report.quarantined == {"timestamp decades before the rest": 2}
    assert validated.frame["customer_id"].tolist() == ["b", "c", "e"]
    assert validated.report.first_timestamp == pd.Timestamp("2020-01-01", tz="UTC")


DST = {
    "customer_id": ["a", "b", "c"],
    # Europe/Berlin: 2021-10-31 02:30 happens twice, 2021-03-28 02:30 never happens.
    "timestamp": ["2021-10-31 02:30", "2021-03-28 02:30", "2021-06-01 12:00"],
    "amount": [1.0, 2.0, 3.0],
}


def test_dst_ambiguous_and_nonexistent_times_have_their_own_reasons(tmp_path: Path) -> None:
    # Finding 11: not "unparseable timestamp"; by default (refuse) set aside with their reason.
    path = tmp_path / "t.csv"
    pd.DataFrame(DST).to_csv(path, index=False)
    for validated in (
        validate_transactions(pd.DataFrame(DST), options={"timezone": "Europe/Berlin"}),
        load_table(path, TRANSACTIONS, options={"timezone": "Europe/Berlin"}),
    ):
        assert validated.report.quarantined == {
            "ambiguous timestamp (clocks went back)": 1,
            "non-existent timestamp (clocks went forward)": 1,
        }


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("earliest", ["2021-10-31 00:30", "2021-03-28 00:59:59.999999"]),
        ("latest", ["2021-10-31 01:30", "2021-03-28 01:00"]),
    ],
)
def test_dst_times_resolved_on_request(policy: str, expected: list[str]) -> None:
    validated = validate_transactions(
        pd.DataFrame(DST), options={"timezone": "Europe/Berlin", "ambiguous_times": policy}
    )
    assert validated.report.quarantined == {}
    got = validated.frame["timestamp"].iloc[:2].tolist()
    assert got == [pd.Timestamp(t, tz="UTC") for t in expected]


def test_the_validate_command_takes_ambiguous_times(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from retain.cli import app

    path = tmp_path / "t.csv"
    pd.DataFrame(DST).to_csv(path, index=False)
    base = ["validate", "--transactions", str(path), "--timezone", "Europe/Berlin"]
    refused = CliRunner().invoke(app, base)
    assert refused.exit_code == 0, refused.output
    assert "ambiguous timestamp (clocks went back)" in refused.output
    latest = CliRunner().invoke(app, [*base, "--ambiguous-times", "latest"])
    assert latest.exit_code == 0, latest.output
    assert "3 usable" in latest.output and "ambiguous" not in latest.output
    wrong = CliRunner().invoke(app, [*base, "--ambiguous-times", "never"])
    assert wrong.exit_code == 2 and "never" in wrong.output


def test_order_ids_shared_by_several_customers_are_counted() -> None:
    # Finding 11: one order_id used by several customers is counted (and named) in the report.
    validated = validate_transactions(
        pd.DataFrame(
            {
                "customer_id": ["a", "a", "b", "c", "c"],
                "timestamp": ["2021-01-01"] * 5,
                "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
                "order_id": ["o1", "o1", "o1", "o2", "o3"],
            }
        )
    )
    assert validated.report.shared_order_ids == 1
    assert report_counts(validated.report)["shared_order_ids"] == 1
    assert any("'o1'" in w and "several customers" in w for w in validated.report.warnings)


CURRENCIES = {
    "customer_id": ["a", "b", "c", "d"],
    "timestamp": ["2021-01-01", "2021-01-02", "2021-01-03", "2021-01-04"],
    "amount": [10.0, 1000.0, 20.0, 5.0],
    "Currency": ["EUR", "JPY", "eur", "USD"],
}


def test_a_file_with_several_currencies_is_refused_unless_one_is_picked() -> None:
    # Finding 10: euros and yen must not be added together.
    with pytest.raises(
        RetainInputError, match=r"'Currency' holds 3 currencies: EUR \(2 rows\).*--currency CODE"
    ):
        validate_transactions(pd.DataFrame(CURRENCIES))
    validated = validate_transactions(pd.DataFrame(CURRENCIES), options={"currency": "EUR"})
    assert validated.frame["customer_id"].tolist() == ["a", "c"]
    assert validated.report.quarantined == {"currency other than EUR": 2}
    # One currency throughout is accepted as it is.
    single = pd.DataFrame(CURRENCIES).assign(Currency="EUR")
    assert validate_transactions(single).report.rows_valid == 4


def test_the_validate_command_takes_currency(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from retain.cli import app

    path = tmp_path / "t.csv"
    pd.DataFrame(CURRENCIES).to_csv(path, index=False)
    refused = CliRunner().invoke(app, ["validate", "--transactions", str(path)])
    assert isinstance(refused.exception, RetainInputError)  # main() makes it exit status 2
    assert "--currency" in str(refused.exception)
    picked = CliRunner().invoke(app, ["validate", "--transactions", str(path), "--currency", "JPY"])
    assert picked.exit_code == 0, picked.output
    assert "currency other than JPY" in picked.output
