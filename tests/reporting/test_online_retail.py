"""On Online Retail II (UCI, real data): the CRR of one month counted by hand, and the nightly job's
audiences and report, opened in headless Chromium.

A RetentionModel (90-day horizon, two training cutoffs, one thread) is fitted as of 2011-09-30, and
`retain score` (actions on, a 2,000 discount budget) scores every customer as of that day, so the
report forecasts October 2011, a month the data goes on to show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from tests.batch.conftest import run_cli
from tests.reporting.browser import SECTIONS, assert_renders, render

from retain.data.datasets import Dataset
from retain.kpis import retention_kpis, summarize_kpis
from retain.models.retention import RetentionModel

pytestmark = pytest.mark.slow

AS_OF = "2011-09-30"
BUDGET = 2_000.0


@dataclass(frozen=True)
class Output:
    transactions: pd.DataFrame
    out: Path
    stdout: str

    @property
    def actions(self) -> Path:
        return self.out / "actions"


@pytest.fixture(scope="module")
def transactions(online_retail: Dataset) -> pd.DataFrame:
    return online_retail.transactions.frame


@pytest.fixture(scope="module")
def output(transactions: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Output:
    folder = tmp_path_factory.mktemp("online_retail")
    path = folder / "transactions.parquet"
    transactions.to_parquet(path, index=False)
    model = RetentionModel(90, n_cutoffs=2, n_jobs=1).fit(transactions, AS_OF)
    model_path = model.save(folder / "model")
    out = folder / "out"
    result = run_cli(
        "score", "-t", path, "--as-of", AS_OF, "--model", model_path, "--out", out,
        "--no-progress", "--reasons", "1", "--budget", str(BUDGET), cwd=folder,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return Output(transactions, out, result.stdout)


def test_the_crr_of_october_2011_equals_a_hand_count(transactions: pd.DataFrame) -> None:
    # October 2011 with W = 365 days, from the purchase rows (amount >= 0):
    #   B = customers with a purchase in [2010-10-01, 2011-10-01)  (active at the start)
    #   E = customers with a purchase in [2010-11-01, 2011-11-01)  (active at the end)
    #   N = customers whose first purchase is in [2011-10-01, 2011-11-01)
    #   CRR = (E - N) / B x 100, counted here with plain sets of customer ids.
    def at(day: str) -> pd.Timestamp:
        return pd.Timestamp(day, tz="UTC")

    bought = transactions.loc[transactions["amount"] >= 0, ["customer_id", "timestamp"]]
    when, who = bought["timestamp"], bought["customer_id"]
    b = set(who[(when >= at("2010-10-01")) & (when < at("2011-10-01"))])
    e = set(who[(when >= at("2010-11-01")) & (when < at("2011-11-01"))])
    first = bought.groupby("customer_id")["timestamp"].min()
    n = set(first.index[(first >= at("2011-10-01")) & (first < at("2011-11-01"))])
    assert n <= e  # a new customer is active at the end of their first month
    hand = (len(e) - len(n)) / len(b) * 100

    october = retention_kpis(transactions).set_index("period").loc["2011-10"]
    assert (october["customers_start"], october["customers_end"], october["new_customers"]) == (
        len(b),
        len(e),
        len(n),
    )
    assert october["crr"] == pytest.approx(hand, abs=1e-9)
    assert october["churn_rate"] == pytest.approx(len(b - e) / len(b) * 100, abs=1e-9)


def test_the_kpis_say_what_they_cannot_count(transactions: pd.DataFrame) -> None:
    # 61 customers have only refund rows (returns and manual adjustments of the export's first
    # year): validation counts 5,942 customers, the KPIs 5,881, and say why.
    summary = summarize_kpis(transactions)
    assert summary["customers_without_purchase"] == 61
    assert summary["customers"] + 61 == transactions["customer_id"].nunique() == 5_942
    # The data start on 2009-12-01: with a 365-day window, no month before 2010-12 has a whole
    # window of data before it, and their CRRs are the 100 % the formula gives there.
    kpis = retention_kpis(transactions).set_index("period")
    young = kpis.loc[~kpis["window_covered"]]
    assert young.index.tolist() == [str(p) for p in pd.period_range("2009-12", "2010-11", freq="M")]
    assert (young["crr"].dropna() == 100.0).all() and (young["churn_rate"].dropna() == 0.0).all()
    assert kpis.loc["2010-12", "window_covered"] and kpis.loc["2010-12", "churn_rate"] > 0


def test_the_job_writes_the_audiences_and_the_report(output: Output) -> None:
    actions = output.actions
    for name in ("actions.parquet", "retargeting.csv", "discounts.csv", "outreach.csv"):
        assert (actions / name).is_file(), name
    summary = json.loads((actions / "actions.json").read_text())
    scores = pd.read_parquet(output.out / "scores.parquet")
    assert summary["customers"] == len(scores) > 5_000
    sizes = {a["name"]: a for a in summary["audiences"]}
    retargeting = pd.read_csv(actions / "retargeting.csv")
    assert sizes["retargeting"]["customers"] == len(retargeting)
    assert 0 < len(retargeting) < len(scores)
    assert retargeting["churn_probability"].min() >= 0.5  # lapsing customers only
    assert retargeting["value_at_risk"].is_monotonic_decreasing
    offers = pd.read_csv(actions / "discounts.csv")
    assert sizes["discounts"]["customers"] == len(offers) > 0
    assert 0 < offers["expected_cost"].sum() <= BUDGET + 1e-6
    assert (offers["net_value"] > 0).all()
    assert sizes["outreach"]["customers"] == len(pd.read_csv(actions / "outreach.csv")) > 0
    size = (actions / "report.html").stat().st_size
    assert 50_000 < size < 3_000_000, size
    for audience in summary["audiences"]:
        assert f"  {audience['name']}: {audience['customers']:,} customers" in output.stdout


def test_the_crr_forecast_is_near_what_october_turned_out_to_be(output: Output) -> None:
    forecast = json.loads((output.actions / "actions.json").read_text())["crr_forecast"]
    kpis = retention_kpis(output.transactions).set_index("period")
    assert forecast["period"] == "2011-10"
    assert forecast["customers_start"] == kpis.loc["2011-10", "customers_start"]
    assert forecast["last_observed_crr"]["2011-09"] == pytest.approx(kpis.loc["2011-09", "crr"])
    # The models knew nothing after 2011-09-30; October's CRR came out at 94.5 %.
    assert forecast["expected_crr"] == pytest.approx(kpis.loc["2011-10", "crr"], abs=3.0)
    report = (output.actions / "report.html").read_text(encoding="utf-8")
    assert f"{forecast['expected_crr']:.1f}%" in report


def test_the_report_renders_in_headless_chromium(output: Output, tmp_path: Path) -> None:
    rendered = render(output.actions / "report.html", screenshot=tmp_path / "report.png")

    assert rendered.title == f"Retention report as of {AS_OF}"
    assert rendered.sections == ["notes", *SECTIONS]
    # CRR, cohorts, segments, tiers, churn risk, CLV, discount levels, outreach calendar.
    assert_renders(rendered, min_images=8, min_tables=10)
    assert (tmp_path / "report.png").stat().st_size > 100_000
    # Every figure with its horizon, window and unit, as a reader sees them (no currency was set).
    for label in (
        "Mean churn risk (no order in the next 90 days)",
        "Predicted CLV, next 90 days, total (amount)",
        "Value at risk, next 90 days, total (amount)",
        "Expected CRR 2011-10 (active: an order in 365 days)",
        "Active window",
        "a customer is active with an order in the 365 days before an instant",
        "n/m: not measurable",
        "Value (amount)",
        "value at risk",
        "Overdue, of all",
        "Overdue, of the",
    ):
        assert rendered.shows(label), label
    assert not rendered.shows("Predicted CLV, total") and not rendered.shows("overdue in all")
