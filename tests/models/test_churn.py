"""ChurnModel on simulated customers: trained on two cutoffs, judged on a later one.

The shop is the BG/NBD simulator, so the labels are real behaviour of known customers. Training
uses the cutoffs 2023-06-30 and 2023-12-31 (horizon 180 days), the test the cutoff 2024-06-30 with
labels to 2024-12-27: a temporal hold-out, as in production.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from retain.data.synthetic import simulate
from retain.errors import RetainInputError
from retain.features import build_features
from retain.models.churn import ChurnModel

HORIZON = 180
TRAIN_CUTOFFS = ("2023-06-30", "2023-12-31")
TEST_CUTOFF = "2024-06-30"
LABELS = ["churned", "purchased", "days_to_next_purchase", "purchases_in_horizon"]
NOT_FEATURES = ["customer_id", "segment", "cutoff", *LABELS, "spend_in_horizon"]


def features(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=NOT_FEATURES).astype("float64")


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training table of two stacked cutoffs, test table of a later cutoff)."""
    data = simulate(6000, seed=11)

    def at(cutoff: str) -> pd.DataFrame:
        table = build_features(data.transactions, cutoff, horizon_days=HORIZON)
        return table.assign(cutoff=pd.Timestamp(cutoff))

    train = pd.concat([at(c) for c in TRAIN_CUTOFFS], ignore_index=True)
    return train, at(TEST_CUTOFF)


@pytest.fixture(scope="module")
def model(tables: tuple[pd.DataFrame, pd.DataFrame]) -> ChurnModel:
    train, _ = tables
    return ChurnModel(random_state=3).fit(features(train), train["churned"], cutoff=train["cutoff"])


