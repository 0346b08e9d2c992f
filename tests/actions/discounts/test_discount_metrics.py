"""Qini and uplift curves and their normalised areas, against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from retain.actions.discounts import auuc, qini_coefficient, qini_curve, uplift_curve
from retain.errors import RetainInputError

# Four treated (t=1) and four control customers; the score ranks them in this order.
Y = np.array([1, 1, 0, 0, 1, 0, 1, 0], dtype=float)
T = np.array([1, 1, 0, 1, 0, 0, 1, 0], dtype=float)
SCORE = np.arange(8, 0, -1, dtype=float)


def test_qini_curve_by_hand() -> None:
    k, q = qini_curve(Y, T, SCORE)
    assert k.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    # k=3: treated 2 with 2 buyers, control 1 with 0 -> 2 - 0 * 2/1 = 2
    # k=5: treated 3 (2 buyers), control 2 (1 buyer) -> 2 - 1 * 3/2 = 0.5
    # k=8: treated 4 (3 buyers), control 4 (1 buyer) -> 3 - 1 = 2
    assert q[[0, 1, 2, 3, 5, 8]].tolist() == [0.0, 1.0, 2.0, 2.0, 0.5, 2.0]


def test_uplift_curve_by_hand() -> None:
    _, u = uplift_curve(Y, T, SCORE)
    # k=5: treated mean 2/3, control mean 1/2 -> (2/3 - 1/2) * 5
    assert u[5] == pytest.approx((2 / 3 - 1 / 2) * 5)
    # k=8: treated mean 3/4, control mean 1/4 -> 0.5 * 8 = 4
    assert u[8] == pytest.approx(4.0)
    assert u[0] == 0.0


def test_tied_scores_move_together() -> None:
    k, q = qini_curve(Y, T, np.array([2, 2, 2, 2, 1, 1, 1, 1], dtype=float))
    assert k.tolist() == [0, 4, 8]
    assert q.tolist() == [0.0, 2.0, 2.0]  # top 4: 2 treated buyers of 3 treated, 0 of 1 control


def test_normalised_scores() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    effect = rng.uniform(-0.1, 0.3, n)
    treatment = rng.integers(0, 2, n).astype(float)
    y = (rng.random(n) < 0.2 + effect * treatment).astype(float)
    for metric in (qini_coefficient, auuc):
        true_score = metric(y, treatment, effect)
        reverse = metric(y, treatment, -effect)
        noise = metric(y, treatment, rng.random(n))
        assert 0.1 < true_score < 1
        assert reverse < -0.1
        assert abs(noise) < 0.05
    # The perfect ranking of the observed outcomes scores exactly 1.
    perfect = y * treatment - y * (1 - treatment)
    assert qini_coefficient(y, treatment, perfect) == pytest.approx(1.0)
    assert auuc(y, treatment, perfect) == pytest.approx(1.0)


def test_no_outcome_at_all_is_nan() -> None:
    assert np.isnan(qini_coefficient(np.zeros(4), [1, 0, 1, 0], [4, 3, 2, 1]))


@pytest.mark.parametrize(
    ("y", "treatment", "score", "message"),
    [
        ([1, 0, 1], [1, 0], [1, 2, 3], "one value per customer"),
        ([1, 0], [1, 2], [1, 2], "treatment must be 1 .* in 1 of 2 rows"),
        ([1, 0], [1, 1], [1, 2], "both treated and control"),
        ([1, np.nan], [1, 0], [1, 2], "y is missing or infinite in 1 of 2 rows"),
        ([1, 0], [1, 0], [np.inf, 2], "uplift is missing or infinite in 1 of 2 rows"),
        ([[1, 0]], [1, 0], [1, 2], "one-dimensional"),
    ],
)
def test_bad_input(y: object, treatment: object, score: object, message: str) -> None:
    with pytest.raises(RetainInputError, match=message):
        qini_coefficient(y, treatment, score)
