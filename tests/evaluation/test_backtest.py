"""The backtest: where its cutoffs fall, what data each sees, the long table and the summary."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pandas as pd
import pytest

from retain.data.synthetic import simulate
from retain.errors import RetainInputError
from retain.evaluation import (
    BacktestResult,
    backtest,
    format_summary,
    stack_metrics,
    summarize_backtest,
)
from retain.evaluation.backtest import METRICS_COLUMNS, SUMMARY_COLUMNS
from retain.models.retention import RetentionModel

# The module, not the function of the same name that retain.evaluation exports over it.
backtest_module = importlib.import_module("retain.evaluation.backtest")

HORIZON = 90
LAST = pd.Timestamp("2024-06-30")
END = LAST + pd.Timedelta(days=HORIZON)  # 2024-09-28: the last day any cutoff may read
CONTENDERS = ["retain", "bgnbd", "naive"]
METRICS = [
    "churn_roc_auc",
    "churn_pr_auc",
    "churn_brier",
    "repurchase_30d_auc",
    "timing_cindex",
    "integrated_brier",
    "purchases_spearman",
    "purchases_any_auc",
    "purchases_buyers_spearman",
    "purchases_total_error",
    "clv_normalized_gini",
    "clv_spearman",
    "clv_total_error",
]


def small_model(horizon_days: int) -> RetentionModel:
    return RetentionModel(horizon_days, n_cutoffs=2, n_jobs=1)


class Stop(Exception):
    """Raised by a stand-in holdout once the cutoffs it was asked for are known."""


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    """Synthetic customers observed to 2024-12-31: months of data after the latest horizon."""
    return simulate(1_500, seed=3).transactions


@pytest.fixture(scope="module")
def late(data: pd.DataFrame) -> pd.DataFrame:
    """Transactions after the latest horizon: big spends by known customers and by new ones."""
    tail = data.tail(300)
    assert tail["timestamp"].min() > pd.Timestamp(END + pd.Timedelta(days=1), tz="UTC")
    known = tail.assign(amount=tail["amount"] * 50)
    new = tail.assign(customer_id="NEW" + tail["customer_id"].astype(str))
    return pd.concat([known, new], ignore_index=True)


@pytest.fixture(scope="module")
def calls() -> list[dict[str, Any]]:
    return []


@pytest.fixture(scope="module")
def result(data: pd.DataFrame, late: pd.DataFrame, calls: list[dict[str, Any]]) -> BacktestResult:
    """Two cutoffs on the data plus late transactions, recording what each holdout was given."""
    real = backtest_module.temporal_holdout

    def spy(transactions: pd.DataFrame, as_of: Any, horizon_days: int, *args: Any, **kw: Any):
        calls.append(
            {
                "as_of": as_of,
                "last_timestamp": transactions["timestamp"].max(),
                "observed_until": kw.get("observed_until"),
            }
        )
        return real(transactions, as_of, horizon_days, *args, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backtest_module, "temporal_holdout", spy)
        return backtest(
            pd.concat([data, late], ignore_index=True),
            horizon_days=HORIZON,
            n_cutoffs=2,
            last_cutoff=LAST,
            model_factory=small_model,
        )


def cutoffs_asked(monkeypatch: pytest.MonkeyPatch, data: pd.DataFrame, **kwargs: Any) -> Any:
    """The first (oldest) cutoff a backtest would judge, without training anything."""

    def stop(transactions: pd.DataFrame, as_of: Any, *args: Any, **kw: Any) -> None:
        raise Stop(as_of)

    monkeypatch.setattr(backtest_module, "temporal_holdout", stop)
    with pytest.raises(Stop) as stopped:
        backtest(data, **kwargs)
    return stopped.value.args[0]


# --- placement and time discipline -----------------------------------------------------------


def test_cutoffs_step_back_a_horizon_from_the_last(result: BacktestResult) -> None:
    assert result.cutoffs == [LAST - pd.Timedelta(days=HORIZON), LAST]
    assert result.step_days == HORIZON
    assert [h.horizon_days for h in result.holdouts] == [HORIZON, HORIZON]
    assert result.data.last_day == END
    assert result.latest is result.holdouts[-1]


def test_default_placement_ends_at_the_data(
    data: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The data ends on 2024-12-31: the last cutoff is 90 days before, the first 2 x 30 earlier.
    first = cutoffs_asked(
        monkeypatch, data, horizon_days=90, n_cutoffs=3, step_days=30, model_factory=small_model
    )
    assert first == pd.Timestamp("2024-12-31") - pd.Timedelta(days=90 + 60)
    given = cutoffs_asked(
        monkeypatch,
        data,
        cutoffs=["2024-05-01", "2024-03-01"],
        horizon_days=90,
        model_factory=small_model,
    )
    assert given == pd.Timestamp("2024-03-01")  # given cutoffs are judged oldest first


def test_each_cutoff_reads_nothing_after_its_horizon(
    result: BacktestResult, calls: list[dict[str, Any]]
) -> None:
    assert [c["as_of"] for c in calls] == result.cutoffs
    for call in calls:
        end = call["as_of"] + pd.Timedelta(days=HORIZON)
        assert call["observed_until"] == end
        assert call["last_timestamp"] < pd.Timestamp(end + pd.Timedelta(days=1), tz="UTC")


def test_transactions_after_the_last_horizon_change_nothing(
    result: BacktestResult, data: pd.DataFrame
) -> None:
    # The fixture's data runs three months past END and carries big late spends; here the data
    # stops at END. A backtest that peeked would differ.
    cut = data.loc[data["timestamp"] < pd.Timestamp(END + pd.Timedelta(days=1), tz="UTC")]
    again = backtest(
        cut, horizon_days=HORIZON, n_cutoffs=2, last_cutoff=LAST, model_factory=small_model
    )
    pd.testing.assert_frame_equal(again.metrics, result.metrics)
    pd.testing.assert_frame_equal(again.summary, result.summary)
    pd.testing.assert_frame_equal(again.tracking, result.tracking)
    for mine, theirs in zip(again.holdouts, result.holdouts, strict=True):
        pd.testing.assert_frame_equal(mine.frame, theirs.frame)


# --- tables ----------------------------------------------------------------------------------


def test_long_table_has_every_cutoff_contender_and_metric(result: BacktestResult) -> None:
    table = result.metrics
    assert table.columns.tolist() == METRICS_COLUMNS
    assert len(table) == 2 * len(CONTENDERS) * len(METRICS)
    assert not table.duplicated(["cutoff", "contender", "metric"]).any()
    assert sorted(table["cutoff"].unique()) == result.cutoffs
    assert set(table["contender"]) == set(CONTENDERS)
    assert table["metric"].drop_duplicates().tolist() == METRICS
    for holdout in result.holdouts:
        rows = table[table["cutoff"] == holdout.as_of].set_index(["contender", "metric"])
        for contender, metrics in holdout.metrics.items():
            for metric, value in metrics.items():
                assert rows.at[(contender, metric), "value"] == value
    # The naive rule has no Brier score: the row is there, without a value, and never best.
    for metric in ("churn_brier", "integrated_brier"):
        brier = table[(table["contender"] == "naive") & (table["metric"] == metric)]
        assert len(brier) == 2 and brier["value"].isna().all() and not brier["best"].any()
    # Exactly one best per metric and cutoff here (no exact ties in real scores).
    assert (table.groupby(["cutoff", "metric"])["best"].sum() >= 1).all()


def test_summary_agrees_with_the_long_table(result: BacktestResult) -> None:
    summary = result.summary
    assert summary.columns.tolist() == SUMMARY_COLUMNS
    assert len(summary) == len(CONTENDERS) * len(METRICS)
    retain_auc = result.metrics.query("contender == 'retain' and metric == 'churn_roc_auc'")
    row = summary.query("contender == 'retain' and metric == 'churn_roc_auc'").iloc[0]
    assert row["mean"] == pytest.approx(retain_auc["value"].mean())
    assert row["min"] == retain_auc["value"].min() and row["max"] == retain_auc["value"].max()
    assert row["wins"] == retain_auc["best"].sum() and row["cutoffs"] == 2


def test_wins_are_counted_per_cutoff_with_ties_and_directions() -> None:
    table = stack_metrics(
        {
            "2024-01-01": {
                "retain": {"churn_roc_auc": 0.80, "churn_brier": 0.10, "clv_total_error": -0.05},
                "bgnbd": {"churn_roc_auc": 0.70, "churn_brier": 0.12, "clv_total_error": 0.20},
                "naive": {"churn_roc_auc": 0.60, "clv_total_error": 0.01},
            },
            "2024-04-01": {
                "retain": {"churn_roc_auc": 0.75, "churn_brier": 0.15, "clv_total_error": 0.30},
                "bgnbd": {"churn_roc_auc": 0.75, "churn_brier": 0.11, "clv_total_error": -0.10},
                "naive": {"churn_roc_auc": 0.50, "clv_total_error": -0.40},
            },
            # Given out of order: the table is sorted by cutoff.
            "2023-10-01": {
                "retain": {"churn_roc_auc": 0.90, "churn_brier": 0.09, "clv_total_error": 0.02},
                "bgnbd": {"churn_roc_auc": 0.85, "churn_brier": 0.08, "clv_total_error": -0.02},
                "naive": {"churn_roc_auc": 0.95, "clv_total_error": 0.50},
            },
        }
    )
    assert table["cutoff"].drop_duplicates().dt.strftime("%Y-%m-%d").tolist() == [
        "2023-10-01",
        "2024-01-01",
        "2024-04-01",
    ]
    summary = summarize_backtest(table).set_index(["metric", "contender"])
    wins = summary["wins"].to_dict()
    # AUC: naive, retain, then a tie (both win).
    assert wins[("churn_roc_auc", "retain")] == 2
    assert wins[("churn_roc_auc", "bgnbd")] == 1
    assert wins[("churn_roc_auc", "naive")] == 1
    # Brier, lower is better; naive has none.
    assert wins[("churn_brier", "retain")] == 1
    assert wins[("churn_brier", "bgnbd")] == 2
    assert wins[("churn_brier", "naive")] == 0
    assert summary.at[("churn_brier", "naive"), "cutoffs"] == 0
    assert math.isnan(summary.at[("churn_brier", "naive"), "mean"])
    # total_error: closest to zero wins, whatever the sign (a tie of -0.02 and 0.02 at the first).
    assert wins[("clv_total_error", "retain")] == 1
    assert wins[("clv_total_error", "bgnbd")] == 2
    assert wins[("clv_total_error", "naive")] == 1
    assert summary.at[("churn_roc_auc", "retain"), "mean"] == pytest.approx(0.8166666666)
    assert summary.at[("churn_roc_auc", "retain"), "min"] == 0.75
    assert summary.at[("clv_total_error", "naive"), "max"] == 0.50
    text = format_summary(summarize_backtest(table), 3)
    assert "summary over 3 cutoffs" in text
    assert "2 of 3" in text.splitlines()[2]  # churn_roc_auc: retain won two
    single = {"2024-01-01": {"retain": {"churn_roc_auc": 0.8}, "bgnbd": {"churn_roc_auc": 0.7}}}
    one = format_summary(summarize_backtest(stack_metrics(single)), 1)
    assert one == (
        "summary: one cutoff, so its table is the whole result; retain is best on 1 of 1 metrics"
    )


def test_table_of_a_cutoff(result: BacktestResult) -> None:
    first = result.cutoffs[0]
    pd.testing.assert_frame_equal(result.table(first), result.holdouts[0].table())
    pd.testing.assert_frame_equal(result.table(), result.latest.table())
    with pytest.raises(RetainInputError, match="not a cutoff of this backtest"):
        result.table("2020-01-01")


def test_latest_cohort_tables(result: BacktestResult) -> None:
    tracking = result.tracking
    assert tracking["date"].iloc[-1] == END
    assert tracking["actual"].is_monotonic_increasing
    rfm = result.rfm
    assert len(rfm) == len(result.latest.frame)
    assert set(rfm["customer_id"]) == set(result.latest.frame["customer_id"])
    assert (rfm["recency"] <= rfm["T"]).all() and (rfm["frequency"] >= 0).all()


# --- input errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"cutoffs": ["2024-01-01"], "n_cutoffs": 2},
            "give either cutoffs, or n_cutoffs / step_days / last_cutoff",
        ),
        ({"n_cutoffs": 0}, "n_cutoffs must be a whole number >= 1, not 0"),
        ({"step_days": 1.5}, "step_days must be a whole number >= 1"),
        ({"horizon_days": 0}, "horizon_days must be a whole number >= 1, not 0"),
        (
            {"last_cutoff": "2024-11-01"},
            "needs data up to 2025-01-30; the latest cutoff can be 2024-10-02",
        ),
        ({"n_cutoffs": 12}, "only 11 of the 12 cutoffs fit in the data: 2022-01-16 leave"),
        ({"cutoffs": ["2024-01-01", "2024-01-01"]}, "name the same day more than once"),
        ({"cutoffs": []}, "cutoffs is empty"),
        ({"cutoffs": "2024-01-01"}, "cutoffs must be a list of days"),
        ({"model_factory": lambda h: RetentionModel(h + 1)}, "for a 91-day horizon"),
        ({"model_factory": lambda h: "a model"}, "must return a RetentionModel, not str"),
    ],
)
def test_input_errors_name_the_problem(
    data: pd.DataFrame, kwargs: dict[str, Any], message: str
) -> None:
    kwargs = {"horizon_days": HORIZON, **kwargs}
    with pytest.raises(RetainInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        backtest(data, **kwargs)


def test_a_fitted_model_is_refused(data: pd.DataFrame, result: BacktestResult) -> None:
    fitted = result.latest.model
    with pytest.raises(RetainInputError, match="returned a fitted model"):
        backtest(data, horizon_days=HORIZON, model_factory=lambda h: fitted)


def test_bad_transactions() -> None:
    with pytest.raises(RetainInputError, match="must be a pandas DataFrame"):
        backtest([1, 2], horizon_days=30)  # type: ignore[arg-type]
    with pytest.raises(RetainInputError, match=r"missing column\(s\) amount"):
        backtest(pd.DataFrame({"customer_id": [], "timestamp": []}), horizon_days=30)
    empty = pd.DataFrame(
        {"customer_id": [], "timestamp": pd.to_datetime([], utc=True), "amount": []}
    )
    with pytest.raises(RetainInputError, match="transactions is empty"):
        backtest(empty, horizon_days=30)