def decile_gaps(predicted: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """|mean predicted - observed rate| in each decile of the prediction."""
    decile = pd.qcut(pd.Series(predicted).rank(method="first"), 10, labels=False)
    means = pd.DataFrame({"p": predicted, "y": observed, "decile": decile}).groupby("decile").mean()
    return (means["p"] - means["y"]).abs().to_numpy()


# -- quality --------------------------------------------------------------------------------------


def test_churn_ranks_well_out_of_time(model: ChurnModel, tables: tuple[pd.DataFrame, ...]) -> None:
    _, test = tables
    churned = test["churned"].to_numpy()
    risk = model.predict_proba(features(test))
    auc = roc_auc_score(churned, risk)
    assert auc > 0.82  # measured 0.853
    # Better than the naive rule it must beat: the longer since the last purchase, the riskier.
    assert auc > roc_auc_score(churned, test["days_since_last_purchase"]) + 0.01  # 0.815


def test_churn_is_calibrated_out_of_time(
    model: ChurnModel, tables: tuple[pd.DataFrame, ...]
) -> None:
    _, test = tables
    churned = test["churned"].to_numpy()
    risk = model.predict_proba(features(test))
    assert risk.shape == (len(test),)
    assert risk.min() >= 0.0 and risk.max() <= 1.0
    assert abs(risk.mean() - churned.mean()) < 0.03  # measured -0.006
    gaps = decile_gaps(risk, churned)
    assert gaps.mean() < 0.04  # measured 0.024
    assert gaps.max() < 0.12  # measured 0.088


def test_out_of_time_calibration_rescues_an_overfitted_booster(
    tables: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """Big trees on tiny leaves at a high learning rate memorise the training rows. Isotonic
    regression on the held-out cutoff still calibrates them; the same map fitted on training
    predictions learns the memorised confidence and is badly off on the test cutoff."""
    train, test = tables
    X, churned = features(train), train["churned"].to_numpy()
    overfit = ChurnModel(
        num_leaves=255, learning_rate=0.2, params={"min_data_in_leaf": 2, "lambda_l2": 0.0}
    )
    overfit.fit(X, churned, cutoff=train["cutoff"])
    observed = test["churned"].to_numpy()
    raw = overfit.predict_proba(features(test), calibrated=False)
    calibrated = overfit.predict_proba(features(test))
    in_sample = IsotonicRegression(out_of_bounds="clip").fit(
        overfit.predict_proba(X, calibrated=False), churned
    )
    assert decile_gaps(calibrated, observed).mean() < 0.04  # measured 0.019
    assert decile_gaps(in_sample.predict(raw), observed).mean() > 0.07  # measured 0.114


def test_calibrator_is_fitted_on_the_latest_cutoff(
    model: ChurnModel, tables: tuple[pd.DataFrame, ...]
) -> None:
    train, _ = tables
    assert model.validation_["split"] == "latest cutoff 2023-12-31"
    assert model.validation_["n_rows"] == int((train["cutoff"] == "2023-12-31").sum())
    assert model.calibrator_ is not None
    assert 0 < model.best_iteration_ < model.n_estimators
    assert model.churn_rate_ == pytest.approx(train["churned"].mean())


def test_single_cutoff_holds_out_a_random_tenth(tables: tuple[pd.DataFrame, ...]) -> None:
    train, _ = tables
    one = train[train["cutoff"] == "2023-12-31"]
    fitted = ChurnModel(n_estimators=50).fit(features(one), one["churned"])
    assert fitted.validation_["split"] == "random 10%"
    assert fitted.validation_["n_rows"] == round(0.1 * len(one))
    unstopped = ChurnModel(n_estimators=20, early_stopping_rounds=None)
    unstopped.fit(features(one), one["churned"])
    assert unstopped.calibrator_ is None and unstopped.best_iteration_ == 20
    raw = unstopped.predict_proba(features(one), calibrated=False)
    np.testing.assert_array_equal(unstopped.predict_proba(features(one)), raw)


# -- explanations ---------------------------------------------------------------------------------


def test_contributions_add_up_to_the_log_odds(
    model: ChurnModel, tables: tuple[pd.DataFrame, ...]
) -> None:
    _, test = tables
    X = features(test).iloc[:500]
    contributions = model.contributions(X)
    assert list(contributions.columns) == [*model.feature_names_, "bias"]
    assert contributions.index.equals(X.index)
    p = model.predict_proba(X, calibrated=False)
    np.testing.assert_allclose(contributions.sum(axis=1), np.log(p / (1 - p)), atol=1e-9)
    # Sign: a long time since the last purchase raises the risk.
    days = X["days_since_last_purchase"]
    assert days.corr(contributions["days_since_last_purchase"], method="spearman") > 0.5


def test_feature_importance_is_gain_led_by_recency(model: ChurnModel) -> None:
    importance = model.feature_importance()
    assert set(importance.index) == set(model.feature_names_)
    assert importance.is_monotonic_decreasing and importance.iloc[0] > 0
    recency_like = {"days_since_last_purchase", "overdue_ratio", "r_score", "rfm_score", "recency"}
    assert importance.index[0] in recency_like
    splits = model.feature_importance("split")
    assert splits.sum() > 0 and splits.name == "split"
    with pytest.raises(RetainInputError, match="importance_type"):
        model.feature_importance("cover")


def test_scoring_ignores_extra_columns_and_names_missing_ones(
    model: ChurnModel, tables: tuple[pd.DataFrame, ...]
) -> None:
    _, test = tables
    X = features(test)
    shuffled = X[X.columns[::-1]].assign(extra=1.0)
    np.testing.assert_array_equal(model.predict_proba(shuffled), model.predict_proba(X))
    with pytest.raises(RetainInputError, match=r"lacks 1 of the features.*recency"):
        model.predict_proba(X.drop(columns=["recency"]))


# -- reproducibility ------------------------------------------------------------------------------


def test_same_seed_gives_identical_predictions(
    model: ChurnModel, tables: tuple[pd.DataFrame, ...]
) -> None:
    train, test = tables
    again = clone(model).fit(features(train), train["churned"], cutoff=train["cutoff"])
    np.testing.assert_array_equal(
        again.predict_proba(features(test)), model.predict_proba(features(test))
    )
    other = ChurnModel(random_state=4).fit(
        features(train), train["churned"], cutoff=train["cutoff"]
    )
    assert not np.array_equal(
        other.predict_proba(features(test)), model.predict_proba(features(test))
    )


def test_pickle_round_trip_in_a_fresh_process(
    model: ChurnModel, tables: tuple[pd.DataFrame, ...], tmp_path: Path
) -> None:
    _, test = tables
    X = features(test)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    X.to_pickle(tmp_path / "X.pkl")
    script = (
        "import pickle, sys, numpy as np, pandas as pd\n"
        "d = sys.argv[1]\n"
        "model = pickle.loads(open(d + '/model.pkl', 'rb').read())\n"
        "X = pd.read_pickle(d + '/X.pkl')\n"
        "np.save(d + '/p.npy', model.predict_proba(X))\n"
        "np.save(d + '/c.npy', model.contributions(X).to_numpy())\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), model.predict_proba(X))
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), model.contributions(X).to_numpy())
    state = model.__getstate__()
    assert isinstance(state["booster_"], str)  # the booster travels as its model string


# -- bad input ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tables: tuple[pd.DataFrame, ...]) -> pd.DataFrame:
    return tables[0].iloc[:200].reset_index(drop=True)


def test_non_numeric_columns_are_named(small: pd.DataFrame) -> None:
    X = small.drop(columns=[*LABELS, "spend_in_horizon", "cutoff"])
    with pytest.raises(RetainInputError, match=r"2 non-numeric columns: customer_id.*segment"):
        ChurnModel().fit(X, small["churned"])


def test_label_length_and_missing_values(small: pd.DataFrame) -> None:
    X = features(small)
    with pytest.raises(RetainInputError, match="churned has 199 rows but X has 200"):
        ChurnModel().fit(X, small["churned"].iloc[:-1])
    labels = small["churned"].astype("float64")
    labels.iloc[[3, 7, 9]] = np.nan
    with pytest.raises(RetainInputError, match="churned has 3 missing values"):
        ChurnModel().fit(X, labels)
    with pytest.raises(RetainInputError, match="churned has 2 values other than 0/1"):
        ChurnModel().fit(X, labels.fillna(1.0).where(labels.index > 1, 2.0))
    with pytest.raises(RetainInputError, match="cutoff has 10 rows but X has 200"):
        ChurnModel().fit(X, small["churned"], cutoff=small["cutoff"].iloc[:10])


def test_too_few_rows_or_one_class(small: pd.DataFrame) -> None:
    X = features(small)
    with pytest.raises(RetainInputError, match="X has 49 rows: at least 50"):
        ChurnModel().fit(X.iloc[:49], small["churned"].iloc[:49])
    with pytest.raises(RetainInputError, match="both classes: 200 of 200 rows churned"):
        ChurnModel().fit(X, np.ones(200, dtype=bool))
    with pytest.raises(RetainInputError, match="only 1 rows of one class"):
        ChurnModel().fit(X, np.r_[np.zeros(1), np.ones(199)])


def test_infinite_features_and_bad_containers(small: pd.DataFrame) -> None:
    X = features(small)
    X.loc[[0, 1], "ipt_mean"] = np.inf
    with pytest.raises(RetainInputError, match=r"infinite values in ipt_mean \(2 rows\)"):
        ChurnModel().fit(X, small["churned"])
    with pytest.raises(RetainInputError, match="pandas DataFrame"):
        ChurnModel().fit(features(small).to_numpy(), small["churned"])
    with pytest.raises(NotFittedError):
        ChurnModel().predict_proba(features(small))


# -- a baseline to boost from ---------------------------------------------------------------------


def bgnbd_no_purchase(table: pd.DataFrame) -> np.ndarray:
    """BG/NBD's P(no purchase in the horizon), fitted at each cutoff on its own customers."""
    from retain.models.retention import BTYDFeatures

    parts = [
        BTYDFeatures(HORIZON).fit(group).transform(group)["btyd_p_no_purchase"]
        for _, group in table.groupby("cutoff", sort=True)
    ]
    return pd.concat(parts).loc[table.index].to_numpy()


def test_a_churn_model_that_learns_nothing_returns_the_baseline(
    tables: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, _ = tables
    base = bgnbd_no_purchase(train)
    idle = ChurnModel(n_estimators=1, early_stopping_rounds=None, learning_rate=1e-9).fit(
        features(train), train["churned"], base_probability=base
    )
    np.testing.assert_allclose(
        idle.predict_proba(features(train), calibrated=False, base_probability=base),
        np.clip(base, 1e-9, 1 - 1e-9),
        rtol=1e-6,
    )
    # Contributions still add up to the full log-odds, the baseline counted as a feature.
    found = idle.contributions(features(train).head(50), base[:50])
    logit = np.log(base[:50] / (1 - base[:50]))
    np.testing.assert_allclose(found.sum(axis=1), logit, atol=1e-6)


def test_boosting_from_bgnbd_ranks_and_is_calibrated_out_of_time(
    tables: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, test = tables
    model = ChurnModel(random_state=3).fit(
        features(train),
        train["churned"],
        cutoff=train["cutoff"],
        base_probability=bgnbd_no_purchase(train),
    )
    base = bgnbd_no_purchase(test)
    p = model.predict_proba(features(test), calibrated=False, base_probability=base)
    churned = test["churned"].to_numpy(bool)
    assert roc_auc_score(churned, p) > 0.8
    assert abs(p.mean() - churned.mean()) < 0.03
    with pytest.raises(RetainInputError, match="exactly when the model was fitted with one"):
        model.predict_proba(features(test))
    with pytest.raises(RetainInputError, match="outside"):
        model.predict_proba(features(test), base_probability=base * 2 + 0.5)
