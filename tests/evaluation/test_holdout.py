"""The temporal holdout on a shop whose truth is known: BG/NBD customers with Gamma-Gamma spend.

On such data BG/NBD + Gamma-Gamma is the correctly specified model, so retain can at best match it
on ranking; what it must do is stay level with it, beat the naive rule, get totals right, and never
beat the oracle that knows every customer's latent rate and death (only leakage from the future
could do that).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from retain.data.synthetic import SyntheticData, simulate
from retain.evaluation import holdout, stack_metrics, summarize_backtest
from retain.evaluation.comparison import format_comparison
from retain.evaluation.holdout import HoldoutResult, temporal_holdout
from retain.evaluation.timing_metrics import timing_cindex
from retain.features import FeatureBuilder, to_cutoff
from retain.models.retention import BTYDFeatures, RetentionModel
from retain.models.training import up_to

AS_OF = "2024-06-30"
HORIZON = 180


@pytest.fixture(scope="module")
def shop() -> SyntheticData:
    return simulate(8_000, seed=21)


@pytest.fixture(scope="module")
def result(shop: SyntheticData) -> HoldoutResult:
    return temporal_holdout(
        shop.transactions, AS_OF, HORIZON, RetentionModel(HORIZON, n_cutoffs=2, n_jobs=2)
    )


def oracle_purchases(shop: SyntheticData, customers: pd.Series) -> np.ndarray:
    """Expected purchases in the horizon given the truth: 0 for the dead, else (1 - e^(-lam p H)) / p
    (purchases at rate lam until a death that strikes at rate lam p)."""
    truth = shop.truth.set_index("customer_id").loc[customers]
    start = pd.Timestamp(AS_OF, tz="UTC") + pd.Timedelta(days=1)
    alive = truth["died_at"].isna() | (truth["died_at"] >= start)
    lam, p = truth["lam"].to_numpy(), truth["p_drop"].to_numpy()
    return np.where(alive, -np.expm1(-lam * p * HORIZON) / p, 0.0)


def test_level_with_the_true_model_and_ahead_of_the_naive_rule(result: HoldoutResult) -> None:
    m = result.metrics
    for metric in ("churn_roc_auc", "repurchase_30d_auc", "clv_normalized_gini"):
        assert m["retain"][metric] > m["bgnbd"][metric] - 0.01, metric
        assert m["retain"][metric] > m["naive"][metric] + 0.02, metric
    assert m["retain"]["churn_brier"] < m["bgnbd"]["churn_brier"] + 0.005


def test_totals_within_ten_percent(result: HoldoutResult) -> None:
    for metric in ("purchases_total_error", "clv_total_error"):
        assert abs(result.metrics["retain"][metric]) < 0.10, metric


def test_nobody_beats_the_oracle(result: HoldoutResult, shop: SyntheticData) -> None:
    frame = result.frame
    oracle = oracle_purchases(shop, frame["customer_id"])
    churned = frame["churned"].to_numpy(bool)
    oracle_auc = roc_auc_score(churned, -oracle)
    assert result.metrics["retain"]["churn_roc_auc"] < oracle_auc
    assert result.metrics["bgnbd"]["churn_roc_auc"] < oracle_auc


def test_timing_metrics_for_every_contender(result: HoldoutResult) -> None:
    m = result.metrics
    for contender in ("retain", "bgnbd", "naive"):
        assert 0.5 < m[contender]["timing_cindex"] < 1.0, contender
    for contender in ("retain", "bgnbd"):
        assert 0.0 < m[contender]["integrated_brier"] < 0.25, contender
    assert "integrated_brier" not in m["naive"]  # a recency rule gives no probability
    # On BG/NBD's own data retain stays level with it on timing.
    assert m["retain"]["timing_cindex"] > m["bgnbd"]["timing_cindex"] - 0.01
    assert m["retain"]["integrated_brier"] < m["bgnbd"]["integrated_brier"] + 0.005
    table = result.table()
    assert table.loc["integrated_brier", "naive"] != table.loc["integrated_brier", "naive"]  # NaN
    low = table.loc["integrated_brier", ["retain", "bgnbd"]].astype(float).idxmin()
    assert table.loc["integrated_brier", "best"] == low  # lower is better
    high = table.loc["timing_cindex", ["retain", "bgnbd", "naive"]].astype(float).idxmax()
    assert table.loc["timing_cindex", "best"] == high  # higher is better
    text = format_comparison(table)
    assert "timing_cindex" in text and "integrated_brier" in text


def brute_force_integrated_brier(
    days: np.ndarray, bought: np.ndarray, survival: np.ndarray, horizon: int
) -> float:
    """The mean over days t = 1..horizon of the mean squared gap between S_i(t) and 1(no purchase
    by t), literally."""
    daily = []
    for t in range(1, horizon + 1):
        waiting = ~(bought & (days <= t))
        daily.append(np.mean((survival[:, t - 1] - waiting) ** 2))
    return float(np.mean(daily))


def test_bgnbd_integrated_brier_from_its_survival_curve(
    result: HoldoutResult, shop: SyntheticData
) -> None:
    # BG/NBD refitted on the same history, its S(t) one day at a time.
    day = to_cutoff(AS_OF)
    features = FeatureBuilder().build(up_to(shop.transactions, day), day)
    btyd = BTYDFeatures(HORIZON).fit(features).transactions_
    rfm = features.set_index(features["customer_id"].astype(str)).loc[
        result.frame["customer_id"].astype(str)
    ]
    x, t_x, T = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    survival = np.column_stack(
        [btyd.probability_of_no_purchase(t, x, t_x, T) for t in range(1, HORIZON + 1)]
    )
    days = result.frame["days_to_next_purchase"].to_numpy(float)
    bought = result.frame["purchased"].to_numpy(bool)
    expected = brute_force_integrated_brier(days, bought, survival, HORIZON)
    assert result.metrics["bgnbd"]["integrated_brier"] == pytest.approx(expected, rel=1e-9)
    # Its C-index ranks P(purchase within 30 days) = 1 - S(30).
    assert result.metrics["bgnbd"]["timing_cindex"] == pytest.approx(
        timing_cindex(days, bought, 1 - survival[:, 29]), abs=1e-9
    )


def test_retain_timing_from_its_survival_curve(result: HoldoutResult, shop: SyntheticData) -> None:
    model = result.model
    table = model.features(shop.transactions, AS_OF)
    rows = pd.Index(table["customer_id"].astype(str)).get_indexer(
        result.frame["customer_id"].astype(str)
    )
    survival = model.purchase_survival(table, np.arange(1, HORIZON + 1))[rows]
    days = result.frame["days_to_next_purchase"].to_numpy(float)
    bought = result.frame["purchased"].to_numpy(bool)
    assert result.metrics["retain"]["integrated_brier"] == pytest.approx(
        brute_force_integrated_brier(days, bought, survival, HORIZON), rel=1e-9
    )
    # -days_to_next_purchase, and the customers without a day below them, by P(purchase).
    predicted = result.frame["predicted_days_to_next_purchase"].to_numpy(float)
    undated = np.isnan(predicted)
    assert 0 < undated.sum() < len(predicted)
    p_horizon = 1 - survival[:, -1]
    score = np.where(undated, -(HORIZON + 1 + (1 - p_horizon)), -predicted)
    assert result.metrics["retain"]["timing_cindex"] == pytest.approx(
        timing_cindex(days, bought, score), abs=1e-12
    )


def test_survival_curves_in_blocks_give_the_same_score(
    result: HoldoutResult, shop: SyntheticData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The holdout held all 8,000 customers in one block; blocks of 997 customers, the last one
    # shorter, give the same integrated Brier score and survival at the horizon.
    assert len(result.frame) % 997 and len(result.frame) * HORIZON <= holdout._BLOCK_VALUES
    monkeypatch.setattr(holdout, "_BLOCK_VALUES", 997 * HORIZON)
    model = result.model
    table = model.features(shop.transactions, AS_OF)
    rows = pd.Index(table["customer_id"].astype(str)).get_indexer(
        result.frame["customer_id"].astype(str)
    )
    seen: list[int] = []

    def survival(block: np.ndarray) -> np.ndarray:
        seen.append(len(block))
        return model.purchase_survival(table.iloc[rows[block]], list(range(1, HORIZON + 1)))

    brier, at_horizon = holdout._curve_brier(
        result.frame["days_to_next_purchase"].to_numpy(float),
        result.frame["purchased"].to_numpy(bool),
        HORIZON,
        survival,
    )
    assert seen == [997] * 8 + [len(result.frame) - 8 * 997]
    assert brier == pytest.approx(result.metrics["retain"]["integrated_brier"], rel=1e-12)
    np.testing.assert_allclose(
        at_horizon, model.purchase_survival(table, [float(HORIZON)])[rows, 0], rtol=1e-12
    )


def test_backtest_summary_carries_the_timing_metrics(result: HoldoutResult) -> None:
    summary = summarize_backtest(stack_metrics({result.as_of: result.metrics}))
    rows = summary.set_index(["metric", "contender"])
    for contender in ("retain", "bgnbd", "naive"):
        assert rows.loc[("timing_cindex", contender), "mean"] == pytest.approx(
            result.metrics[contender]["timing_cindex"]
        )
    assert np.isnan(rows.loc[("integrated_brier", "naive"), "mean"])
    retain_won = (
        result.metrics["retain"]["integrated_brier"] < result.metrics["bgnbd"]["integrated_brier"]
    )
    assert rows.loc[("integrated_brier", "retain"), "wins"] == int(retain_won)
