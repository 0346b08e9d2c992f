"""The RetentionModel end to end on synthetic data: columns, persistence, time discipline."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain.data.datasets import Dataset
from retain.data.synthetic import simulate
from retain.errors import NotFittedError, RetainInputError
from retain.models.btyd import ConvergenceWarning
from retain.models.retention import (
    SCORE_COLUMNS,
    BTYDFeatures,
    RetentionModel,
    reference_cutoff,
)
from retain.models.training import training_table
from retain.models.trees import warmed

AS_OF = "2024-06-30"


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate(2_500, seed=3).transactions


@pytest.fixture(scope="module")
def model(data: pd.DataFrame) -> RetentionModel:
    return RetentionModel(90, n_cutoffs=2, n_jobs=1).fit(data, AS_OF)


def test_scores_table(model: RetentionModel, data: pd.DataFrame) -> None:
    scores = model.predict(data, AS_OF)
    assert scores.columns.tolist() == SCORE_COLUMNS
    assert scores["customer_id"].is_unique
    for column in ("churn_probability", "p_alive", "p_purchase_30d"):
        assert scores[column].between(0, 1).all(), column
    assert (scores["expected_purchases"] >= 0).all() and (scores["clv"] >= 0).all()
    dates = scores["expected_next_purchase_date"].dropna()
    assert (dates >= pd.Timestamp(AS_OF)).all()
    # Up to three reasons each; none for a customer whose risk no reason-worthy feature raises.
    assert all(
        isinstance(r, list) and len(r) <= 3 and all(isinstance(t, str) for t in r)
        for r in scores["reasons"]
    )
    assert scores["reasons"].map(len).gt(0).mean() > 0.5
    # Risk ranks sensibly: the riskiest decile has been away longer than the safest.
    features = model.features(data, AS_OF).set_index("customer_id")
    away = features.loc[scores["customer_id"], "days_since_last_purchase"].to_numpy()
    risk = scores["churn_probability"].to_numpy()
    assert away[risk >= np.quantile(risk, 0.9)].mean() > away[risk <= np.quantile(risk, 0.1)].mean()


def test_no_purchase_is_dated_past_the_horizon(model: RetentionModel, data: pd.DataFrame) -> None:
    """Days and dates are null exactly for the customers whose P(purchase within the horizon), by
    the survival curve behind them, is below one half; every other customer is dated within the
    horizon."""
    scores = model.predict(data, AS_OF, n_reasons=0)
    table = model.features(data, AS_OF)
    within = 1 - model.purchase_survival(table, [model.horizon_days])[:, 0]
    days = scores["days_to_next_purchase"]
    dates = scores["expected_next_purchase_date"]
    assert np.array_equal(days.isna().to_numpy(), within < 0.5)
    assert np.array_equal(dates.isna().to_numpy(), within < 0.5)
    assert 0 < days.isna().sum() < len(scores)  # both kinds of customer are there
    assert days.max() <= model.horizon_days
    last = pd.Timestamp(AS_OF) + pd.Timedelta(days=model.horizon_days)
    assert dates.between(pd.Timestamp(AS_OF), last).sum() == days.notna().sum()
    assert pd.api.types.is_datetime64_dtype(dates)


def test_training_never_reads_past_as_of(model: RetentionModel, data: pd.DataFrame) -> None:
    assert max(model.cutoffs_) == pd.Timestamp(AS_OF) - pd.Timedelta(days=90)
    later = data.loc[data["timestamp"] > pd.Timestamp(AS_OF, tz="UTC") + pd.Timedelta(days=1)]
    assert len(later) > 0
    refit = RetentionModel(90, n_cutoffs=2, n_jobs=1).fit(
        data.loc[data["timestamp"] < pd.Timestamp("2024-07-01", tz="UTC")], AS_OF
    )
    pd.testing.assert_frame_equal(refit.predict(data, AS_OF), model.predict(data, AS_OF))


def test_save_and_load_give_the_same_scores(
    model: RetentionModel, data: pd.DataFrame, tmp_path: Path
) -> None:
    path = model.save(tmp_path / "model")
    loaded = RetentionModel.load(path)
    pd.testing.assert_frame_equal(loaded.predict(data, AS_OF), model.predict(data, AS_OF))


def test_warm_compiled_scoring_gives_lightgbms_scores(
    model: RetentionModel, data: pd.DataFrame, tmp_path: Path
) -> None:
    # A fresh copy: warming keeps compiled trees on the boosters of the model it is called on.
    cold = RetentionModel.load(model.save(tmp_path / "model"))
    hot = RetentionModel.load(tmp_path / "model").warm()
    assert warmed(hot.churn_.booster_) is not None and warmed(cold.churn_.booster_) is None
    few = data.loc[data["customer_id"].isin(data["customer_id"].unique()[:40])]
    expected, got = cold.predict(few, AS_OF), hot.predict(few, AS_OF)
    assert got["reasons"].tolist() == expected["reasons"].tolist()
    pd.testing.assert_frame_equal(
        got.drop(columns="reasons"), expected.drop(columns="reasons"), rtol=1e-12
    )


def test_unfitted_and_missing_model() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        RetentionModel().predict(pd.DataFrame())
    with pytest.raises(RetainInputError, match="no saved model at"):
        RetentionModel.load("/nonexistent/model")


def test_reference_cutoff_prefers_the_same_season_then_the_latest() -> None:
    as_of = pd.Timestamp("2011-06-09")
    cutoffs = [as_of - pd.Timedelta(days=d) for d in (457, 366, 274, 183)]
    assert reference_cutoff(sorted(cutoffs), as_of) == as_of - pd.Timedelta(days=366)
    two_years = [as_of - pd.Timedelta(days=d) for d in (740, 500, 200)]
    assert reference_cutoff(sorted(two_years), as_of) == as_of - pd.Timedelta(days=740)
    young = [as_of - pd.Timedelta(days=d) for d in (270, 180)]
    assert reference_cutoff(sorted(young), as_of) == as_of - pd.Timedelta(days=180)


def test_value_totals_are_anchored_on_btyd_at_the_reference_cutoff(
    model: RetentionModel, data: pd.DataFrame
) -> None:
    # At as_of the predicted totals are BTYD's totals there times the actual / BTYD ratio seen at
    # the reference cutoff: recompute that ratio by hand from the cutoff's features and labels.
    past = training_table(data, [model.reference_cutoff_], 90, as_of=AS_OF, builder=model.builder_)
    past_btyd = BTYDFeatures(90).fit(past).transform(past)
    scores = model.predict(data, AS_OF)
    now = model.features(data, AS_OF)
    for score, label, base in (
        ("expected_purchases", "purchases_in_horizon", "btyd_expected_purchases"),
        ("clv", "spend_in_horizon", "btyd_clv"),
    ):
        ratio = past[label].clip(lower=0).sum() / past_btyd[base].clip(lower=1e-3).sum()
        expected_total = ratio * now[base].clip(lower=1e-3).sum()
        assert scores[score].sum() == pytest.approx(expected_total, rel=1e-9), score


@pytest.mark.slow
def test_btyd_fits_that_do_not_converge_are_told_once_per_training(
    online_retail: Dataset,
) -> None:
    """On Online Retail II up to 2010-12-08 the BG/NBD runs its drop-out parameter a to 0 on the
    customers of two of the three fits (up to then the data show too little drop-out to estimate). The user gets one
    warning that names those fits, not one per fit, and training goes on."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = RetentionModel(183, n_cutoffs=2, n_jobs=1).fit(
            online_retail.transactions.frame, "2010-12-08"
        )
    told = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert [str(w.message) for w in told] == [
        "BTYD features, 2 of 3 fits: BetaGeoModel did not converge on the customers of "
        "2010-06-08 and 2010-12-08 (a ran to 0, the edge of its range); their columns use the "
        "best parameters found."
    ]
    assert model.cutoffs_ == [pd.Timestamp("2010-03-09"), pd.Timestamp("2010-06-08")]
