"""BG/NBD: the CDNOW estimates of Fader, Hardie & Lee (2005), lifetimes' numbers, safe predictions
where lifetimes gives NaN, and recovery of known parameters."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from tests.models.btyd.helpers import (
    HORIZONS,
    RFM,
    assert_predictions_equal_lifetimes,
    bgnbd_probability_alive,
    expected_purchases_while_alive_by_quadrature,
    lifetimes_fitter,
    lifetimes_log_likelihood,
    simulate_beta_geometric,
)

from retain.data.synthetic import simulate
from retain.features import FeatureBuilder
from retain.models.btyd import BetaGeoModel, GammaGammaModel, TransactionModel

# FHL (2005), table 1 / section 5: CDNOW sample, calibration to 1997-09-30, weeks.
GOLD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GOLD_LOG_LIKELIHOOD = -9582.4


def test_cdnow_estimates_match_the_paper(cdnow_fitted: dict[str, TransactionModel]) -> None:
    model = cdnow_fitted["bgnbd"]
    assert model.converged_
    for name, value in GOLD.items():  # the paper prints 3 decimals
        assert model.params_[name] == pytest.approx(value, abs=5e-4), name
    assert model.log_likelihood_ == pytest.approx(GOLD_LOG_LIKELIHOOD, abs=0.1)
    assert model.n_customers_ == 2_357
    assert model.time_unit_ == "weeks"


def test_cdnow_calibration_data_is_the_papers(cdnow_weeks: RFM) -> None:
    # 2,357 customers, 2,457 repeat transactions in the 39 weeks, 1,411 without a repeat purchase.
    assert cdnow_weeks.x.size == 2_357
    assert cdnow_weeks.x.sum() == 2_457
    assert int((cdnow_weeks.x == 0).sum()) == 1_411
    assert cdnow_weeks.T.max() == pytest.approx(39 - 1 / 7)  # first purchase 1997-01-01


def test_log_likelihood_equals_lifetimes_at_each_optimum(
    cdnow_fitted: dict[str, TransactionModel], cdnow_weeks: RFM
) -> None:
    """lifetimes fitted on the same data reports the same maximum (converted to our convention)."""
    from lifetimes import BetaGeoFitter

    theirs = BetaGeoFitter().fit(cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T)
    ours = cdnow_fitted["bgnbd"]
    assert lifetimes_log_likelihood("bgnbd", theirs, cdnow_weeks) == pytest.approx(
        ours.log_likelihood_, rel=1e-6
    )
    for name in GOLD:
        assert theirs.params_[name] == pytest.approx(ours.params_[name], rel=1e-5), name


def test_log_likelihood_equals_lifetimes_formula_at_any_parameters(cdnow_weeks: RFM) -> None:
    from lifetimes import BetaGeoFitter

    rng = np.random.default_rng(3)
    for _ in range(5):
        params = np.exp(rng.uniform(-2.0, 2.0, 4))
        model = BetaGeoModel.from_dict({"params": dict(zip(GOLD, params, strict=True))})
        ours = model.individual_log_likelihood(cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T)
        weights = np.ones_like(cdnow_weeks.x)
        theirs = -BetaGeoFitter._negative_log_likelihood(
            np.log(params), cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T, weights, 0.0
        ) * len(weights)
        assert np.sum(ours) == pytest.approx(theirs, rel=1e-9)


def test_predictions_equal_lifetimes(
    cdnow_fitted: dict[str, TransactionModel], cdnow_weeks: RFM
) -> None:
    """Same parameters, same numbers: P(alive), conditional and unconditional expectations."""
    model = cdnow_fitted["bgnbd"]
    assert_predictions_equal_lifetimes(
        model,
        lifetimes_fitter("bgnbd", model.params_),
        cdnow_weeks,
        alive_rtol=1e-10,
        require_finite=True,
    )


def test_penalized_fit_equals_lifetimes(
    cdnow_fitted: dict[str, TransactionModel], cdnow_weeks: RFM
) -> None:
    """The penalty is lifetimes' (L2 on the parameters in time rescaled to T.max() = 1)."""
    from lifetimes import BetaGeoFitter

    x, t_x, T = cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T
    ours = BetaGeoModel(penalizer_coef=0.1, time_unit="weeks").fit(x, t_x, T)
    theirs = BetaGeoFitter(penalizer_coef=0.1).fit(x, t_x, T)
    for name in GOLD:
        assert ours.params_[name] == pytest.approx(theirs.params_[name], rel=1e-5), name
    plain = cdnow_fitted["bgnbd"].params_
    assert ours.params_["b"] < 0.9 * plain["b"]  # it did penalise


def test_probability_of_no_purchase_is_the_closed_form(
    cdnow_fitted: dict[str, TransactionModel], cdnow_weeks: RFM
) -> None:
    """P(no purchase in (T, T + t]) = (1 - P(alive)) + P(alive) ((alpha + T) / (alpha + T + t))
    ** (r + x): dead customers never buy, live ones have the posterior Gamma(r + x, alpha + T)."""
    model = cdnow_fitted["bgnbd"]
    params = model.params_
    x, t_x, T = cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T
    alive = bgnbd_probability_alive(params, x, t_x, T)
    for t in HORIZONS:
        direct = (1 - alive) + alive * ((params["alpha"] + T) / (params["alpha"] + T + t)) ** (
            params["r"] + x
        )
        np.testing.assert_allclose(
            model.probability_of_no_purchase(t, x, t_x, T), direct, rtol=1e-9
        )
    assert model.probability_of_no_purchase(0.0, x, t_x, T) == pytest.approx(1.0)


