"""Per-customer effects of each discount level, learned from a randomised campaign.

A campaign history has one row per customer: the features they had when it started, the treatment
they got (a discount level; 0 for the held-out control group) and what they did in the campaign
window: ``purchased`` (0/1) and ``revenue`` (full price, before the discount). From it, meta-learners
(Künzel, Sekhon, Bickel & Yu 2019, "Metalearners for estimating heterogeneous treatment effects
using machine learning", PNAS 116(10)) estimate, for every customer and level ``d``:

- ``baseline_purchase`` and ``baseline_revenue``: what the customer would do without a discount;
- ``purchase_uplift`` and ``revenue_uplift``: what level ``d`` adds to it.

Several levels are handled one at a time against the same control group (one set of models per
level versus control). Every model is a LightGBM booster trained the project's way (see
:mod:`retain.models.lgbm`): early stopping on a seeded random part of its rows
(``early_stopping_fraction``, 20%: uplift models are noisy, a small early-stopping set makes the
number of rounds a lottery), then a refit on all of them for the rounds found; deterministic for a
given ``random_state``. The trees are small with large leaves (7 leaves of at least 100 customers by
default): an uplift is a small difference between noisy outcomes, and only large groups of
customers show it.

Revenue (``revenue=``):

- ``"per_order"`` (default): the learners estimate the purchase effects; one more model, fitted on
  every customer who bought (all arms together), predicts the full-price revenue of a purchase,
  ``v(x)``; then ``baseline_revenue = baseline_purchase x v(x)`` and ``revenue_uplift =
  purchase_uplift x v(x)``. This assumes that a discount changes *whether* a customer buys, not how
  much they buy at full price, and is far less noisy than learning the uplift of a revenue that is
  zero for most customers (on the simulated campaigns of :mod:`.simulation` the budgeted policy
  captures about 10 points more of the oracle's net value).
- ``"direct"``: the learners are run on ``revenue`` as a second outcome, as on ``purchased``; use it
  when discounts are known to change basket sizes, with a large campaign.

- :class:`TLearner` fits one outcome model per arm and subtracts: ``mu_d(x) - mu_0(x)``. Simple and
  unbiased when every arm is large; noisy when the effect is small next to the outcome's variation,
  because two separately regularised models are subtracted.
- :class:`XLearner` starts from the same models, then imputes each customer's own effect with the
  other arm's model (``y - mu_0(x)`` for treated, ``mu_d(x) - y`` for control customers), regresses
  the imputed effects on the features within each arm, and averages the two effect models with the
  propensity ``g(x)`` = P(level ``d`` | x, level ``d`` or control): ``g * tau_0 + (1 - g) * tau_1``.
  The propensity is the design's share of treated customers when the campaign was randomised
  (``propensity="design"``) or a LightGBM classifier's estimate otherwise (``"model"``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Final, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from retain.errors import RetainInputError, check_fitted
from retain.models.lgbm import (
    MIN_EXAMPLES,
    check_features,
    check_label,
    default_params,
    fit_booster,
    holdout_mask,
    predict_booster,
    training_features,
)

__all__ = ["EFFECT_COLUMNS", "TLearner", "XLearner"]

# The long format of per-customer effects: one row per customer and discount level (> 0).
EFFECT_COLUMNS: Final = (
    "customer_id",
    "level",
    "baseline_purchase",
    "baseline_revenue",
    "purchase_uplift",
    "revenue_uplift",
)
OUTCOMES: Final = ("purchase", "revenue")
# The propensity model's estimates are kept off 0 and 1: the X-learner's weights need both arms.
_PROPENSITY_CLIP: Final = 0.02


class _MetaLearner(BaseEstimator, ABC):
    """What the T- and X-learners share: checks, the per-arm outcome models, effects, pickling."""

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 7,
        min_child_samples: int | None = 100,
        early_stopping_rounds: int | None = 30,
        params: Mapping[str, Any] | None = None,
        random_state: int = 0,
        n_jobs: int = 1,
        revenue: Literal["per_order", "direct"] = "per_order",
        early_stopping_fraction: float = 0.2,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.params = params
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.revenue = revenue
        self.early_stopping_fraction = early_stopping_fraction

    levels_: list[float]
    feature_names_: list[str]
    n_features_in_: int
    models_: dict[str, lgb.Booster]
    n_rows_: dict[float, int]

    # -- fitting ----------------------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, treatment: object, purchased: object, revenue: object) -> Any:
        """Learn the effects of every discount level in ``treatment`` against level 0.

        ``X`` numeric features (NaN allowed), ``treatment`` the level each customer got (0 for
        control), ``purchased`` 0/1 and ``revenue`` (full price) in the campaign window.
        """
        if self.revenue not in ("per_order", "direct"):
            raise RetainInputError(f"revenue must be 'per_order' or 'direct', not {self.revenue!r}")
        if not 0 < self.early_stopping_fraction < 1:
            raise RetainInputError(
                f"early_stopping_fraction must be in (0, 1), not {self.early_stopping_fraction!r}"
            )
        frame = check_features(X, min_rows=MIN_EXAMPLES)
        n = len(frame)
        arm = check_label(treatment, n, "treatment")
        bought = check_label(purchased, n, "purchased")
        spent = check_label(revenue, n, "revenue")
        _check_arms(arm)
        not_binary = int((~np.isin(bought, (0.0, 1.0))).sum())
        if not_binary:
            raise RetainInputError(f"purchased must be 0 or 1, not in {not_binary} of {n} rows")
        self.feature_names_ = list(frame.columns)
        self.n_features_in_ = len(self.feature_names_)
        self.levels_ = sorted(float(level) for level in np.unique(arm) if level > 0)
        self.n_rows_ = {float(level): int((arm == level).sum()) for level in np.unique(arm)}
        self.models_ = {}
        data = frame.to_numpy(dtype=np.float64)
        outcomes = {"purchase": bought}
        if self.revenue == "direct":
            outcomes["revenue"] = spent
        else:  # one order-value model on every buyer, whatever their arm
            buyers = bought == 1
            if buyers.sum() < MIN_EXAMPLES:
                raise RetainInputError(
                    f"purchased: {int(buyers.sum())} of {n} customers bought; the order-value "
                    f"model needs at least {MIN_EXAMPLES}"
                )
            self.models_["order_value"] = self._booster(data[buyers], spent[buyers], "regression")
        for a in [0.0, *self.levels_]:
            rows = arm == a
            for outcome, y in outcomes.items():
                objective = "binary" if outcome == "purchase" else "regression"
                self.models_[_key("mu", outcome, a)] = self._booster(data[rows], y[rows], objective)
        self._fit_effects(data, arm, outcomes)
        return self

    def _fit_effects(
        self, data: np.ndarray, arm: np.ndarray, outcomes: dict[str, np.ndarray]
    ) -> None:
        """Second-stage models (none for the T-learner)."""

    def _booster(self, data: np.ndarray, y: np.ndarray, objective: str) -> lgb.Booster:
        """One LightGBM model, the project's way; every model gets its own seed."""
        seed = self.random_state + len(self.models_)
        params = default_params(len(y), seed, self.n_jobs) | {
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
        }
        if self.min_child_samples is not None:
            params["min_data_in_leaf"] = int(self.min_child_samples)
        params |= dict(self.params or {})
        early = self.early_stopping_rounds is not None
        valid = holdout_mask(None, len(y), self.early_stopping_fraction, seed)[0] if early else None
        result = fit_booster(
            data,
            y,
            objective,
            params,
            valid=valid,
            early_stopping=early,
            num_boost_round=int(self.n_estimators),
            early_stopping_rounds=int(self.early_stopping_rounds or 0),
            feature_names=self.feature_names_,
        )
        return result.booster

    # -- predicting -------------------------------------------------------------------------------

    def effects(self, X: pd.DataFrame, customer_id: object = None) -> pd.DataFrame:
        """Per-customer effects, one row per customer and level (see ``EFFECT_COLUMNS``).

        ``customer_id`` labels the rows (default: the row's position in ``X``).
        """
        data = self._matrix(X)
        n = data.shape[0]
        ids = np.arange(n) if customer_id is None else np.asarray(customer_id)
        if len(ids) != n:
            raise RetainInputError(f"customer_id has {len(ids)} rows but X has {n}")
        base_p = self._mu("purchase", 0.0, data)
        order_value = self._order_value(data)
        base_r = self._mu("revenue", 0.0, data) if order_value is None else base_p * order_value
        parts = []
        for level in self.levels_:
            uplift_p = self._uplift("purchase", level, data)
            uplift_r = (
                self._uplift("revenue", level, data)
                if order_value is None
                else uplift_p * order_value
            )
            parts.append(
                pd.DataFrame(
                    {
                        "customer_id": ids,
                        "level": level,
                        "baseline_purchase": base_p,
                        "baseline_revenue": base_r,
                        "purchase_uplift": uplift_p,
                        "revenue_uplift": uplift_r,
                    }
                )
            )
        return pd.concat(parts, ignore_index=True)

    def predict(
        self, X: pd.DataFrame, outcome: Literal["purchase", "revenue"] = "purchase"
    ) -> np.ndarray:
        """Uplift of each level (columns, in ``levels_`` order) for each row of ``X``."""
        if outcome not in OUTCOMES:
            raise RetainInputError(f"outcome must be 'purchase' or 'revenue', not {outcome!r}")
        data = self._matrix(X)
        order_value = self._order_value(data)
        columns = []
        for level in self.levels_:
            if outcome == "revenue" and order_value is not None:
                columns.append(self._uplift("purchase", level, data) * order_value)
            else:
                columns.append(self._uplift(outcome, level, data))
        return np.column_stack(columns)

    def _order_value(self, data: np.ndarray) -> np.ndarray | None:
        """Expected full-price revenue of a purchase (per_order mode; floored at 0), else None."""
        model = self.models_.get("order_value")
        return None if model is None else np.maximum(predict_booster(model, data), 0.0)

    @abstractmethod
    def _uplift(self, outcome: str, level: float, data: np.ndarray) -> np.ndarray:
        """The learner's effect of ``level`` on ``outcome`` for each row of ``data``."""

    def _mu(self, outcome: str, level: float, data: np.ndarray) -> np.ndarray:
        return predict_booster(self.models_[_key("mu", outcome, level)], data)

    def _matrix(self, X: object) -> np.ndarray:
        """The training features of ``X``, in training order; other columns are ignored."""
        check_fitted(self, "models_")
        frame = training_features(X, self.feature_names_, "the uplift model")
        return frame.to_numpy(dtype=np.float64)

    # Boosters travel as their model strings (as in retain.models.lgbm).
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        if "models_" in state:
            state["models_"] = {k: m.model_to_string() for k, m in state["models_"].items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if "models_" in state:
            state["models_"] = {k: lgb.Booster(model_str=m) for k, m in state["models_"].items()}
        super().__setstate__(state)


class TLearner(_MetaLearner):
    """Two-model learner: one outcome model per arm, effect = treated model - control model.

    Per arm (control and each level) a LightGBM classifier of ``purchased`` and a regressor of
    ``revenue``. See the module docstring.
    """

    def _uplift(self, outcome: str, level: float, data: np.ndarray) -> np.ndarray:
        return self._mu(outcome, level, data) - self._mu(outcome, 0.0, data)


class XLearner(_MetaLearner):
    """X-learner (Künzel et al. 2019): imputed effects regressed per arm, mixed by the propensity.

    ``propensity="design"`` (a randomised campaign): the share of treated customers among those of
    the level and of the control group, the same for everyone. ``"model"``: a LightGBM classifier
    of the level against control, clipped to [0.02, 0.98]. See the module docstring.
    """

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 7,
        min_child_samples: int | None = 100,
        early_stopping_rounds: int | None = 30,
        params: Mapping[str, Any] | None = None,
        random_state: int = 0,
        n_jobs: int = 1,
        revenue: Literal["per_order", "direct"] = "per_order",
        early_stopping_fraction: float = 0.2,
        propensity: Literal["design", "model"] = "design",
    ) -> None:
        super().__init__(
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            min_child_samples=min_child_samples,
            early_stopping_rounds=early_stopping_rounds,
            params=params,
            random_state=random_state,
            n_jobs=n_jobs,
            revenue=revenue,
            early_stopping_fraction=early_stopping_fraction,
        )
        self.propensity = propensity

    propensity_: dict[float, float | None]

    def _fit_effects(
        self, data: np.ndarray, arm: np.ndarray, outcomes: dict[str, np.ndarray]
    ) -> None:
        if self.propensity not in ("design", "model"):
            raise RetainInputError(
                f"propensity must be 'design' or 'model', not {self.propensity!r}"
            )
        control = arm == 0
        self.propensity_ = {}
        for level in self.levels_:
            treated = arm == level
            for outcome, y in outcomes.items():
                imputed_t = y[treated] - self._mu(outcome, 0.0, data[treated])
                imputed_c = self._mu(outcome, level, data[control]) - y[control]
                self.models_[_key("tau1", outcome, level)] = self._booster(
                    data[treated], imputed_t, "regression"
                )
                self.models_[_key("tau0", outcome, level)] = self._booster(
                    data[control], imputed_c, "regression"
                )
            if self.propensity == "design":
                self.propensity_[level] = float(treated.sum() / (treated.sum() + control.sum()))
            else:
                both = treated | control
                self.models_[_key("g", "treated", level)] = self._booster(
                    data[both], treated[both].astype(np.float64), "binary"
                )
                self.propensity_[level] = None

    def _g(self, level: float, data: np.ndarray) -> np.ndarray:
        share = self.propensity_[level]
        if share is not None:
            return np.full(data.shape[0], share)
        g = predict_booster(self.models_[_key("g", "treated", level)], data)
        return np.clip(g, _PROPENSITY_CLIP, 1 - _PROPENSITY_CLIP)

    def _uplift(self, outcome: str, level: float, data: np.ndarray) -> np.ndarray:
        tau0 = predict_booster(self.models_[_key("tau0", outcome, level)], data)
        tau1 = predict_booster(self.models_[_key("tau1", outcome, level)], data)
        g = self._g(level, data)
        return g * tau0 + (1 - g) * tau1


def _key(stage: str, outcome: str, level: float) -> str:
    return f"{stage}:{outcome}:{level!r}"


def _check_arms(arm: np.ndarray) -> None:
    n = len(arm)
    bad = int(((arm < 0) | (arm >= 1)).sum())
    if bad:
        raise RetainInputError(
            f"treatment must be a discount level in [0, 1) (0 for the control group), "
            f"not in {bad} of {n} rows"
        )
    levels, counts = np.unique(arm, return_counts=True)
    if 0.0 not in levels:
        raise RetainInputError(
            f"treatment has no control rows (level 0) in {n} rows: uplift needs a held-out group"
        )
    if len(levels) < 2:
        raise RetainInputError(f"treatment has no treated rows (level > 0) in {n} rows")
    small = [
        f"{level:g} ({count} rows)"
        for level, count in zip(levels, counts, strict=True)
        if count < MIN_EXAMPLES
    ]
    if small:
        raise RetainInputError(
            f"treatment: every level needs at least {MIN_EXAMPLES} rows, but {', '.join(small)} "
            "have fewer"
        )
