"""SpendModel and PurchasesModel on simulated customers, judged on a later cutoff.

Training uses the cutoffs 2023-06-30 and 2023-12-31 (horizon 180 days), the test the cutoff
2024-06-30. What matters downstream: predictions are never negative, their total is close to the
actual total (budgets and CLV sums), and they rank customers (Spearman).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone

from retain.data.synthetic import simulate
from retain.errors import RetainInputError
from retain.features import build_features
from retain.models.value import PurchasesModel, SpendModel

HORIZON = 180
TRAIN_CUTOFFS = ("2023-06-30", "2023-12-31")
TEST_CUTOFF = "2024-06-30"
LABELS = ["churned", "purchased", "days_to_next_purchase", "purchases_in_horizon"]
NOT_FEATURES = ["customer_id", "segment", "cutoff", *LABELS, "spend_in_horizon"]


def features(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=NOT_FEATURES).astype("float64")


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    data = simulate(6000, seed=11)

    def at(cutoff: str) -> pd.DataFrame:
        table = build_features(data.transactions, cutoff, horizon_days=HORIZON)
        return table.assign(cutoff=pd.Timestamp(cutoff))

    return pd.concat([at(c) for c in TRAIN_CUTOFFS], ignore_index=True), at(TEST_CUTOFF)


def fit_spend(train: pd.DataFrame, **kwargs: object) -> SpendModel:
    model = SpendModel(**kwargs)
    return model.fit(features(train), train["spend_in_horizon"], cutoff=train["cutoff"])


def fit_purchases(train: pd.DataFrame, **kwargs: object) -> PurchasesModel:
    model = PurchasesModel(**kwargs)
    return model.fit(features(train), train["purchases_in_horizon"], cutoff=train["cutoff"])


@pytest.fixture(scope="module")
def spend(tables: tuple[pd.DataFrame, pd.DataFrame]) -> SpendModel:
    return fit_spend(tables[0], random_state=2)


@pytest.fixture(scope="module")
def purchases(tables: tuple[pd.DataFrame, pd.DataFrame]) -> PurchasesModel:
    return fit_purchases(tables[0], random_state=2)


# -- quality --------------------------------------------------------------------------------------


def mean_squared_error(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean((predicted - actual) ** 2))


def test_spend_totals_and_ranking_out_of_time(
    spend: SpendModel, tables: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    """The total is over-predicted a little: the test cutoff's customers are older than any in
    training, and trees extrapolate flat (the simulated shop only loses customers)."""
    _, test = tables
    predicted, actual = spend.predict(features(test)), test["spend_in_horizon"].to_numpy()
    assert predicted.shape == (len(test),) and predicted.min() >= 0.0
    assert abs(predicted.sum() / actual.sum() - 1) < 0.15  # measured +0.130
    assert spearmanr(predicted, actual).statistic > 0.45  # measured 0.507
    # Far better than the naive rule "the next 180 days repeat the last 180" (MSE 1993).
    naive = test["spend_180d"].to_numpy()
    assert mean_squared_error(predicted, actual) < 0.7 * mean_squared_error(naive, actual)  # 1065


def test_purchases_totals_and_ranking_out_of_time(
    purchases: PurchasesModel, tables: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _, test = tables
    predicted, actual = purchases.predict(features(test)), test["purchases_in_horizon"].to_numpy()
    assert predicted.shape == (len(test),) and predicted.min() >= 0.0
    assert abs(predicted.sum() / actual.sum() - 1) < 0.15  # measured +0.110
    assert spearmanr(predicted, actual).statistic > 0.45  # measured 0.518
    naive = test["orders_180d"].to_numpy()  # MSE 1.233
    assert mean_squared_error(predicted, actual) < 0.8 * mean_squared_error(naive, actual)  # 0.817


def test_training_totals_are_balanced(
    spend: SpendModel, purchases: PurchasesModel, tables: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    """Predictions add up to the label total on the training rows; Tweedie needs the rescaling."""
    train, _ = tables
    X = features(train)
    assert spend.predict(X).sum() == pytest.approx(train["spend_in_horizon"].sum(), rel=1e-9)
    total = train["purchases_in_horizon"].sum()
    assert purchases.predict(X).sum() == pytest.approx(total, rel=1e-9)
    assert spend.scale_ > 1.02  # measured 1.044: Tweedie boosting falls short without it
    assert purchases.scale_ == pytest.approx(1.0, abs=0.01)
    raw = fit_spend(train, random_state=2, balance=False)
    assert raw.scale_ == 1.0
    np.testing.assert_allclose(raw.predict(X) * spend.scale_, spend.predict(X), rtol=1e-12)


def test_negative_spend_is_clipped_at_zero(tables: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, _ = tables
    refunds = train.assign(
        spend_in_horizon=train["spend_in_horizon"].where(train.index >= 40, -25.0)
    )
    model = fit_spend(refunds, n_estimators=30, early_stopping_rounds=None)
    assert model.n_clipped_ == 40
    assert model.predict(features(train)).min() >= 0.0


def test_tweedie_power_is_used(tables: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, test = tables
    a = fit_spend(train, tweedie_variance_power=1.2, n_estimators=30, early_stopping_rounds=None)
    b = fit_spend(train, tweedie_variance_power=1.5, n_estimators=30, early_stopping_rounds=None)
    assert "tweedie_variance_power: 1.2" in a.booster_.model_to_string()
    assert not np.array_equal(a.predict(features(test)), b.predict(features(test)))


# -- explanations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["spend", "purchases"])
def test_contributions_are_on_the_log_scale(
    which: str, request: pytest.FixtureRequest, tables: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    model = request.getfixturevalue(which)
    X = features(tables[1]).iloc[:500]
    contributions = model.contributions(X)
    assert list(contributions.columns) == [*model.feature_names_, "bias"]
    np.testing.assert_allclose(np.exp(contributions.sum(axis=1)), model.predict(X), rtol=1e-9)
    importance = model.feature_importance()
    assert importance.is_monotonic_decreasing and set(importance.index) == set(X.columns)
    assert model.validation_["split"] == "latest cutoff 2023-12-31"


# -- reproducibility ------------------------------------------------------------------------------


def test_same_seed_gives_identical_predictions(
    spend: SpendModel, purchases: PurchasesModel, tables: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = tables
    X = features(test)
    for model, label in ((spend, "spend_in_horizon"), (purchases, "purchases_in_horizon")):
        again = clone(model).fit(features(train), train[label], cutoff=train["cutoff"])
        np.testing.assert_array_equal(again.predict(X), model.predict(X))
    other = fit_spend(train, random_state=9)
    assert not np.array_equal(other.predict(X), spend.predict(X))


def test_pickle_round_trip_in_a_fresh_process(
    spend: SpendModel,
    purchases: PurchasesModel,
    tables: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
) -> None:
    X = features(tables[1])
    (tmp_path / "models.pkl").write_bytes(pickle.dumps([spend, purchases]))
    X.to_pickle(tmp_path / "X.pkl")
    script = (
        "import pickle, sys, numpy as np, pandas as pd\n"
        "d = sys.argv[1]\n"
        "models = pickle.loads(open(d + '/models.pkl', 'rb').read())\n"
        "X = pd.read_pickle(d + '/X.pkl')\n"
        "np.save(d + '/p.npy', np.stack([m.predict(X) for m in models]))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True)
    expected = np.stack([spend.predict(X), purchases.predict(X)])
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), expected)


# -- bad input ------------------------------------------------------------------------------------


def test_bad_labels(tables: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train = tables[0].iloc[:300].reset_index(drop=True)
    X = features(train)
    counts = train["purchases_in_horizon"]
    with pytest.raises(RetainInputError, match="purchases_in_horizon has 3 negative values"):
        PurchasesModel().fit(X, counts.where(counts.index > 2, -1.0))
    with pytest.raises(RetainInputError, match="purchases_in_horizon is zero in all 300 rows"):
        PurchasesModel().fit(X, np.zeros(300))
    with pytest.raises(
        RetainInputError, match="spend_in_horizon has 5 missing values \\(NaN\\) in 300"
    ):
        SpendModel().fit(X, train["spend_in_horizon"].where(train.index >= 5))
    with pytest.raises(RetainInputError, match="spend_in_horizon has 299 rows but X has 300"):
        SpendModel().fit(X, train["spend_in_horizon"].iloc[1:])
    with pytest.raises(RetainInputError, match="tweedie_variance_power must be between 1 and 2"):
        SpendModel(tweedie_variance_power=2.5).fit(X, train["spend_in_horizon"])
    with pytest.raises(RetainInputError, match=r"non-numeric columns: customer_id \(str\)"):
        SpendModel().fit(train[["customer_id", "recency"]], train["spend_in_horizon"])
    with pytest.raises(RetainInputError, match="sample_weight has 1 negative values"):
        SpendModel().fit(X, train["spend_in_horizon"], sample_weight=np.r_[-1.0, np.ones(299)])
