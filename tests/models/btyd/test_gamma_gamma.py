"""Gamma-Gamma spend: the CDNOW estimates of Fader, Hardie & Lee, lifetimes' likelihood, expected
spend and CLV, and recovery of known parameters."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from tests.models.btyd.helpers import RFM, lifetimes_fitter, simulate_spend

from retain.models.btyd import BetaGeoModel, GammaGammaModel, TransactionModel, rfm_in_unit
from retain.models.btyd.gamma_gamma import _log_likelihood_rows

# FHL (2005), "RFM and CLV": the 946 CDNOW sample customers with repeat purchases in the
# calibration period, on the mean of their repeat transactions.
GOLD = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def test_cdnow_estimates_match_the_paper(cdnow_spend: GammaGammaModel) -> None:
    assert cdnow_spend.converged_
    for name, value in GOLD.items():  # the paper prints 2 decimals
        assert cdnow_spend.params_[name] == pytest.approx(value, abs=5e-3), name
    assert cdnow_spend.n_customers_ == 946
    assert cdnow_spend.n_one_time_ == 1_411
    # The population mean spend per transaction, p gamma / (q - 1): $35.2 in the paper.
    assert cdnow_spend.conditional_expected_average_profit(0, 0) == pytest.approx(35.17, abs=0.01)


def test_log_likelihood_equals_lifetimes_at_each_optimum(
    cdnow_spend: GammaGammaModel, cdnow_weeks: RFM
) -> None:
    from lifetimes import GammaGammaFitter

    repeat = cdnow_weeks.x > 0
    theirs = GammaGammaFitter().fit(cdnow_weeks.x[repeat], cdnow_weeks.m[repeat])
    # lifetimes reports the mean negative log-likelihood per customer.
    their_ll = -theirs._negative_log_likelihood_ * int(repeat.sum())
    assert their_ll == pytest.approx(cdnow_spend.log_likelihood_, rel=1e-6)
    for name, theirs_name in (("p", "p"), ("q", "q"), ("gamma", "v")):
        assert theirs.params_[theirs_name] == pytest.approx(cdnow_spend.params_[name], rel=1e-5)


def test_log_likelihood_equals_lifetimes_formula_at_any_parameters(cdnow_weeks: RFM) -> None:
    from lifetimes import GammaGammaFitter

    repeat = cdnow_weeks.x > 0
    x, m = cdnow_weeks.x[repeat], cdnow_weeks.m[repeat]
    rng = np.random.default_rng(5)
    for _ in range(5):
        params = np.exp(rng.uniform(-1.0, 3.0, 3))
        theirs = (
            -GammaGammaFitter._negative_log_likelihood(np.log(params), x, m, np.ones_like(x), 0.0)
            * x.size
        )
        assert _log_likelihood_rows(params, x, m).sum() == pytest.approx(theirs, rel=1e-10)


def test_expected_spend_equals_lifetimes(cdnow_spend: GammaGammaModel, cdnow_weeks: RFM) -> None:
    fitter = lifetimes_fitter("gamma-gamma", cdnow_spend.params_)
    x, m = cdnow_weeks.x, cdnow_weeks.m
    ours = np.asarray(cdnow_spend.conditional_expected_average_profit(x, m))
    np.testing.assert_allclose(ours, fitter.conditional_expected_average_profit(x, m), rtol=1e-12)
    # A weighted average of the population mean and the customer's own mean.
    population = cdnow_spend.conditional_expected_average_profit(0, 0)
    between = (np.minimum(m, population) <= ours + 1e-9) & (
        ours <= np.maximum(m, population) + 1e-9
    )
    assert between[x > 0].all()
    assert (ours[x == 0] == population).all()


@pytest.mark.parametrize(("unit", "freq"), [("days", "D"), ("weeks", "W")])
def test_customer_lifetime_value_equals_lifetimes(
    unit: str, freq: str, cdnow_spend: GammaGammaModel, cdnow_features: pd.DataFrame
) -> None:
    """lifetimes counts a month as 30 days ("D") or 4.345 weeks ("W"); ours as 30 days, or
    whatever ``freq_days`` says."""
    from lifetimes import BetaGeoFitter

    data = RFM.of(rfm_in_unit(cdnow_features, unit))  # type: ignore[arg-type]
    series = {c: data.frame[c] for c in ("frequency", "recency", "T", "monetary_value")}
    transactions = BetaGeoModel(time_unit=unit).fit(data.x, data.t_x, data.T)
    fitter = BetaGeoFitter()
    fitter.fit(data.x, data.t_x, data.T)
    fitter.params_[:] = [transactions.params_[k] for k in ("r", "alpha", "a", "b")]
    spend = lifetimes_fitter("gamma-gamma", cdnow_spend.params_)
    theirs = spend.customer_lifetime_value(
        fitter, *series.values(), time=12, discount_rate=0.01, freq=freq
    )
    freq_days = None if unit == "days" else 30.0 / 4.345
    ours = cdnow_spend.customer_lifetime_value(
        transactions, *series.values(), time=12, discount_rate=0.01, freq_days=freq_days
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    assert ours.index.equals(data.frame.index)  # Series in, Series out on the same index


def test_recovers_known_parameters() -> None:
    truth = {"p": 6.0, "q": 4.0, "gamma": 15.0}
    rng = np.random.default_rng(0)
    x = rng.poisson(3.0, 20_000).astype(np.float64)
    m = simulate_spend(x, **truth, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = GammaGammaModel().fit(x, m)
    # p and gamma are strongly correlated (their ratio sets the mean spend): each is known to
    # about 5 %, q to about 1 % (the spread over seeds).
    assert model.params_["q"] == pytest.approx(truth["q"], rel=0.05)
    for name in ("p", "gamma"):
        assert model.params_[name] == pytest.approx(truth[name], rel=0.15), name
    at_truth = _log_likelihood_rows(np.array(list(truth.values())), x[x > 0], m[x > 0]).sum()
    assert model.log_likelihood_ is not None
    assert 0 <= model.log_likelihood_ - at_truth < 10.6  # chi2(3) / 2, 1e-4 quantile


def test_does_not_depend_on_the_currency(cdnow_weeks: RFM) -> None:
    """Spend in cents: p and q unchanged, gamma 100 times larger, also with a penalty."""
    x, m = cdnow_weeks.x, cdnow_weeks.m
    for penalizer in (0.0, 0.1):
        dollars = GammaGammaModel(penalizer_coef=penalizer).fit(x, m)
        cents = GammaGammaModel(penalizer_coef=penalizer).fit(x, 100 * m)
        assert cents.params_["p"] == pytest.approx(dollars.params_["p"], rel=1e-6)
        assert cents.params_["q"] == pytest.approx(dollars.params_["q"], rel=1e-6)
        assert cents.params_["gamma"] == pytest.approx(100 * dollars.params_["gamma"], rel=1e-6)
    penalised = GammaGammaModel(penalizer_coef=0.1).fit(x, m)
    assert penalised.params_["p"] < 0.9 * GOLD["p"]  # the penalty did something


def test_weights_count_customers(cdnow_weeks: RFM) -> None:
    x, m = cdnow_weeks.x[:400], cdnow_weeks.m[:400]
    weights = np.arange(400) % 3
    weighted = GammaGammaModel().fit(x, m, weights=weights)
    expanded = GammaGammaModel().fit(np.repeat(x, weights), np.repeat(m, weights))
    for name in GOLD:
        assert weighted.params_[name] == pytest.approx(expanded.params_[name], rel=1e-6)
    assert weighted.log_likelihood_ == pytest.approx(expanded.log_likelihood_, rel=1e-9)


def test_expected_spend_is_infinite_where_the_posterior_mean_does_not_exist() -> None:
    model = GammaGammaModel.from_dict({"params": {"p": 2.0, "q": 0.8, "gamma": 10.0}})
    values = np.asarray(model.conditional_expected_average_profit([0, 1], [0, 5.0]))
    assert values[0] == np.inf  # q <= 1: no population mean
    assert values[1] == pytest.approx(2.0 * (10.0 + 5.0) / (2.0 + 0.8 - 1.0))


def test_clv_is_zero_for_customers_the_model_deems_gone(
    cdnow_fitted: dict[str, TransactionModel], cdnow_spend: GammaGammaModel
) -> None:
    transactions = cdnow_fitted["bgnbd"]
    clv = np.asarray(
        cdnow_spend.customer_lifetime_value(
            transactions, [5, 5, 0], [1.0, 38.0, 0.0], [38.0, 38.0, 38.0], [20.0, 20.0, 0.0]
        )
    )
    assert clv[0] < 0.01 * clv[1]  # same history, last seen 37 weeks ago: about dead
    assert clv[2] > 0 and np.isfinite(clv).all()
