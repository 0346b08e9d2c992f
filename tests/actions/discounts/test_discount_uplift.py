"""T- and X-learners on a simulated campaign whose per-customer effects are known."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from retain.actions.discounts import EFFECT_COLUMNS, TLearner, XLearner
from retain.actions.discounts.simulation import SimulatedCampaign, simulate_campaign
from retain.errors import RetainInputError

FEATURES = [
    "churn_probability",
    "p_alive",
    "expected_purchases",
    "p_purchase_30d",
    "days_to_next_purchase",
    "clv",
    "frequency",
    "T",
    "days_since_last_purchase",
    "orders_total",
    "spend_total",
]


@pytest.fixture(scope="module")
def campaign() -> SimulatedCampaign:
    return simulate_campaign(20_000, random_state=0)


@pytest.fixture(scope="module")
def target() -> SimulatedCampaign:
    return simulate_campaign(5_000, random_state=1)


def fit(learner: TLearner | XLearner, campaign: SimulatedCampaign) -> TLearner | XLearner:
    h = campaign.history
    return learner.fit(h[FEATURES], h["treatment"], h["purchased"], h["revenue"])


@pytest.fixture(scope="module")
def learners(campaign: SimulatedCampaign) -> dict[str, TLearner | XLearner]:
    return {"t": fit(TLearner(), campaign), "x": fit(XLearner(), campaign)}


@pytest.mark.parametrize("name", ["t", "x"])
def test_effects_follow_the_truth(
    name: str, learners: dict[str, TLearner | XLearner], target: SimulatedCampaign
) -> None:
    learner = learners[name]
    ids = target.scores["customer_id"].to_numpy()
    effects = learner.effects(target.scores, customer_id=ids)
    truth = target.effects
    assert list(effects.columns) == list(EFFECT_COLUMNS)
    assert len(effects) == 3 * len(ids)
    assert effects[["customer_id", "level"]].equals(truth[["customer_id", "level"]])
    for column, floor in [
        ("purchase_uplift", 0.8),
        ("revenue_uplift", 0.7),
        ("baseline_purchase", 0.8),
    ]:
        correlation = np.corrcoef(effects[column], truth[column])[0, 1]
        print(f"{name}-learner: correlation of {column} with the truth {correlation:.3f}")
        assert correlation > floor, column
    # Sleeping dogs (long tenure) are predicted to buy less with a discount; lapsing mid-risk
    # customers more; lost customers nothing; the few sure buyers (85 of 5,000) roughly nothing.
    state = effects.merge(target.scores, on="customer_id")
    dogs = state["T"] > 800
    mid = ~dogs & state["p_purchase_30d"].between(0.1, 0.35) & (state["p_alive"] > 0.6)
    sure = ~dogs & (state["p_purchase_30d"] > 0.7)
    lost = state["p_alive"] < 0.05
    assert state.loc[dogs, "purchase_uplift"].mean() < -0.01
    assert state.loc[mid, "purchase_uplift"].mean() > 0.15
    assert abs(state.loc[sure, "purchase_uplift"].mean()) < 0.1
    assert abs(state.loc[lost, "purchase_uplift"].mean()) < 0.02


def test_predict_is_the_uplift_matrix(
    learners: dict[str, TLearner | XLearner], target: SimulatedCampaign
) -> None:
    learner = learners["x"]
    assert learner.levels_ == [0.05, 0.10, 0.20]
    purchase = learner.predict(target.scores)
    revenue = learner.predict(target.scores, outcome="revenue")
    effects = learner.effects(target.scores)
    assert purchase.shape == revenue.shape == (len(target.scores), 3)
    assert np.allclose(purchase.T.ravel(), effects["purchase_uplift"])
    assert np.allclose(revenue.T.ravel(), effects["revenue_uplift"])
    with pytest.raises(RetainInputError, match="outcome"):
        learner.predict(target.scores, outcome="margin")  # type: ignore[arg-type]


def test_direct_revenue_and_a_propensity_model(
    campaign: SimulatedCampaign, target: SimulatedCampaign
) -> None:
    direct = fit(TLearner(revenue="direct"), campaign)
    modelled = fit(XLearner(propensity="model", n_estimators=100), campaign)
    assert set(modelled.propensity_.values()) == {None}
    truth = target.effects
    for learner, column in [(direct, "revenue_uplift"), (modelled, "purchase_uplift")]:
        effects = learner.effects(target.scores)
        assert np.corrcoef(effects[column], truth[column])[0, 1] > 0.6


def test_design_propensity_is_the_share_treated(learners: dict[str, TLearner | XLearner]) -> None:
    learner = learners["x"]
    assert isinstance(learner, XLearner)
    for level, share in learner.propensity_.items():
        n_level, n_control = learner.n_rows_[level], learner.n_rows_[0.0]
        assert share == pytest.approx(n_level / (n_level + n_control))


def test_deterministic_and_pickles(
    campaign: SimulatedCampaign,
    learners: dict[str, TLearner | XLearner],
    target: SimulatedCampaign,
) -> None:
    again = fit(TLearner(), campaign)
    first = learners["t"].effects(target.scores)
    pd.testing.assert_frame_equal(again.effects(target.scores), first)
    restored = pickle.loads(pickle.dumps(learners["t"]))
    pd.testing.assert_frame_equal(restored.effects(target.scores), first)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: h.assign(treatment=0.05), "no control rows"),
        (lambda h: h.assign(treatment=0.0), "no treated rows"),
        (
            lambda h: h.assign(treatment=np.where(h.index < 30, 0.2, h["treatment"] % 0.2)),
            "at least 50 rows",
        ),
        (
            lambda h: h.assign(treatment=np.where(h.index < 3, 1.5, h["treatment"])),
            "in 3 of 400 rows",
        ),
        (
            lambda h: h.assign(purchased=np.where(h.index < 2, 2, h["purchased"])),
            "purchased must be 0 or 1, not in 2 of 400",
        ),
        (
            lambda h: h.assign(revenue=np.where(h.index < 4, np.nan, h["revenue"])),
            "revenue has 4 missing",
        ),
    ],
)
def test_bad_history(change: object, message: str) -> None:
    h = simulate_campaign(400, levels=(0.2,), random_state=3).history
    h = h.assign(treatment=np.where(np.arange(len(h)) % 2 == 0, 0.0, 0.2))
    assert callable(change)
    bad = change(h)
    with pytest.raises(RetainInputError, match=message):
        TLearner(n_estimators=5).fit(
            bad[FEATURES], bad["treatment"], bad["purchased"], bad["revenue"]
        )


def test_scoring_needs_the_training_features(learners: dict[str, TLearner | XLearner]) -> None:
    scores = simulate_campaign(10, random_state=4).scores
    with pytest.raises(RetainInputError, match=r"lacks 1 of the features.*: clv"):
        learners["x"].effects(scores.drop(columns="clv"))
    with pytest.raises(RetainInputError, match="DataFrame"):
        learners["x"].effects(scores.to_numpy())  # type: ignore[arg-type]
