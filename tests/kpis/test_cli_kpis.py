"""`retain kpis` as a user runs it: what the figures count, said beside them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tests.batch.conftest import run_cli

COLUMNS = "customer_id=Customer ID,timestamp=InvoiceDate,amount=Amount,order_id=Invoice"


def test_kpis_say_why_they_count_fewer_customers_and_which_crrs_are_not_measurable(
    tmp_path: Path,
) -> None:
    # Three customers with purchases over two years and one (00020) with only a refund: validation
    # counts 4 customers, the KPIs 3. With a 365-day window, the data (from 2021-01-03) cover the
    # window before a month's start from 2022-02 on (2022-02-01 - 365 days = 2021-02-01), not
    # before: 2022-01's window starts on 2021-01-01, two days before the data.
    rows = [
        "Customer ID,InvoiceDate,Amount,Invoice",
        "00017,2021-01-03 10:00,20.00,A1",
        "00017,2021-06-03 10:00,35.50,A2",
        "00018,2021-02-10 12:00,12.00,A4",
        "00019,2021-03-21 08:00,14.00,A8",
        "00020,2021-04-02 08:00,-9.00,C9",
        "00017,2022-01-20 10:00,20.00,A10",
        "00019,2022-03-30 08:00,14.00,A11",
    ]
    export = tmp_path / "export.csv"
    export.write_text("\n".join(rows) + "\n")
    result = run_cli(
        "kpis", "--transactions", export, "--columns", COLUMNS, "--out", tmp_path / "k",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "4 customers" in out  # validation's count
    assert "whole history: customers 3," in out
    assert (
        "customers: 3 with a purchase; 1 more (of the 4 that validation counts) have only refund "
        "rows (negative amounts), so no order and no KPI counts them"
    ) in out
    assert "active: a purchase in the 365 days before an instant" in out
    lines = {
        line.split()[0]: line.split() for line in out.splitlines() if line[:4] in ("2021", "2022")
    }
    # 2021-02 to 2022-01: CRR 100 and churn 0 by construction, shown as not measurable.
    for period in ("2021-02", "2021-12", "2022-01"):
        assert lines[period][4:6] == ["n/m", "n/m"], lines[period]
    assert lines["2022-02"][4:6] != ["n/m", "n/m"]
    assert "note: crr and churn_rate of 2021-01 to 2022-01 are not measurable (n/m)" in out
    kpis = pd.read_csv(tmp_path / "k" / "kpis.csv").set_index("period")
    assert not kpis.loc["2022-01", "window_covered"] and kpis.loc["2022-02", "window_covered"]
    assert kpis.loc["2022-01", "crr"] == 100.0  # the file keeps the formula's value, marked
