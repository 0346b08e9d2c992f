"""Synthetic discount campaigns whose per-customer effects are known, to test targeting against.

A population of customers is drawn with a hidden state: the probability that they are still active
(``p_alive``), their purchase rate while active and their average order value. What a scoring run
would write about them (the columns of ``scores.parquet``) is derived from that state with noise, so
a model sees them as through real, imperfect scores. Each customer's true response to a discount
level is a known function of the hidden state:

- **lapsing mid-risk customers respond**: the extra purchase probability is largest around a 20%
  chance of buying in the window anyway, and it shrinks with the headroom (``1 - p0``) and with
  ``p_alive``, so **sure buyers** (nothing to add) and **lost customers** (nobody to persuade) do
  not respond;
- price sensitivity differs: customers with small baskets respond in proportion to the level,
  those with large baskets mostly to the fact of an offer (5% does nearly what 20% does);
- **sleeping dogs**: long-standing customers (tenure over 800 days) buy *less* when offered a
  discount (the offer reminds them to look elsewhere).

A campaign randomises every customer to a level (0: the control group) in equal shares, and draws
what they did from the true probabilities: ``purchased`` and ``revenue`` (full price: the average
order value with noise). The true effects are returned beside it, in the learners' format
(:data:`.uplift.EFFECT_COLUMNS`), so a policy can be scored on what it would really earn.

``python -m retain.actions.discounts.simulation`` runs :func:`benchmark` and prints its figures.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from scipy import special

from retain.actions.discounts.budget import allocate
from retain.actions.discounts.policy import DiscountPolicy, value_effects
from retain.actions.discounts.settings import DiscountSettings
from retain.errors import RetainInputError

__all__ = [
    "SimulatedCampaign",
    "benchmark",
    "churn_risk_baseline",
    "simulate_campaign",
    "true_value",
]

LEVELS: Final = (0.05, 0.10, 0.20)
SLEEPING_DOG_TENURE: Final = 800.0
# The response's shape (see the module docstring).
_PEAK_P0: Final = 0.2
_WIDTH: Final = 1.4  # in log-odds of the baseline purchase probability
_STRENGTH: Final = 0.55
_DOG_STRENGTH: Final = 0.25


@dataclass(frozen=True)
class SimulatedCampaign:
    """``history``: a randomised campaign (scores columns, ``treatment``, ``purchased``,
    ``revenue``); ``scores``: the same customers' scores alone; ``effects``: their true effects,
    one row per customer and level (``EFFECT_COLUMNS``)."""

    history: pd.DataFrame
    scores: pd.DataFrame
    effects: pd.DataFrame


def simulate_campaign(
    n_customers: int = 10_000,
    levels: Sequence[float] = LEVELS,
    random_state: int = 0,
) -> SimulatedCampaign:
    """A randomised campaign over ``n_customers`` synthetic customers (see the module docstring)."""
    if n_customers < 1:
        raise RetainInputError(f"n_customers must be at least 1, not {n_customers}")
    levels = sorted(float(level) for level in levels)
    if not levels or not all(0 < level < 1 for level in levels):
        raise RetainInputError(f"levels must be fractions in (0, 1), not {levels}")
    rng = np.random.default_rng(random_state)
    state = _hidden_state(n_customers, rng)
    scores = _scores(state, rng)
    ids = scores["customer_id"].to_numpy()

    effects = pd.concat(
        [
            pd.DataFrame(
                {
                    "customer_id": ids,
                    "level": level,
                    "baseline_purchase": state["p0"],
                    "baseline_revenue": state["p0"] * state["aov"],
                    "purchase_uplift": _true_uplift(state, level),
                    "revenue_uplift": _true_uplift(state, level) * state["aov"],
                }
            )
            for level in levels
        ],
        ignore_index=True,
    )

    arms = np.array([0.0, *levels])
    treatment = arms[rng.integers(len(arms), size=n_customers)]
    p = state["p0"].copy()
    for level in levels:
        treated = treatment == level
        p[treated] += _true_uplift(state, level)[treated]
    purchased = rng.random(n_customers) < p
    basket = state["aov"] * rng.lognormal(-0.5 * 0.3**2, 0.3, n_customers)
    history = scores.assign(
        treatment=treatment,
        purchased=purchased.astype(np.int64),
        revenue=np.where(purchased, basket, 0.0),
    )
    return SimulatedCampaign(history=history, scores=scores, effects=effects)


def _hidden_state(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    lost = rng.random(n) < 0.2
    p_alive = np.where(lost, rng.beta(1.0, 12.0, n), rng.beta(6.0, 1.5, n))
    rate = np.minimum(rng.lognormal(np.log(0.3), 0.9, n), 5.0)  # purchases per 30 days, if alive
    p0 = p_alive * (1 - np.exp(-rate))  # P(purchase in the 30-day window) without an offer
    aov = rng.lognormal(np.log(50.0), 0.5, n)
    tenure = rng.uniform(60.0, 1000.0, n)
    return {"p_alive": p_alive, "rate": rate, "p0": p0, "aov": aov, "tenure": tenure}


def _true_uplift(state: dict[str, np.ndarray], level: float) -> np.ndarray:
    """The true extra purchase probability of ``level`` for every customer."""
    p0, p_alive = state["p0"], state["p_alive"]
    logit = special.logit(np.clip(p0, 1e-6, 1 - 1e-6))
    closeness = np.exp(-(((logit - special.logit(_PEAK_P0)) / _WIDTH) ** 2))
    sensitive = special.expit(2.0 * (np.log(50.0) - np.log(state["aov"])))
    proportional = level / max(LEVELS)
    saturating = (1 - np.exp(-level / 0.04)) / (1 - np.exp(-max(LEVELS) / 0.04))
    response = sensitive * proportional + (1 - sensitive) * saturating
    uplift = _STRENGTH * p_alive * (1 - p0) * closeness * response
    dogs = state["tenure"] > SLEEPING_DOG_TENURE
    uplift[dogs] = -_DOG_STRENGTH * p0[dogs] * response[dogs]
    return np.clip(uplift, -p0, 1 - p0)


def _scores(state: dict[str, np.ndarray], rng: np.random.Generator) -> pd.DataFrame:
    """What a scoring run would write about the customers: the hidden state, seen with noise."""
    n = len(state["p0"])

    def noisy(p: np.ndarray, scale: float = 0.4) -> np.ndarray:
        logit = special.logit(np.clip(p, 1e-4, 1 - 1e-4))
        return np.asarray(special.expit(logit + rng.normal(0, scale, n)))

    tenure = np.round(state["tenure"])
    is_alive = rng.random(n) < state["p_alive"]
    orders = 1 + rng.poisson(state["rate"] * tenure / 30 * np.where(is_alive, 0.7, 0.3))
    since = np.where(
        is_alive,
        np.minimum(rng.exponential(30 / state["rate"]), tenure),
        rng.uniform(0.4, 1.0, n) * tenure,
    )
    spend = orders * state["aov"] * rng.lognormal(-0.02, 0.2, n)
    p_alive = noisy(state["p_alive"])
    rate = state["rate"] * rng.lognormal(0, 0.3, n)
    expected = p_alive * 3 * rate  # in a 90-day horizon
    segment = np.select(
        [p_alive < 0.2, noisy(state["p0"]) > 0.6, tenure < 120],
        ["Lost", "Champions", "New"],
        default="Need attention",
    )
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:06d}" for i in range(n)],
            "churn_probability": 1 - p_alive * (1 - np.exp(-3 * rate)),
            "p_alive": p_alive,
            "expected_purchases": expected,
            "p_purchase_30d": noisy(state["p0"]),
            "days_to_next_purchase": 30 / rate,
            "clv": expected * spend / orders,
            "segment": segment,
            "frequency": (orders - 1).astype(np.float64),
            "T": tenure,
            "days_since_last_purchase": np.round(since),
            "orders_total": orders.astype(np.float64),
            "spend_total": spend,
        }
    )


# -- scoring a policy against the truth -----------------------------------------------------------


def true_value(
    choice: pd.DataFrame, effects: pd.DataFrame, margin_rate: float, level_column: str = "discount"
) -> dict[str, float]:
    """What the discounts of ``choice`` (customer_id, ``level_column``) really earn and cost.

    ``incremental_margin`` (true), ``cost`` (true expected discount cost), ``net_value`` (their
    difference) and ``offers``. Customers with level 0 or absent from ``choice`` get nothing.
    """
    truth = value_effects(effects, margin_rate)
    given = choice.loc[choice[level_column] > 0, ["customer_id", level_column]]
    merged = given.merge(
        truth,
        left_on=["customer_id", level_column],
        right_on=["customer_id", "level"],
        how="left",
        validate="one_to_one",
    )
    unknown = int(merged["value"].isna().sum())
    if unknown:
        raise RetainInputError(
            f"choice: {unknown} of {len(given)} offers have no true effect (customer or level)"
        )
    return {
        "incremental_margin": float(merged["incremental_margin"].sum()),
        "cost": float(merged["cost"].sum()),
        "net_value": float(merged["value"].sum()),
        "offers": float(len(merged)),
    }


def churn_risk_baseline(
    scores: pd.DataFrame, effects: pd.DataFrame, budget: float, level: float, margin_rate: float
) -> pd.DataFrame:
    """ "Discount the highest churn risk": ``level`` to customers by ``churn_probability``, highest
    first, while the total true cost stays within ``budget`` (a generous accounting: the baseline
    spends exactly its budget). Returns customer_id, discount."""
    truth = value_effects(effects.loc[effects["level"] == level], margin_rate)
    cost = truth.set_index("customer_id")["cost"]
    ranked = scores.sort_values("churn_probability", ascending=False, kind="stable")
    spent = cost.reindex(ranked["customer_id"]).to_numpy().cumsum()
    chosen = ranked["customer_id"].to_numpy()[spent <= budget]
    return pd.DataFrame(
        {
            "customer_id": scores["customer_id"],
            "discount": np.where(scores["customer_id"].isin(chosen), level, 0.0),
        }
    )


def benchmark(
    n_history: int = 20_000,
    n_target: int = 10_000,
    budget_share: float = 0.25,
    learner: Literal["t", "x"] = "x",
    random_state: int = 0,
    settings: DiscountSettings | None = None,
) -> dict[str, Any]:
    """Learn from a simulated campaign, target a fresh population, score the result on the truth.

    The budget is ``budget_share`` of what the oracle (true effects, no budget) would spend. The
    oracle, the learned policy and "discount the highest churn risk" (each level; the best is kept)
    are scored on the target population's true effects. Returns the figures (and the policy's
    recommendation for the target population, ``simulate_campaign(n_target, levels,
    random_state + 1)``, and the oracle's choice for it).
    """
    settings = settings or DiscountSettings()
    margin = settings.margin_rate
    started = time.perf_counter()
    campaign = simulate_campaign(n_history, settings.offered_levels, random_state)
    target = simulate_campaign(n_target, settings.offered_levels, random_state + 1)
    truth = value_effects(target.effects, margin)
    unlimited = allocate(truth, None, min_value=settings.min_net_value)
    budget = budget_share * unlimited.total_cost
    oracle = allocate(truth, budget, min_value=settings.min_net_value)
    oracle_choice = oracle.choice.rename(columns={"level": "discount"})
    oracle_value = true_value(oracle_choice, target.effects, margin)

    policy = DiscountPolicy(settings, learner=learner, random_state=random_state)
    policy.fit(campaign.history)
    recommendation = policy.recommend(target.scores, budget)
    policy_value = true_value(recommendation, target.effects, margin)
    baselines = {
        level: true_value(
            churn_risk_baseline(target.scores, target.effects, budget, level, margin),
            target.effects,
            margin,
        )
        for level in settings.offered_levels
    }
    # The policy plans with estimated costs; if it really spends more than the budget, compare it
    # with the oracle allowed the same spending (a stricter yardstick than the budget's oracle).
    spent = max(budget, policy_value["cost"])
    oracle_at_spend = true_value(
        allocate(truth, spent, min_value=settings.min_net_value).choice.rename(
            columns={"level": "discount"}
        ),
        target.effects,
        margin,
    )
    best_level = max(baselines, key=lambda level: baselines[level]["net_value"])
    validation = policy.validation_
    purchase_qini = validation.loc[validation["outcome"] == "purchase", "qini_coefficient"]
    net_qini = validation.loc[validation["outcome"] == "net value", "qini_coefficient"]
    return {
        "learner": learner,
        "budget": budget,
        "oracle": oracle_value,
        "policy": policy_value,
        "policy_expected": policy.summary(recommendation),
        "recommendation": recommendation,
        "oracle_choice": oracle_choice[["customer_id", "discount"]],
        "baselines": baselines,
        "best_baseline_level": best_level,
        "oracle_at_spend": oracle_at_spend,
        "oracle_per_level": {
            level: int((oracle.choice["level"] == level).sum()) for level in settings.offered_levels
        },
        "capture_share": policy_value["net_value"] / oracle_value["net_value"],
        "capture_share_at_spend": policy_value["net_value"] / oracle_at_spend["net_value"],
        "baseline_share": baselines[best_level]["net_value"] / oracle_value["net_value"],
        "validation": validation,
        "purchase_qini": float(purchase_qini.mean()),
        "net_value_qini": float(net_qini.mean()),
        "seconds": time.perf_counter() - started,
    }


def format_benchmark(figures: dict[str, Any]) -> list[str]:
    """The figures of :func:`benchmark` as lines of text."""
    oracle, policy = figures["oracle"], figures["policy"]
    best = figures["baselines"][figures["best_baseline_level"]]
    lines = [
        f"learner: {figures['learner']}, budget {figures['budget']:,.0f} "
        f"(true net value, incremental margin, cost, offers)",
        f"  oracle (true effects):  {oracle['net_value']:>9,.0f} {oracle['incremental_margin']:>9,.0f}"
        f" {oracle['cost']:>9,.0f} {oracle['offers']:>7,.0f}",
        f"  policy (uplift mode):   {policy['net_value']:>9,.0f} {policy['incremental_margin']:>9,.0f}"
        f" {policy['cost']:>9,.0f} {policy['offers']:>7,.0f}"
        f"   -> {figures['capture_share']:.1%} of the oracle",
        f"  oracle allowed the policy's true spending {policy['cost']:,.0f}: "
        f"{figures['oracle_at_spend']['net_value']:,.0f} -> policy captures "
        f"{figures['capture_share_at_spend']:.1%}",
        "  offers per level: policy "
        + ", ".join(
            f"{level:.0%}: {n}"
            for level, n in figures["policy_expected"]["customers_per_level"].items()
            if level > 0
        )
        + "; oracle "
        + ", ".join(f"{level:.0%}: {n}" for level, n in figures["oracle_per_level"].items()),
    ]
    for level, value in figures["baselines"].items():
        lines.append(
            f"  highest churn risk {level:>4.0%}: {value['net_value']:>9,.0f} "
            f"{value['incremental_margin']:>9,.0f} {value['cost']:>9,.0f} {value['offers']:>7,.0f}"
        )
    lines += [
        f"  best churn-risk baseline: {best['net_value'] / oracle['net_value']:.1%} of the oracle",
        f"  held-out Qini coefficient (mean over levels): purchases {figures['purchase_qini']:.3f}, "
        f"net value {figures['net_value_qini']:.3f}",
        "  held-out validation:",
        *(
            "    " + line
            for line in figures["validation"].round(3).to_string(index=False).splitlines()
        ),
        f"  {figures['seconds']:.1f} s",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Print :func:`benchmark`'s figures for the learners asked for."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--learner", choices=["t", "x"], nargs="+", default=["t", "x"])
    parser.add_argument("--history", type=int, default=20_000)
    parser.add_argument("--target", type=int, default=10_000)
    parser.add_argument("--budget-share", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for learner in args.learner:
        figures = benchmark(args.history, args.target, args.budget_share, learner, args.seed)
        print("\n".join(format_benchmark(figures)))


if __name__ == "__main__":
    main()
