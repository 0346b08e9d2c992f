"""What every transaction model's fit shares: weights, time units, compression, convergence."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from tests.models.btyd.helpers import RFM, TRANSACTION_MODELS

from retain.models.btyd import ParetoNBDModel, TransactionModel
from retain.models.btyd._base import (
    ConvergenceWarning,
    RFMData,
    convergence_noted,
    factorize_rows,
    warn_not_converged,
)

TIME_PARAMS = {"bgnbd": ("alpha",), "pareto": ("alpha", "beta"), "mbgnbd": ("alpha",)}


@pytest.mark.parametrize("key", list(TRANSACTION_MODELS))
def test_days_and_weeks_give_the_same_model(
    key: str, cdnow_fitted: dict[str, TransactionModel], cdnow_days: RFM, cdnow_weeks: RFM
) -> None:
    """In days the time parameters are 7 times larger, the others equal, the predictions the
    same, and the log-likelihood lower by sum(x) log 7 (a density in the purchase times)."""
    weeks = cdnow_fitted[key]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        days = TRANSACTION_MODELS[key]().fit(cdnow_days.x, cdnow_days.t_x, cdnow_days.T)
    assert days.time_unit_ == "days"
    for name, value in weeks.params_.items():
        factor = 7.0 if name in TIME_PARAMS[key] else 1.0
        assert days.params_[name] == pytest.approx(factor * value, rel=1e-6), name
    assert days.log_likelihood_ == pytest.approx(
        weeks.log_likelihood_ - cdnow_weeks.x.sum() * np.log(7.0), rel=1e-9
    )
    np.testing.assert_allclose(
        days.conditional_expected_number_of_purchases_up_to_time(
            70.0, cdnow_days.x, cdnow_days.t_x, cdnow_days.T
        ),
        weeks.conditional_expected_number_of_purchases_up_to_time(
            10.0, cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T
        ),
        rtol=1e-5,
    )


@pytest.mark.parametrize("key", list(TRANSACTION_MODELS))
def test_weights_count_customers(key: str, cdnow_weeks: RFM) -> None:
    """A row with weight k is k identical customers (lifetimes' convention)."""
    rows = slice(0, 800)
    x, t_x, T = cdnow_weeks.x[rows], cdnow_weeks.t_x[rows], cdnow_weeks.T[rows]
    weights = np.arange(800) % 4  # some rows count 0 times
    model = TRANSACTION_MODELS[key]
    weighted = model(time_unit="weeks").fit(x, t_x, T, weights=weights)
    expanded = model(time_unit="weeks").fit(
        np.repeat(x, weights), np.repeat(t_x, weights), np.repeat(T, weights)
    )
    assert weighted.n_customers_ == expanded.n_customers_ == int(weights.sum())
    for name, value in expanded.params_.items():
        assert weighted.params_[name] == pytest.approx(value, rel=1e-6), name
    assert weighted.log_likelihood_ == pytest.approx(expanded.log_likelihood_, rel=1e-9)


def test_compression_keeps_every_customer(cdnow_weeks: RFM) -> None:
    data = RFMData.from_inputs(cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T)
    assert data.total_weight == 2_357
    assert data.x.size < 2_357  # CDNOW has repeated histories (1,411 one-time buyers among them)
    assert float(data.weight @ data.x) == cdnow_weeks.x.sum()
    # Every distinct (x, t_x, T) once, with its count.
    triples = set(zip(cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T, strict=True))
    assert set(zip(data.x, data.t_x, data.T, strict=True)) == triples


def test_factorize_rows_is_exact() -> None:
    """Rows equal only if every column is equal (no float key collisions)."""
    a = np.array([1.0, 1.0, 2.0, 1.0, 0.1 + 0.2, 0.3])
    b = np.array([5.0, 5.0, 5.0, 6.0, 1.0, 1.0])
    codes, (ua, ub) = factorize_rows(a, b)
    assert codes.tolist() == [0, 0, 1, 2, 3, 4]
    assert ua.tolist() == [1.0, 2.0, 1.0, 0.1 + 0.2, 0.3]
    assert ub.tolist() == [5.0, 5.0, 6.0, 1.0, 1.0]


def test_a_fit_that_cannot_converge_says_so() -> None:
    """Without a single repeat purchase the likelihood has no interior optimum: a warning that
    names a parameter running to an edge, not a crash; a penalty is advised only when none was
    used. Which parameter runs first along the flat ridge depends on the optimiser's path (on one
    processor r ran to 0, on another s to infinity), so any is accepted; what must not happen is
    a degenerate fit reported as converged (L-BFGS-B alone stopped there on an AMD EPYC)."""
    never_again = (np.zeros(50), np.zeros(50), np.linspace(10, 100, 50))
    with pytest.warns(ConvergenceWarning) as caught:
        model = ParetoNBDModel().fit(*never_again)
    assert not model.converged_
    assert all(np.isfinite(v) and v > 0 for v in model.params_.values())
    warning = caught[0].message
    assert isinstance(warning, ConvergenceWarning)
    assert warning.model == "ParetoNBDModel"
    assert re.fullmatch(
        r"(r|alpha|s|beta) ran to (0|infinity), the edge of its range(; .+)?", warning.reason
    )
    assert str(warning).endswith("A small penalizer_coef (e.g. 0.001) usually helps.")
    with pytest.warns(ConvergenceWarning, match=r"penalizer_coef was 0\.01\.$"):
        ParetoNBDModel(penalizer_coef=0.01).fit(*never_again)


def test_many_fits_that_do_not_converge_are_told_once() -> None:
    """A caller that fits at several cutoffs keeps the convergence warnings and says them in one
    sentence; any other warning still reaches the user at once."""
    never_again = (np.zeros(50), np.zeros(50), np.linspace(10, 100, 50))
    notes: dict[str, list[ConvergenceWarning]] = {}
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        for day in ("2024-01-31", "2024-02-29", "2024-03-31"):
            with convergence_noted(notes, day):
                ParetoNBDModel().fit(*never_again)
                warnings.warn(f"unrelated {day}", UserWarning, stacklevel=1)
    assert [str(w.message) for w in shown] == [
        "unrelated 2024-01-31",
        "unrelated 2024-02-29",
        "unrelated 2024-03-31",
    ]
    assert list(notes) == ["2024-01-31", "2024-02-29", "2024-03-31"]
    with pytest.warns(ConvergenceWarning) as told:
        warn_not_converged(notes, "3 fits", "the best parameters are used.")
    assert len(told) == 1
    summary = str(told[0].message)
    assert re.match(
        r"3 fits: ParetoNBDModel did not converge on the customers of 2024-01-31, 2024-02-29 and "
        r"2024-03-31 \((r|alpha|s|beta) ran to (0|infinity), the edge of its range",
        summary,
    )
    assert summary.endswith("; the best parameters are used.")
    assert summary.count("ParetoNBDModel") == 1  # the same reason is not repeated per fit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_not_converged({}, "no fit", "nothing to say")  # every fit converged: silence


@pytest.mark.parametrize("key", list(TRANSACTION_MODELS))
def test_fit_returns_the_model_and_refits_cleanly(key: str, cdnow_weeks: RFM) -> None:
    model = TRANSACTION_MODELS[key](time_unit="weeks")
    first = model.fit(cdnow_weeks.x[:500], cdnow_weeks.t_x[:500], cdnow_weeks.T[:500])
    assert first is model and model.n_customers_ == 500
    before = dict(model.params_)
    model.fit(cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T)
    assert model.n_customers_ == 2_357 and model.params_ != before
