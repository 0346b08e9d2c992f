"""Customer value in the horizon: spend (Tweedie) and number of purchases (Poisson).

Spend in a horizon is zero for most customers (they do not buy) and right-skewed for the rest: a
point mass at zero plus a continuous tail, which is exactly what a compound Poisson-Gamma (Tweedie
with variance power between 1 and 2) describes. One Tweedie model therefore replaces the usual
two-part "will they buy x how much" model, and its log link keeps predictions positive. Purchase
counts are counts: Poisson with a log link. Both objectives are fitted on the mean, so the sum of
the predictions over the training rows matches the sum of the labels, which is what budget and
CLV totals need.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from retain.errors import RetainInputError
from retain.models.lgbm import _LGBMEstimator, predict_booster

__all__ = ["PurchasesModel", "SpendModel"]


class _MeanModel(_LGBMEstimator):
    """A LightGBM model of a non-negative mean with a log link: ``predict`` is ``scale_ exp(raw)``.

    ``balance=True`` rescales the predictions so that on the training rows they add up to the
    label total (``scale_``; the "balance property" of a GLM with canonical link). Poisson
    boosting nearly has it already (``scale_`` about 1); Tweedie boosting does not: its leaf values
    solve a weighted score equation and early stopping halts it before convergence, so its training
    total comes out some 4% short at power 1.3 and 10% at 1.5. Totals are what budgets and CLV sums
    are made of, so they are restored.
    """

    scale_: float

    def __init__(
        self,
        *,
        balance: bool = True,
        n_estimators: int = 1000,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        early_stopping_rounds: int | None = 50,
        params: Mapping[str, Any] | None = None,
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.balance = balance
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.early_stopping_rounds = early_stopping_rounds
        self.params = params
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | np.ndarray,
        *,
        cutoff: pd.Series | None = None,
        sample_weight: pd.Series | np.ndarray | None = None,
    ) -> _MeanModel:
        """Fit on features ``X`` and the label ``y``.

        ``cutoff`` (the cutoff of each row) lets the most recent cutoff be held out for early
        stopping; without it a random 10% is held out.
        """
        _, frame, target, weights = self._fit_lgbm(X, y, cutoff, sample_weight)
        self.scale_ = 1.0
        if self.balance:
            fitted = predict_booster(self.booster_, frame.to_numpy())
            self.scale_ = float(
                np.average(target, weights=weights) / np.average(fitted, weights=weights)
            )
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The expected value for each row of ``X``, shape ``(n,)``, never negative."""
        data = self._matrix(X).to_numpy()
        return self.scale_ * predict_booster(self.booster_, data)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Contributions of each feature to the log of the prediction, plus ``bias``.

        On the log scale, so ``exp`` of a contribution is a multiplier: +0.69 doubles the value.
        The balance rescaling is part of ``bias``, so ``exp`` of a row's sum is the prediction.
        """
        contributions = super().contributions(X)
        contributions["bias"] += np.log(self.scale_)
        return contributions


class SpendModel(_MeanModel):
    """Expected net spend in the horizon, from LightGBM with a Tweedie objective.

    The label is ``spend_in_horizon`` *clipped at 0*: net spend is negative when refunds of
    earlier orders exceed new purchases, and Tweedie is defined only for non-negative values. The
    number of clipped rows is kept in ``n_clipped_``; the predictions are the expected spend with
    such refund-heavy horizons counted as zero.

    Parameters
    ----------
    tweedie_variance_power:
        Between 1 (Poisson: mass at zero dominates) and 2 (Gamma: no zeros). 1.3 suits a
        horizon where most customers spend nothing and the spenders' amounts vary a lot.
    Other parameters as :class:`~retain.models.churn.ChurnModel`.

    Fitted attributes: ``booster_``, ``feature_names_``, ``n_features_in_``, ``best_iteration_``,
    ``validation_``, ``scale_`` (the balance factor, 1.0 with ``balance=False``) and ``n_clipped_``.
    """

    _objective: ClassVar[str] = "tweedie"
    _label: ClassVar[str] = "spend_in_horizon"

    n_clipped_: int

    def __init__(
        self,
        *,
        tweedie_variance_power: float = 1.3,
        balance: bool = True,
        n_estimators: int = 1000,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        early_stopping_rounds: int | None = 50,
        params: Mapping[str, Any] | None = None,
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        super().__init__(
            balance=balance,
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            early_stopping_rounds=early_stopping_rounds,
            params=params,
            random_state=random_state,
            n_jobs=n_jobs,
        )
        self.tweedie_variance_power = tweedie_variance_power

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | np.ndarray,
        *,
        cutoff: pd.Series | None = None,
        sample_weight: pd.Series | np.ndarray | None = None,
    ) -> SpendModel:
        """Fit on features ``X`` and ``spend_in_horizon`` (negative values count as 0)."""
        if not 1.0 < self.tweedie_variance_power < 2.0:
            raise RetainInputError(
                f"tweedie_variance_power must be between 1 and 2, not {self.tweedie_variance_power}"
            )
        super().fit(X, y, cutoff=cutoff, sample_weight=sample_weight)
        return self

    def _extra_params(self) -> dict[str, Any]:
        return {"tweedie_variance_power": float(self.tweedie_variance_power)}

    def _transform_label(self, label: np.ndarray) -> np.ndarray:
        self.n_clipped_ = int((label < 0).sum())
        if not (label > 0).any():
            raise RetainInputError(f"{self._label} is zero or negative in all {label.size} rows")
        return np.maximum(label, 0.0)


class PurchasesModel(_MeanModel):
    """Expected number of purchases (purchase days) in the horizon, from a Poisson LightGBM.

    The label is ``purchases_in_horizon``; it must be non-negative (it is a count). Parameters and
    fitted attributes as :class:`SpendModel`, without the Tweedie power and ``n_clipped_``.
    """

    _objective: ClassVar[str] = "poisson"
    _label: ClassVar[str] = "purchases_in_horizon"

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | np.ndarray,
        *,
        cutoff: pd.Series | None = None,
        sample_weight: pd.Series | np.ndarray | None = None,
    ) -> PurchasesModel:
        """Fit on features ``X`` and the count ``purchases_in_horizon``."""
        super().fit(X, y, cutoff=cutoff, sample_weight=sample_weight)
        return self

    def _transform_label(self, label: np.ndarray) -> np.ndarray:
        negative = int((label < 0).sum())
        if negative:
            raise RetainInputError(
                f"{self._label} has {negative} negative values in {label.size} rows: it is a count"
            )
        if not (label > 0).any():
            raise RetainInputError(f"{self._label} is zero in all {label.size} rows")
        return label
