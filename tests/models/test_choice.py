"""The choice of model per output: the grid, the blends, and who wins on which data."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from retain.data.datasets import Dataset
from retain.data.synthetic import simulate
from retain.models.choice import (
    OUTPUTS,
    blend_log_odds,
    blend_values,
    choose,
    timing_score,
)
from retain.models.retention import RetentionModel
from retain.models.timing import bin_edges


def test_a_single_candidate_wins_a_tie_with_a_blend() -> None:
    y = np.array([0, 0, 1, 1, 1])
    candidates = {"lgbm": y * 1.0, "btyd": y * 2.0, "naive": y * 3.0}

    def neg_error(p: np.ndarray, rows: np.ndarray | None) -> float:
        return -float(np.abs(p - y).sum())

    choice = choose("expected_purchases", candidates, blend_values, neg_error, resamples=0)
    assert choice.name == "lgbm"
    assert choice.weights == {"lgbm": 1.0, "btyd": 0.0, "naive": 0.0}
    # Every weighting scores the same: the classic model stays.
    same_rank = choose("expected_purchases", candidates, blend_values, lambda p, rows: 1.0)
    assert same_rank.name == "btyd"


def test_a_blend_wins_only_when_it_does_better_than_its_parts() -> None:
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    candidates = {"lgbm": truth + 1.0, "btyd": truth - 1.0, "naive": truth * 0}

    def neg_error(p: np.ndarray, rows: np.ndarray | None) -> float:
        return -float(np.abs(p - truth).sum())

    choice = choose("clv", candidates, blend_values, neg_error, resamples=0)
    assert choice.name == "blend"
    assert choice.weights == {"lgbm": 0.5, "btyd": 0.5, "naive": 0.0}
    assert choice.scores["chosen"] == pytest.approx(0.0)
    assert choice.describe() == "blend 0.5 lgbm + 0.5 btyd"


def test_probabilities_blend_on_the_log_odds_scale() -> None:
    p = blend_log_odds(
        {"lgbm": np.array([0.9]), "btyd": np.array([0.1])}, {"lgbm": 0.5, "btyd": 0.5}
    )
    assert p == pytest.approx([0.5])
    p = blend_log_odds(
        {"lgbm": np.array([0.8]), "btyd": np.array([0.5])}, {"lgbm": 0.5, "btyd": 0.5}
    )
    assert p == pytest.approx([2 / 3])  # odds sqrt(4 * 1) = 2


def test_the_timing_score_puts_the_undated_last_ordered_by_their_chance() -> None:
    edges = bin_edges(28, 7)
    hazards = np.array(
        [
            [0.6, 0.5, 0.5, 0.5],  # median inside the first week
            [0.1, 0.1, 0.4, 0.5],  # median in the fourth week
            [0.1, 0.1, 0.1, 0.1],  # no median within 28 days, P(by 28) = 0.34
            [0.01, 0.01, 0.01, 0.01],  # no median, P(by 28) = 0.04
        ]
    )
    score = timing_score(hazards, edges)
    assert np.all(np.diff(score) < 0)
    assert score[1] >= -28 > score[2]


@pytest.fixture(scope="module")
def simulated() -> object:
    return simulate(4_000, start="2022-01-01", end="2023-12-31", events=True, seed=1)


def _fit(transactions: pd.DataFrame, events: pd.DataFrame | None) -> RetentionModel:
    return RetentionModel(90, n_jobs=1).fit(transactions, "2023-12-31", events=events)


def test_btyd_is_chosen_on_data_it_describes(simulated: object) -> None:
    """Customers simulated from BG/NBD, no covariates: nothing can beat BG/NBD, and the
    validation must not pretend otherwise (it did, by 0.016 of AUC, when the boosters it judged
    had learnt from horizons overlapping the validation's)."""
    model = _fit(simulated.transactions, None)
    for output in ("churn_probability", "days_to_next_purchase"):
        choice = model.choices_[output]
        assert choice.weights["btyd"] >= 0.5, (output, choice)
        assert choice.scores["btyd"] >= choice.scores["lgbm"]
    assert model.validation_["split"].startswith("cutoff 2023-10-02")


def test_lightgbm_is_chosen_where_behaviour_btyd_cannot_see_drives_churn(
    simulated: object,
) -> None:
    """The simulated web and email events continue while a customer is alive: a covariate of
    churn that BG/NBD's purchase history does not hold."""
    model = _fit(simulated.transactions, simulated.events)
    for output in ("churn_probability", "p_purchase_30d", "days_to_next_purchase", "clv"):
        choice = model.choices_[output]
        assert choice.weights["lgbm"] >= 0.5, (output, choice)
        assert choice.scores["lgbm"] > choice.scores["btyd"] + 0.02, (output, choice)


def test_no_labelled_cutoff_falls_back_to_btyd_with_one_warning(cdnow_sample: Dataset) -> None:
    tx = cdnow_sample.transactions.frame
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = RetentionModel(44, n_jobs=1).fit(tx, "1997-02-05")  # 35 days of history
    fallback = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(fallback) == 1
    message = str(fallback[0].message)
    assert "\n" not in message
    assert "no labelled cutoff" in message and "BG/NBD + Gamma-Gamma's alone" in message
    assert model.fallback_ is not None and model.cutoffs_ == []
    assert {c.name for c in model.choices_.values()} == {"btyd"}
    table = model.features(tx)
    scores = model.score_features(table, "1997-02-05")
    p_no, purchases, clv = model.btyd_.expectations(table, 44)
    assert scores["churn_probability"].to_numpy() == pytest.approx(p_no)
    assert scores["expected_purchases"].to_numpy() == pytest.approx(purchases)
    assert scores["clv"].to_numpy() == pytest.approx(clv)
    assert set(model.choices_) == set(OUTPUTS)


@pytest.mark.parametrize(
    ("as_of", "horizon", "training_horizon"),
    [("1997-03-11", 44, 41), ("1997-08-31", 122, 122), ("1997-12-31", 181, 181)],
    ids=["ten-weeks", "eight-months", "one-year"],
)
def test_short_histories_train(
    cdnow_sample: Dataset, as_of: str, horizon: int, training_horizon: int
) -> None:
    tx = cdnow_sample.transactions.frame
    model = RetentionModel(horizon, n_jobs=1).fit(tx, as_of)
    assert model.fallback_ is None
    assert model.training_horizon_ == training_horizon
    scores = model.predict(tx)
    assert scores["churn_probability"].between(0, 1).all()
    assert (scores["expected_purchases"] >= 0).all()
    # Over the horizon predicted, not the shorter one trained on.
    assert model.timing_edges_[-1] == horizon


def test_an_unknown_trailing_window_leaves_the_naive_rule_to_btyd(cdnow_sample: Dataset) -> None:
    """The service accepts feature rows with unknown (NaN) values; the naive rule has no rate
    for them, and a blend that gives it weight must still answer (BTYD's expectation stands in:
    the schemathesis test of the service found a null CLV)."""
    tx = cdnow_sample.transactions.frame
    model = RetentionModel(90, n_jobs=1).fit(tx, "1997-09-30")
    table = model.features(tx).head(50).copy()
    table.loc[
        table.index[:10], [c for c in table.columns if c.startswith(("orders_", "spend_"))]
    ] = np.nan
    for output in ("expected_purchases", "clv"):
        model.choices_[output] = replace(
            model.choices_[output], weights={"lgbm": 0.0, "btyd": 0.5, "naive": 0.5}
        )
    scores = model.score_features(table, "1997-09-30", n_reasons=0)
    assert np.isfinite(scores["clv"]).all()
    assert np.isfinite(scores["expected_purchases"]).all()
    _, purchases, _ = model.btyd_.expectations(table, 90)
    level = model.levels_["purchases"]
    assert scores["expected_purchases"].to_numpy()[:10] == pytest.approx(purchases[:10] * level)