@pytest.mark.parametrize("copies", [1, 60], ids=["one call", "time by time"])
def test_log_probability_of_no_purchase_at_many_times(
    cdnow_fitted: dict[str, TransactionModel], cdnow_weeks: RFM, copies: int
) -> None:
    """Each column is the log of probability_of_no_purchase at its time; a few customers take one
    call for all times, many take the times one by one (2,357 x 60 rows pass the switch)."""
    model = cdnow_fitted["bgnbd"]
    x, t_x, T = (np.tile(v, copies) for v in (cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T))
    times = np.array([0.0, 1.0, 4.0, 13.0, 39.0])
    logs = model.log_probability_of_no_purchase(times, x, t_x, T)
    assert logs.shape == (len(x), len(times)) and (logs[:, 0] == 0).all()
    for j, t in enumerate(times):
        np.testing.assert_allclose(
            np.exp(logs[:, j]), model.probability_of_no_purchase(t, x, t_x, T), rtol=1e-12
        )


def test_probability_alive_is_one_without_repeat_purchases(
    cdnow_fitted: dict[str, TransactionModel],
) -> None:
    model = cdnow_fitted["bgnbd"]
    alive = model.conditional_probability_alive([0, 0, 1, 1], [0, 0, 30, 1], [30, 5, 30, 30])
    assert alive[:2].tolist() == [1.0, 1.0]
    assert alive[2] > alive[3]  # a recent last purchase means more likely alive
    assert 0 < alive[3] < 1


@pytest.fixture(scope="module")
def small_b() -> tuple[BetaGeoModel, RFM]:
    """BG/NBD customers with b < 1 and a + b < 1, fitted: where lifetimes breaks down."""
    frame = simulate_beta_geometric(20_000, r=0.5, alpha=5.0, a=0.3, b=0.5, max_T=78, seed=0)
    frame["monetary_value"] = 0.0
    data = RFM.of(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = BetaGeoModel(time_unit="weeks").fit(data.x, data.t_x, data.T)
    return model, data


def test_recovers_known_parameters(small_b: tuple[BetaGeoModel, RFM]) -> None:
    model, data = small_b
    truth = {"r": 0.5, "alpha": 5.0, "a": 0.3, "b": 0.5}
    for name, value in truth.items():
        assert model.params_[name] == pytest.approx(value, rel=0.1), name
    # The maximum is above the truth, by about chi2(4) / 2 (1e-4 quantile: 11.7).
    at_truth = model._log_likelihood_rows(np.array(list(truth.values())), data.x, data.t_x, data.T)
    assert model.log_likelihood_ is not None
    assert 0 <= model.log_likelihood_ - at_truth.sum() < 11.7


def test_one_time_buyers_are_finite_where_lifetimes_gives_nan(
    small_b: tuple[BetaGeoModel, RFM],
) -> None:
    model, data = small_b
    params = model.params_
    assert params["b"] < 1 and params["a"] + params["b"] < 1
    fitter = lifetimes_fitter("bgnbd", params)
    x, t_x, T = data.x, data.t_x, data.T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifetimes' NaN comes with RuntimeWarnings
        theirs = np.asarray(
            fitter.conditional_expected_number_of_purchases_up_to_time(52, x, t_x, T)
        )
    ours = np.asarray(model.conditional_expected_number_of_purchases_up_to_time(52, x, t_x, T))
    nan = np.isnan(theirs)
    assert nan.sum() > 1_000 and (x[nan] == 0).all()  # lifetimes: NaN for one-time buyers
    assert np.isfinite(ours).all() and (ours >= 0).all()
    np.testing.assert_allclose(ours[~nan], theirs[~nan], rtol=1e-8)
    # Where lifetimes has nothing, the answer is checked by direct integration over p.
    for i in np.flatnonzero(nan)[:5]:
        direct = expected_purchases_while_alive_by_quadrature(
            52.0, params["r"], params["alpha"] + T[i], params["a"], params["b"]
        )
        assert ours[i] == pytest.approx(direct, rel=1e-7)
    # Also for a new customer (no history), which lifetimes computes the same way.
    direct = expected_purchases_while_alive_by_quadrature(
        52.0, params["r"], params["alpha"], params["a"], params["b"]
    )
    assert model.expected_number_of_purchases_up_to_time(52.0) == pytest.approx(direct, rel=1e-7)


def test_recovers_the_synthetic_shop_through_the_feature_table() -> None:
    """retain's simulated shop (BG/NBD and Gamma-Gamma by construction, in days) read back
    through the feature builder: the parameters, and the share of customers still alive."""
    data = simulate(20_000, seed=0)
    features = FeatureBuilder().build(data.transactions, data.params["end"])
    x, t_x, T = (features[c] for c in ("frequency", "recency", "T"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = BetaGeoModel().fit(x, t_x, T)
        spend = GammaGammaModel().fit(x, features["monetary_value"])
    for name in ("r", "alpha", "a", "b"):
        assert model.params_[name] == pytest.approx(data.params[name], rel=0.1), name
    for name in ("p", "q", "gamma"):
        assert spend.params_[name] == pytest.approx(data.params[name], rel=0.1), name
    alive = model.conditional_probability_alive(x, t_x, T)
    truth = data.truth.set_index("customer_id").loc[features["customer_id"], "alive_at_end"]
    assert float(np.mean(alive)) == pytest.approx(float(truth.mean()), abs=0.01)
    # And P(alive) sorts the living from the dead.
    assert float(np.mean(alive[truth.to_numpy()])) > float(np.mean(alive[~truth.to_numpy()])) + 0.3
