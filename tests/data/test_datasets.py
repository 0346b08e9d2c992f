import sys

import pytest

from retain.data.contract import CUSTOMERS, TRANSACTIONS
from retain.data.datasets import (
    Dataset,
    cdnow_path,
    load_cdnow,
    load_online_retail,
)
from retain.errors import RetainInputError


def test_cdnow_master(cdnow_master: Dataset) -> None:
    report = cdnow_master.transactions.report
    assert report.rows_read == 69_659 and report.rows_quarantined == 0
    assert report.customers == 23_570
    assert f"{report.first_timestamp:%Y-%m-%d}" == "1997-01-01"
    assert f"{report.last_timestamp:%Y-%m-%d}" == "1998-06-30"
    TRANSACTIONS.check(cdnow_master.transactions.frame)


def test_cdnow_sample_uses_the_sample_ids(cdnow_sample: Dataset) -> None:
    frame = cdnow_sample.transactions.frame
    assert cdnow_sample.transactions.report.customers == 2_357
    assert set(frame["customer_id"]) == {str(i) for i in range(1, 2_358)}


def test_cdnow_kind_is_checked() -> None:
    with pytest.raises(RetainInputError, match="'master' or 'sample'"):
        load_cdnow("full")  # type: ignore[arg-type]


def test_cdnow_without_lifetimes_says_to_install_the_demo_extra(monkeypatch) -> None:
    # A None entry in sys.modules makes the package unfindable, as when it is not installed.
    monkeypatch.setitem(sys.modules, "lifetimes", None)
    with pytest.raises(RetainInputError, match=r"CDNOW master.*lifetimes.*retain\[demo\]"):
        load_cdnow("master")


def test_cdnow_path_does_not_import_lifetimes(monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "lifetimes", raising=False)
    path = cdnow_path("sample")
    assert path.name == "CDNOW_sample.txt" and path.exists()
    assert "lifetimes" not in sys.modules


def test_online_retail_reports_guests_and_cancellations(online_retail: Dataset) -> None:
    report = online_retail.transactions.report
    assert report.rows_read == 1_044_847
    # Guests have no customer id: set aside, counted, and named in the notes.
    assert report.quarantined == {"missing customer_id": 235_287}
    assert report.rows_valid == 1_044_847 - 235_287
    assert report.customers == 5_942
    notes = "\n".join(online_retail.notes)
    assert "guest lines (no customer id): 235,287 rows" in notes
    assert "cancellation lines (invoice 'C...'): 18,446 rows" in notes
    frame = online_retail.transactions.frame
    cancelled = frame["order_id"].str.startswith("C")
    assert (frame.loc[cancelled, "amount"] <= 0).all()
    assert report.refund_rows == int((frame["amount"] < 0).sum())


def test_online_retail_times_become_utc(online_retail: Dataset) -> None:
    frame = online_retail.transactions.frame
    # Invoice 489434 was at 07:45 UK time on 2009-12-01 (GMT, so 07:45 UTC).
    first = frame.loc[frame["order_id"] == "489434", "timestamp"].iloc[0]
    assert str(first) == "2009-12-01 07:45:00+00:00"
    # A summer invoice moves back one hour (BST).
    summer = frame.loc[frame["timestamp"].dt.month == 7, "timestamp"]
    assert summer.dt.hour.min() >= 6


def test_online_retail_customers_table(online_retail: Dataset) -> None:
    assert online_retail.customers is not None
    CUSTOMERS.check(online_retail.customers.frame)
    assert online_retail.customers.report.rows_valid == 5_942


def test_missing_online_retail_file_is_reported(tmp_path) -> None:
    with pytest.raises(RetainInputError, match="Online Retail II: no file at"):
        load_online_retail(tmp_path / "nope.parquet")
