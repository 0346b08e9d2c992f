"""The RetentionModel end to end on synthetic data: columns, persistence, time discipline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain.data.synthetic import simulate
from retain.errors import RetainInputError
from retain.models.retention import SCORE_COLUMNS, RetentionModel

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
    assert (scores["expected_next_purchase_date"] >= pd.Timestamp(AS_OF)).all()
    assert all(
        isinstance(r, list) and r and all(isinstance(t, str) for t in r) for r in scores["reasons"]
    )
    # Risk ranks sensibly: the riskiest decile has been away longer than the safest.
    features = model.features(data, AS_OF).set_index("customer_id")
    away = features.loc[scores["customer_id"], "days_since_last_purchase"].to_numpy()
    risk = scores["churn_probability"].to_numpy()
    assert away[risk >= np.quantile(risk, 0.9)].mean() > away[risk <= np.quantile(risk, 0.1)].mean()


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
    path = model.save(tmp_path / "model.pkl")
    loaded = RetentionModel.load(path)
    pd.testing.assert_frame_equal(loaded.predict(data, AS_OF), model.predict(data, AS_OF))


def test_unfitted_and_missing_model() -> None:
    with pytest.raises(RetainInputError, match="not fitted"):
        RetentionModel().predict(pd.DataFrame())
    with pytest.raises(RetainInputError, match="no saved model at"):
        RetentionModel.load("/nonexistent/model.pkl")
