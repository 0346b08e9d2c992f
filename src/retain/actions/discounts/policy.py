"""Who gets which discount: per-customer effects, their value and cost, and the budgeted choice.

:class:`DiscountPolicy` works in one of two modes:

- **uplift** (after :meth:`DiscountPolicy.fit` on a randomised campaign's history): the effects of
  each level are estimated per customer by a meta-learner on LightGBM (:mod:`.uplift`). ``fit``
  first trains it on part of the customers and measures how well it ranks the others (Qini
  coefficient and AUUC per level, for purchases, revenue and net value: ``validation_``), then
  trains it again on every customer for use.
- **rule** (not fitted): the response is assumed, from the settings: the extra purchase probability
  in the next 30 days is ``rate[level] x (1 - p_purchase_30d) x p_alive``, revenue per order the
  customer's average order value (``spend_total / orders_total``; else ``clv /
  expected_purchases``). See :meth:`DiscountSettings.describe`.

Either way each customer and level gets an expected incremental margin (``margin_rate`` x the
revenue the level adds), an expected cost (the level x the revenue of all the customer's orders
with it, including those they would have placed anyway) and their difference, the net value; then
:func:`.budget.allocate` picks at most one level per customer within the budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from retain.actions._checks import finite_numbers
from retain.actions.discounts.budget import allocate
from retain.actions.discounts.metrics import auuc, qini_coefficient
from retain.actions.discounts.settings import DiscountSettings
from retain.actions.discounts.uplift import EFFECT_COLUMNS, TLearner, XLearner
from retain.errors import RetainInputError

__all__ = ["HISTORY_COLUMNS", "RECOMMENDATION_COLUMNS", "DiscountPolicy", "value_effects"]

# Columns a campaign history must have besides the features.
HISTORY_COLUMNS: Final = ("customer_id", "treatment", "purchased", "revenue")
RECOMMENDATION_COLUMNS: Final = (
    "customer_id",
    "discount",
    "purchase_uplift",
    "expected_incremental_margin",
    "expected_cost",
    "net_value",
    "mode",
)
_RULE_COLUMNS: Final = ("p_purchase_30d", "p_alive")


def value_effects(effects: pd.DataFrame, margin_rate: float) -> pd.DataFrame:
    """Effects (``EFFECT_COLUMNS``) with their economics: ``incremental_margin``, ``cost``,
    ``value`` (the candidates of :func:`.budget.allocate`).

    Revenue with the offer (baseline + uplift) is floored at 0 before it is costed: a regression
    can predict a little below zero where nobody buys.
    """
    missing = [c for c in EFFECT_COLUMNS if c not in effects.columns]
    if missing:
        raise RetainInputError(f"effects: missing column(s) {', '.join(missing)}")
    frame = effects.copy()
    level = frame["level"].to_numpy(dtype=np.float64)
    uplift = frame["revenue_uplift"].to_numpy(dtype=np.float64)
    with_offer = np.maximum(frame["baseline_revenue"].to_numpy(dtype=np.float64) + uplift, 0.0)
    frame["incremental_margin"] = margin_rate * uplift
    frame["cost"] = level * with_offer
    frame["value"] = frame["incremental_margin"] - frame["cost"]
    return frame


class DiscountPolicy(BaseEstimator):
    """Budgeted discount targeting; rule mode until :meth:`fit` learns from a campaign.

    ``learner``: ``"x"`` (:class:`.XLearner`), ``"t"`` (:class:`.TLearner`) or an unfitted learner
    (cloned). ``features``: the history's columns to learn from (default: every numeric column but
    the ``HISTORY_COLUMNS``); scores passed to :meth:`recommend` must have them.
    ``validation_fraction``: share of the customers held out to validate the learner before it is
    trained again on all of them (0: no validation).
    """

    def __init__(
        self,
        settings: DiscountSettings | None = None,
        *,
        learner: Literal["t", "x"] | TLearner | XLearner = "x",
        features: Sequence[str] | None = None,
        validation_fraction: float = 0.3,
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.settings = settings
        self.learner = learner
        self.features = features
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_jobs = n_jobs

    learner_: TLearner | XLearner
    features_: list[str]
    validation_: pd.DataFrame

    @property
    def settings_(self) -> DiscountSettings:
        """The settings in force (the defaults when none were given)."""
        return self.settings if self.settings is not None else DiscountSettings()

    @property
    def mode(self) -> Literal["uplift", "rule"]:
        """``uplift`` once fitted on a campaign history, ``rule`` before."""
        return "uplift" if hasattr(self, "learner_") else "rule"

    # -- uplift mode ------------------------------------------------------------------------------

    def fit(self, history: pd.DataFrame) -> DiscountPolicy:
        """Learn each level's per-customer effects from a randomised campaign's history.

        ``history``: one row per customer (and campaign): ``customer_id``, ``treatment`` (the level
        they got, one of the settings' levels; 0 for the control group), ``purchased`` (0/1) and
        ``revenue`` (full price) in the campaign window, and the features (the customer's scores at
        the campaign's start). Sets ``learner_``, ``features_`` and ``validation_`` (held-out Qini
        and AUUC; empty when ``validation_fraction`` is 0).
        """
        settings = self.settings_
        frame = _check_history(history, settings)
        features = self._features(frame)
        if not 0 <= self.validation_fraction < 1:
            raise RetainInputError(
                f"validation_fraction must be in [0, 1), not {self.validation_fraction!r}"
            )
        validation = pd.DataFrame(
            columns=["level", "outcome", "qini_coefficient", "auuc", "n_treated", "n_control"]
        )
        if self.validation_fraction > 0:
            held_out = self._held_out(frame["customer_id"])
            learner = self._new_learner().fit(
                frame.loc[~held_out, features],
                frame.loc[~held_out, "treatment"],
                frame.loc[~held_out, "purchased"],
                frame.loc[~held_out, "revenue"],
            )
            validation = _validate(learner, frame.loc[held_out], features, settings.margin_rate)
        self.learner_ = self._new_learner().fit(
            frame[features], frame["treatment"], frame["purchased"], frame["revenue"]
        )
        self.features_ = features
        self.validation_ = validation
        return self

    def _features(self, frame: pd.DataFrame) -> list[str]:
        if self.features is None:
            features = [
                str(c)
                for c in frame.columns
                if c not in HISTORY_COLUMNS
                and (
                    pd.api.types.is_numeric_dtype(frame[c].dtype)
                    or pd.api.types.is_bool_dtype(frame[c].dtype)
                )
            ]
            if not features:
                raise RetainInputError(
                    f"history has no numeric feature columns besides {', '.join(HISTORY_COLUMNS)}"
                )
            return features
        features = [str(c) for c in self.features]
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise RetainInputError(f"history: missing feature column(s) {', '.join(missing)}")
        return features

    def _held_out(self, customer_id: pd.Series) -> np.ndarray:
        """A seeded random ``validation_fraction`` of the customers (all their rows)."""
        customers = customer_id.drop_duplicates().to_numpy()
        rng = np.random.default_rng(self.random_state)
        n_out = max(1, round(self.validation_fraction * len(customers)))
        chosen = rng.choice(len(customers), size=n_out, replace=False)
        return customer_id.isin(customers[chosen]).to_numpy()

    def _new_learner(self) -> TLearner | XLearner:
        if isinstance(self.learner, TLearner | XLearner):
            learner: TLearner | XLearner = clone(self.learner)
            return learner
        if self.learner == "t":
            return TLearner(random_state=self.random_state, n_jobs=self.n_jobs)
        if self.learner == "x":
            return XLearner(random_state=self.random_state, n_jobs=self.n_jobs)
        raise RetainInputError(
            f"learner must be 't', 'x' or a TLearner / XLearner, not {self.learner!r}"
        )

    # -- recommending -----------------------------------------------------------------------------

    def effects(self, scores: pd.DataFrame) -> pd.DataFrame:
        """Each customer's expected effect of each level (``EFFECT_COLUMNS``), by the mode."""
        ids = _check_ids(scores, "scores")
        if self.mode == "uplift":
            return self.learner_.effects(scores, customer_id=ids.to_numpy())
        return _rule_effects(scores, ids, self.settings_)

    def recommend(self, scores: pd.DataFrame, budget: float | None = None) -> pd.DataFrame:
        """The discount of every customer of ``scores`` (0 for none), within ``budget``.

        ``budget``: cap on the total expected discount cost; default the settings' budget (None
        there: no cap). One row per customer, in the order of ``scores``:
        ``RECOMMENDATION_COLUMNS``. ``attrs`` keep the budget, the allocation's upper bound on the
        net value and the levels on offer, for :meth:`summary`.
        """
        settings = self.settings_
        limit = settings.budget if budget is None else budget
        ids = _check_ids(scores, "scores")
        candidates = value_effects(self.effects(scores), settings.margin_rate)
        allowed = candidates["level"].isin(settings.offered_levels)
        candidates = candidates.loc[allowed].reset_index(drop=True)
        allocation = allocate(candidates, limit, min_value=settings.min_net_value)
        # Every customer of the scores, in their order (a customer without candidates gets none).
        where = pd.Index(allocation.choice["customer_id"]).get_indexer(ids)
        chosen_rows = np.r_[allocation.choice["candidate"].to_numpy(dtype=np.int64), -1]
        row = chosen_rows[where]  # -1 (not found) picks the appended -1
        has = row >= 0
        picked = candidates.iloc[np.where(has, row, 0)] if len(candidates) else candidates

        def chosen(column: str) -> np.ndarray:
            if not len(candidates):
                return np.zeros(len(ids))
            return np.where(has, picked[column].to_numpy(dtype=np.float64), 0.0)

        result = pd.DataFrame(
            {
                "customer_id": ids.to_numpy(),
                "discount": chosen("level"),
                "purchase_uplift": chosen("purchase_uplift"),
                "expected_incremental_margin": chosen("incremental_margin"),
                "expected_cost": chosen("cost"),
                "net_value": chosen("value"),
                "mode": self.mode,
            }
        )
        result.attrs = {
            "budget": None if limit is None or not np.isfinite(limit) else float(limit),
            "upper_bound": allocation.upper_bound,
            "levels": list(settings.levels),
            "mode": self.mode,
        }
        return result

    def describe(self) -> list[str]:
        """The settings' assumptions, then the mode and, in uplift mode, how well the learner
        ranked held-out customers: lines for the report."""
        lines = self.settings_.describe()
        if self.mode == "rule":
            return [
                *lines,
                "Mode: rule (no campaign history): the assumed response rates above decide.",
            ]
        learner = self.learner_
        n_rows = sum(learner.n_rows_.values())
        lines.append(
            f"Mode: uplift: {type(learner).__name__} on LightGBM, learned from a campaign of "
            f"{n_rows:,} customers ({learner.n_rows_.get(0.0, 0):,} in the control group)."
        )
        if not self.validation_.empty:
            table = self.validation_
            for level in sorted(table["level"].astype("float64").unique()):
                rows = table.loc[table["level"] == level]
                scores = ", ".join(
                    f"{outcome} {qini:.3f}"
                    for outcome, qini in zip(rows["outcome"], rows["qini_coefficient"], strict=True)
                )
                lines.append(
                    f"Held-out Qini coefficient at {level:.0%} "
                    f"({int(rows['n_treated'].iloc[0]):,} treated, "
                    f"{int(rows['n_control'].iloc[0]):,} control): {scores} "
                    "(0: no better than random, 1: perfect)."
                )
        return lines

    def summary(self, recommendation: pd.DataFrame) -> dict[str, Any]:
        """Customers per level and the campaign's expected margin, cost and net value."""
        missing = [c for c in RECOMMENDATION_COLUMNS if c not in recommendation.columns]
        if missing:
            raise RetainInputError(f"recommendation: missing column(s) {', '.join(missing)}")
        levels = recommendation.attrs.get("levels", self.settings_.levels)
        counts = recommendation["discount"].value_counts()
        per_level = {float(level): int(counts.get(level, 0)) for level in levels}
        observed = zip(counts.index.to_numpy(dtype=np.float64), counts.to_numpy(), strict=True)
        per_level |= {float(level): int(n) for level, n in observed if level not in per_level}
        modes = recommendation["mode"].unique().tolist()
        return {
            "mode": recommendation.attrs.get("mode", modes[0] if len(modes) == 1 else self.mode),
            "customers": len(recommendation),
            "offers": int((recommendation["discount"] > 0).sum()),
            "customers_per_level": dict(sorted(per_level.items())),
            "expected_incremental_margin": float(
                recommendation["expected_incremental_margin"].sum()
            ),
            "expected_cost": float(recommendation["expected_cost"].sum()),
            "expected_net_value": float(recommendation["net_value"].sum()),
            "budget": recommendation.attrs.get("budget", self.settings_.budget),
            "upper_bound": recommendation.attrs.get("upper_bound"),
        }


# -- the rule mode --------------------------------------------------------------------------------


def _rule_effects(scores: pd.DataFrame, ids: pd.Series, settings: DiscountSettings) -> pd.DataFrame:
    """Assumed effects from the scores and the settings' response rates (module docstring)."""
    missing = [c for c in _RULE_COLUMNS if c not in scores.columns]
    if missing:
        raise RetainInputError(
            f"scores: missing column(s) {', '.join(missing)} (the rule mode needs them)"
        )
    p30 = _probability(scores, "p_purchase_30d")
    alive = _probability(scores, "p_alive")
    order_value = _order_value(scores)
    parts = [pd.DataFrame({column: [] for column in EFFECT_COLUMNS})]
    for level in settings.offered_levels:
        uplift = settings.response_rates[level] * (1 - p30) * alive
        parts.append(
            pd.DataFrame(
                {
                    "customer_id": ids.to_numpy(),
                    "level": level,
                    "baseline_purchase": p30,
                    "baseline_revenue": p30 * order_value,
                    "purchase_uplift": uplift,
                    "revenue_uplift": uplift * order_value,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _order_value(scores: pd.DataFrame) -> np.ndarray:
    """Average order value: spend_total / orders_total; else clv / expected_purchases; else 0."""
    n = len(scores)
    value = np.full(n, np.nan)
    sources = [("spend_total", "orders_total"), ("clv", "expected_purchases")]
    if not any(a in scores.columns and b in scores.columns for a, b in sources):
        raise RetainInputError(
            "scores: the rule mode needs an order value: columns spend_total and orders_total, "
            "or clv and expected_purchases"
        )
    for amount, count in sources:
        if amount in scores.columns and count in scores.columns:
            top = finite_numbers(scores, amount)
            bottom = finite_numbers(scores, count)
            usable = np.isnan(value) & (bottom > 0)
            value[usable] = top[usable] / bottom[usable]
    value = np.nan_to_num(value, nan=0.0)
    negative = int((value < 0).sum())
    if negative:
        raise RetainInputError(f"scores: the order value is negative in {negative} of {n} rows")
    return value


def _probability(scores: pd.DataFrame, column: str) -> np.ndarray:
    array = finite_numbers(scores, column)
    bad = int(((array < 0) | (array > 1)).sum())
    if bad:
        raise RetainInputError(f"scores: {column} is outside [0, 1] in {bad} of {len(array)} rows")
    return array


# -- checks ---------------------------------------------------------------------------------------


def _check_ids(table: pd.DataFrame, name: str) -> pd.Series:
    if not isinstance(table, pd.DataFrame):
        raise RetainInputError(f"{name} must be a pandas DataFrame, not {type(table).__name__}")
    if "customer_id" not in table.columns:
        raise RetainInputError(f"{name}: missing column customer_id")
    ids = table["customer_id"].reset_index(drop=True)
    missing = int(ids.isna().sum())
    if missing:
        raise RetainInputError(f"{name}: customer_id is missing in {missing} of {len(ids)} rows")
    repeated = int(ids.duplicated().sum())
    if repeated:
        raise RetainInputError(
            f"{name}: customer_id is repeated in {repeated} of {len(ids)} rows "
            "(one row per customer)"
        )
    return ids


def _check_history(history: pd.DataFrame, settings: DiscountSettings) -> pd.DataFrame:
    if not isinstance(history, pd.DataFrame):
        raise RetainInputError(f"history must be a pandas DataFrame, not {type(history).__name__}")
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise RetainInputError(f"history: missing column(s) {', '.join(missing)}")
    frame = history.reset_index(drop=True)
    n = len(frame)
    if int(frame["customer_id"].isna().sum()):
        raise RetainInputError(
            f"history: customer_id is missing in {int(frame['customer_id'].isna().sum())} "
            f"of {n} rows"
        )
    for column in ("treatment", "purchased", "revenue"):
        values = frame[column]
        if not (
            pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)
        ):
            raise RetainInputError(f"history: {column} must be numeric, not {values.dtype}")
        array = values.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = int((~np.isfinite(array)).sum())
        if bad:
            raise RetainInputError(f"history: {column} is missing or infinite in {bad} of {n} rows")
    treatment = frame["treatment"].to_numpy(dtype=np.float64)
    unknown = ~np.isin(treatment, settings.levels)
    if unknown.any():
        raise RetainInputError(
            f"history: treatment is not one of the settings' levels {settings.levels} in "
            f"{int(unknown.sum())} of {n} rows (e.g. {treatment[unknown][0]:g})"
        )
    absent = [level for level in settings.levels if level not in set(treatment.tolist())]
    if absent:
        raise RetainInputError(
            f"history: no rows with treatment {', '.join(f'{a:g}' for a in absent)}: the uplift "
            "mode cannot estimate what it has never seen (drop the level from the settings, or "
            "use the rule mode)"
        )
    purchased = frame["purchased"].to_numpy(dtype=np.float64)
    not_binary = int((~np.isin(purchased, (0.0, 1.0))).sum())
    if not_binary:
        raise RetainInputError(
            f"history: purchased must be 0 or 1, not in {not_binary} of {n} rows"
        )
    revenue = frame["revenue"].to_numpy(dtype=np.float64)
    negative = int((revenue < 0).sum())
    if negative:
        raise RetainInputError(f"history: revenue is negative in {negative} of {n} rows")
    unbought = int(((revenue > 0) & (purchased == 0)).sum())
    if unbought:
        raise RetainInputError(
            f"history: revenue without a purchase (purchased = 0) in {unbought} of {n} rows"
        )
    return frame


def _validate(
    learner: TLearner | XLearner, held_out: pd.DataFrame, features: list[str], margin_rate: float
) -> pd.DataFrame:
    """Qini coefficient and AUUC of each level's ranking on the held-out customers, for purchases,
    revenue and net value (margin x revenue, less the discount on the treated customers' revenue)."""
    effects = value_effects(learner.effects(held_out[features]), margin_rate)
    treatment = held_out["treatment"].to_numpy(dtype=np.float64)
    purchased = held_out["purchased"].to_numpy(dtype=np.float64)
    revenue = held_out["revenue"].to_numpy(dtype=np.float64)
    net = margin_rate * revenue - treatment * revenue
    rows = []
    for level in learner.levels_:
        predicted = effects.loc[effects["level"] == level]
        arms = np.isin(treatment, (0.0, level))
        treated = (treatment[arms] == level).astype(np.float64)
        if not 0 < treated.sum() < arms.sum():
            continue
        for outcome, y, score in (
            ("purchase", purchased, predicted["purchase_uplift"]),
            ("revenue", revenue, predicted["revenue_uplift"]),
            ("net value", net, predicted["value"]),
        ):
            s = score.to_numpy(dtype=np.float64)[arms]
            rows.append(
                {
                    "level": level,
                    "outcome": outcome,
                    "qini_coefficient": qini_coefficient(y[arms], treated, s),
                    "auuc": auuc(y[arms], treated, s),
                    "n_treated": int(treated.sum()),
                    "n_control": int(arms.sum() - treated.sum()),
                }
            )
    return pd.DataFrame(rows)
