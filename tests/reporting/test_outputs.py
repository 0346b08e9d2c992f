"""write_actions / publish_actions on a real scoring output: every file, what it holds, the
report's figures against the functions that make them, settings, uplift mode, and refusals that
leave the output folder as it was."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from tests.reporting.conftest import AS_OF, Scored

from retain.actions import PLAN_COLUMNS, ActionSettings, retargeting_audience
from retain.actions.discounts import DiscountPolicy, DiscountSettings
from retain.data.contract import CUSTOMERS
from retain.data.io import load_table
from retain.errors import RetainInputError
from retain.jobs.action_settings import (
    ReportSettings,
    load_action_settings,
    load_report_settings,
    read_campaign_history,
    read_scores,
)
from retain.jobs.actions import ActionRun, ScoringActions, publish_actions, write_actions
from retain.kpis import forecast_crr, retention_kpis

BUDGET = 300.0
CUTOFF = pd.Timestamp(AS_OF, tz="UTC") + pd.Timedelta(days=1)
FILES = [
    "actions.json",
    "actions.parquet",
    "discounts.csv",
    "outreach.csv",
    "report.html",
    "retargeting.csv",
    "retargeting_customer_match.csv",
]


def customers_frame(scored: Scored) -> pd.DataFrame:
    return load_table(scored.customers, CUSTOMERS).frame


@pytest.fixture(scope="module")
def written(scored_output: Scored, tmp_path_factory: pytest.TempPathFactory) -> ActionRun:
    scores, manifest = read_scores(scored_output.folder)
    return publish_actions(
        tmp_path_factory.mktemp("actions") / "out",
        scores,
        manifest,
        budget=BUDGET,
        transactions=scored_output.frame,
        customers=customers_frame(scored_output),
        log=lambda _: None,
    )


def test_every_file_is_written(written: ActionRun) -> None:
    assert sorted(p.name for p in written.folder.iterdir()) == FILES
    assert not list(written.folder.parent.glob(".out.*"))  # no staging folder left


def test_the_plan_is_the_scores_with_their_actions(
    written: ActionRun, scored_output: Scored
) -> None:
    scores = scored_output.scores
    plan = pd.read_parquet(written.folder / "actions.parquet")
    assert len(plan) == len(scores) == written.customers
    assert plan["customer_id"].tolist() == scores["customer_id"].tolist()
    assert set(scores.columns) | set(PLAN_COLUMNS) | {"discount"} == set(plan.columns)
    pd.testing.assert_series_equal(plan["clv"], scores["clv"])


def test_the_retargeting_audience_and_its_customer_match_file(
    written: ActionRun, scored_output: Scored
) -> None:
    expected = retargeting_audience(scored_output.scores)
    audience = pd.read_csv(written.folder / "retargeting.csv", dtype={"customer_id": "str"})
    assert audience["customer_id"].tolist() == expected["customer_id"].tolist()
    assert len(audience) > 0
    match = pd.read_csv(written.folder / "retargeting_customer_match.csv")
    assert list(match.columns) == ["Email"]
    assert 0 < len(match) < len(audience)  # some customers have no usable address
    assert match["Email"].str.fullmatch(r"[0-9a-f]{64}").all()
    for path in written.folder.iterdir():  # no plain address anywhere
        if path.suffix in (".csv", ".html", ".json"):
            assert "@" not in path.read_text(encoding="utf-8"), path.name


def test_the_discounts_are_the_policys_offers_within_the_budget(
    written: ActionRun, scored_output: Scored
) -> None:
    offers = pd.read_csv(written.folder / "discounts.csv", dtype={"customer_id": "str"})
    assert len(offers) > 0
    assert (offers["discount"] > 0).all()
    assert offers["expected_cost"].sum() <= BUDGET + 1e-6
    assert offers["net_value"].is_monotonic_decreasing
    assert set(offers["mode"]) == {"rule"}
    policy = DiscountPolicy(DiscountSettings(budget=BUDGET))
    direct = policy.recommend(scored_output.scores, BUDGET)
    chosen = direct.loc[direct["discount"] > 0]
    assert sorted(offers["customer_id"]) == sorted(chosen["customer_id"])
    assert written.discounts["expected_cost"] == pytest.approx(chosen["expected_cost"].sum())


def test_the_outreach_file_is_the_calendars_contacts_by_date(written: ActionRun) -> None:
    outreach = pd.read_csv(written.folder / "outreach.csv", parse_dates=["contact_date"])
    plan = pd.read_parquet(written.folder / "actions.parquet")
    first = pd.Timestamp(AS_OF)
    in_window = plan["contact_date"].between(first, first + pd.Timedelta(days=41))
    assert len(outreach) == int(in_window.sum()) > 0
    assert outreach["contact_date"].is_monotonic_increasing
    assert outreach["contact_date"].min() >= first


def test_the_summary_file_matches_what_was_written(written: ActionRun) -> None:
    summary = json.loads((written.folder / "actions.json").read_text())
    assert summary["as_of"] == AS_OF and summary["budget"] == BUDGET
    sizes = {a["name"]: a["customers"] for a in summary["audiences"]}
    assert sizes["retargeting"] == len(pd.read_csv(written.folder / "retargeting.csv"))
    assert sizes["discounts"] == len(pd.read_csv(written.folder / "discounts.csv"))
    assert sizes["outreach"] == len(pd.read_csv(written.folder / "outreach.csv"))
    assert summary["crr_forecast"]["period"] == "2024-07"


def test_the_report_shows_the_forecast_and_the_kpis_of_the_transactions(
    written: ActionRun, scored_output: Scored
) -> None:
    known = scored_output.frame.loc[scored_output.frame["timestamp"] < CUTOFF]
    expected = forecast_crr(scored_output.scores, AS_OF, horizon_days=90, transactions=known)
    assert written.forecast is not None
    assert written.forecast.expected_crr == pytest.approx(expected.expected_crr)
    report = (written.folder / "report.html").read_text(encoding="utf-8")
    assert f"{expected.expected_crr:.1f}%" in report
    june = retention_kpis(known).set_index("period").loc["2024-06"]
    assert f'<td class="num">{june["crr"]:.1f}</td>' in report
    assert "after 2024-06-30 are left out" in report  # the transactions run past as_of
    assert "rule mode" in report and "Assumptions" in report
    assert f"{BUDGET:,.2f} of expected discount cost in total" in report
    lines = "\n".join(written.lines())
    assert "retargeting:" in lines and "expected CRR 2024-07" in lines


def test_without_transactions_the_report_says_so_and_still_forecasts(
    scored_output: Scored, written: ActionRun, tmp_path: Path
) -> None:
    scores, manifest = read_scores(scored_output.folder)
    run = write_actions(tmp_path, scores, manifest, budget=BUDGET)
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "No transactions were given" in report
    assert not (tmp_path / "retargeting_customer_match.csv").exists()
    # At a month end the scores alone give the forecast the transactions give.
    assert run.forecast is not None and written.forecast is not None
    assert run.forecast.expected_crr == pytest.approx(written.forecast.expected_crr)
    assert run.forecast.customers_start == written.forecast.customers_start


def test_a_settings_file_sets_the_plan_and_the_discounts(
    scored_output: Scored, tmp_path: Path
) -> None:
    path = tmp_path / "actions.toml"
    path.write_text(
        '[tiers]\nnames = ["Blue", "Gold"]\nquantiles = [0.9]\n\n'
        '[discounts]\nlevels = [0.1]\nmargin_rate = 0.5\nresponse_rates = { "0.1" = 0.2 }\n'
    )
    action_settings, discount_settings = load_action_settings(path)
    assert action_settings.tiers.names == ["Blue", "Gold"]
    assert discount_settings.offered_levels == [0.1]
    scores, manifest = read_scores(scored_output.folder)
    out = tmp_path / "out"
    write_actions(
        out,
        scores,
        manifest,
        budget=BUDGET,
        action_settings=action_settings,
        discount_settings=discount_settings,
    )
    offers = pd.read_csv(out / "discounts.csv")
    assert set(offers["discount"]) == {0.1}
    plan = pd.read_parquet(out / "actions.parquet")
    assert set(plan["loyalty_tier"].astype(str)) == {"Blue", "Gold"}
    assert "Discount levels on offer: 10% (or no discount)." in (out / "report.html").read_text()


def test_the_report_settings_label_money_with_a_currency(
    scored_output: Scored, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "actions.toml"
    path.write_text('[report]\ncurrency = "GBP"\n\n[outreach]\nlead_days = 5\n')
    action_settings, _ = load_action_settings(path)  # the [report] table is not the plan's
    assert action_settings.outreach.lead_days == 5
    assert load_report_settings(path) == ReportSettings(currency="GBP")
    scores, manifest = read_scores(scored_output.folder)
    run = write_actions(
        tmp_path / "out",
        scores,
        manifest,
        budget=BUDGET,
        action_settings=action_settings,
        report_settings=load_report_settings(path),
    )
    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Predicted CLV, next 90 days, total (GBP)" in report
    summary = json.loads((tmp_path / "out" / "actions.json").read_text())
    assert summary["currency"] == "GBP"
    lines = "\n".join(run.lines())
    assert re.search(r"retargeting: [\d,]+ customers, value at risk [\d,.]+ GBP", lines), lines
    assert re.search(r"discounts: .*expected incremental margin [\d,.]+ GBP, cost", lines), lines
    # The scoring job reads the same table from its --action-settings file.
    job = ScoringActions.prepare(tmp_path / "job", None, path)
    assert job.report_settings.currency == "GBP"
    # Without a file: RETAIN_REPORT_CURRENCY, else no currency ("amount").
    assert load_report_settings(None).currency is None
    monkeypatch.setenv("RETAIN_REPORT_CURRENCY", "EUR")
    assert load_report_settings(None).currency == "EUR"
    assert load_report_settings(path).currency == "GBP"  # the file wins
    (tmp_path / "bad.toml").write_text('[report]\ncurrency = "G B P"\n')
    with pytest.raises(RetainInputError, match="currency"):
        load_report_settings(tmp_path / "bad.toml")
    (tmp_path / "typo.toml").write_text('[report]\ncurency = "GBP"\n')
    with pytest.raises(RetainInputError, match="curency"):
        load_report_settings(tmp_path / "typo.toml")


def test_the_retargeting_value_is_named_value_at_risk(written: ActionRun) -> None:
    summary = json.loads((written.folder / "actions.json").read_text())
    audiences = {a["name"]: a for a in summary["audiences"]}
    retargeting = pd.read_csv(written.folder / "retargeting.csv")
    assert audiences["retargeting"]["value_is"] == "value at risk"
    assert audiences["retargeting"]["value"] == pytest.approx(retargeting["value_at_risk"].sum())
    assert audiences["discounts"]["value_is"] == "expected incremental margin"
    assert all("expected_value" not in a for a in summary["audiences"])
    report = (written.folder / "report.html").read_text(encoding="utf-8")
    assert '<td class="text">value at risk</td>' in report
    # The outreach audience counts the overdue among its own contacts, and says so.
    outreach = pd.read_csv(written.folder / "outreach.csv")
    assert (
        f"{int(outreach['overdue'].sum()):,} of these {len(outreach):,} are overdue (whose days "
        "since their last order exceed their usual gap between orders by more than 7 days)"
    ) in report


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[discounts]\nlevls = [0.1]\n", "levls"),
        ("[tiers]\nnames = 3\n", "tiers"),
        ("[discounts\n", "cannot read"),
        ("[segmentz]\n", "segmentz"),
    ],
)
def test_a_bad_settings_file_is_refused_naming_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "actions.toml"
    path.write_text(text)
    with pytest.raises(RetainInputError, match=message):
        load_action_settings(path)


def test_with_a_campaign_history_the_discounts_come_from_learned_uplift(
    scored_output: Scored, tmp_path: Path
) -> None:
    scores, manifest = read_scores(scored_output.folder)
    history = read_campaign_history(scored_output.history)
    run = write_actions(tmp_path, scores, manifest, budget=BUDGET, campaign_history=history)
    assert run.discounts["mode"] == "uplift"
    offers = pd.read_csv(tmp_path / "discounts.csv")
    assert set(offers["mode"]) <= {"uplift"}
    assert offers["expected_cost"].sum() <= BUDGET + 1e-6
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "uplift mode" in report and "Qini" in report


def test_an_earlier_output_is_replaced_and_a_foreign_folder_refused(
    written: ActionRun, scored_output: Scored, tmp_path: Path
) -> None:
    scores, manifest = read_scores(scored_output.folder)
    again = publish_actions(written.folder, scores, manifest, budget=BUDGET / 2)
    assert json.loads((again.folder / "actions.json").read_text())["budget"] == BUDGET / 2
    assert not (again.folder / "retargeting_customer_match.csv").exists()

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(RetainInputError, match="holds other files"):
        publish_actions(foreign, scores, manifest, budget=BUDGET)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    with pytest.raises(RetainInputError, match="inside"):
        publish_actions(
            scored_output.folder, scores, manifest, budget=BUDGET,
            inputs=(scored_output.folder / "scores.parquet",),
        )  # fmt: skip


def test_a_failing_run_leaves_the_earlier_output_as_it_was(
    scored_output: Scored, tmp_path: Path
) -> None:
    scores, manifest = read_scores(scored_output.folder)
    out = tmp_path / "out"
    publish_actions(out, scores, manifest, budget=BUDGET)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    history = read_campaign_history(scored_output.history).drop(columns="treatment")
    with pytest.raises(RetainInputError, match="treatment"):
        publish_actions(out, scores, manifest, budget=BUDGET, campaign_history=history)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: (d / "scores.parquet").unlink(), "no scores.parquet"),
        (lambda d: (d / "manifest.json").unlink(), "no manifest.json"),
        (lambda d: (d / "manifest.json").write_text("{not json"), "cannot read"),
        (lambda d: (d / "manifest.json").write_text("{}"), "no as_of"),
    ],
)
def test_a_broken_scores_folder_is_refused(
    scored_output: Scored, tmp_path: Path, setup: object, message: str
) -> None:
    import shutil

    folder = Path(shutil.copytree(scored_output.folder, tmp_path / "scores"))
    setup(folder)  # type: ignore[operator]
    with pytest.raises(RetainInputError, match=re.escape(message)):
        read_scores(folder)


def test_action_settings_default_to_the_libraries_defaults() -> None:
    action_settings, discount_settings = load_action_settings(None)
    assert action_settings == ActionSettings()
    assert discount_settings == DiscountSettings()
