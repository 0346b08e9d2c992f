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
from retain.evaluation.holdout import HoldoutResult, temporal_holdout
from retain.models.retention import RetentionModel

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
