"""Which model makes each output: LightGBM, BTYD, the naive rule, or a blend of them.

retain's LightGBM models learn corrections to BG/NBD + Gamma-Gamma. On data where the classic
models are right (a BG/NBD-like process, no covariates) the corrections are noise; where behaviour
the classic models cannot see drives the outcome, they are the point. Which case a store is in is
an empirical question, so it is answered per output on an internal temporal validation: the
labelled cutoff nearest ``as_of`` inside the training history, scored by models fitted without it
(:meth:`~retain.models.retention.RetentionModel.fit`). The judged horizon after ``as_of`` is never
read.

Each output is a convex combination of its candidates, with weights on a grid of tenths; the
weights with the best validation metric win, and a single candidate (a vertex of the grid) wins
ties, BTYD first, so a blend is used only when it does better than every one of its parts. The metric is the
one the output is used for: a ranking metric, since the level of the counts and values is set
afterwards (``RetentionModel._fit_levels``):

==========================  =======================  ==================================
output                      candidates               validation metric
==========================  =======================  ==================================
``churn_probability``       lgbm, btyd (log-odds)    ROC-AUC of churned
``p_purchase_30d``          lgbm, btyd (log-odds)    ROC-AUC of a purchase within 30 days
``days_to_next_purchase``   lgbm, btyd (hazards)     timing C-index (censored at horizon)
``expected_purchases``      lgbm, btyd, naive        Spearman among buyers
``clv``                     lgbm, btyd, naive        normalised Gini of the spend
==========================  =======================  ==================================

The naive rule (the trailing window's rate carried forward) gives counts and values but no
probability, so it is a candidate of the last two only. Probabilities blend on the log-odds scale
(a blend of two calibrated models stays a probability with the same base rate to first order);
timing blends the per-bin hazards on that scale, so the blended survival curve is a curve.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd
from scipy import special
from sklearn.metrics import roc_auc_score

from retain.models.timing import cdf_from_hazards, days_from_hazards

__all__ = [
    "CANDIDATES",
    "OUTPUTS",
    "OutputChoice",
    "blend_log_odds",
    "blend_values",
    "choose",
    "choose_outputs",
    "single",
    "timing_score",
    "validation_metrics",
]

OUTPUTS: Final = (
    "churn_probability",
    "p_purchase_30d",
    "days_to_next_purchase",
    "expected_purchases",
    "clv",
)
CANDIDATES: Final = {
    "churn_probability": ("lgbm", "btyd"),
    "p_purchase_30d": ("lgbm", "btyd"),
    "days_to_next_purchase": ("lgbm", "btyd"),
    "expected_purchases": ("lgbm", "btyd", "naive"),
    "clv": ("lgbm", "btyd", "naive"),
}
METRICS: Final = {
    "churn_probability": "roc_auc",
    "p_purchase_30d": "repurchase_30d_auc",
    "days_to_next_purchase": "timing_cindex",
    "expected_purchases": "purchases_buyers_spearman",
    "clv": "clv_normalized_gini",
}
Combine = Callable[[Mapping[str, np.ndarray], Mapping[str, float]], np.ndarray]
# A validation metric of a prediction for the validation rows ``rows`` (None: all of them, in
# order); the prediction is already restricted to those rows.
Metric = Callable[[np.ndarray, "np.ndarray | None"], float]
BOOTSTRAP_RESAMPLES: Final = 50
_EPS: Final = 1e-12
_STEPS: Final = 10  # weights in tenths


@dataclass(frozen=True)
class OutputChoice:
    """The weights of one output's candidates, and what the validation measured.

    ``scores`` holds the validation metric of each candidate alone, of the best blend
    (``blend``) and of the weights chosen (``chosen``); ``reason`` is set when no validation
    could be run and the choice is a default.
    """

    output: str
    weights: dict[str, float]
    metric: str
    scores: dict[str, float] = field(default_factory=dict)
    reason: str | None = None

    @property
    def name(self) -> str:
        """``lgbm``, ``btyd`` or ``naive`` when one candidate carries all the weight, else ``blend``."""
        used = [c for c, w in self.weights.items() if w > 0]
        return used[0] if len(used) == 1 else "blend"

    def describe(self) -> str:
        if self.name != "blend":
            return self.name
        return "blend " + " + ".join(f"{w:.1f} {c}" for c, w in self.weights.items() if w > 0)


def single(output: str, candidate: str, reason: str) -> OutputChoice:
    """All the weight on one candidate, without validation (``reason`` says why)."""
    weights = {c: float(c == candidate) for c in CANDIDATES[output]}
    return OutputChoice(output, weights, METRICS[output], reason=reason)


def blend_log_odds(
    candidates: Mapping[str, np.ndarray], weights: Mapping[str, float]
) -> np.ndarray:
    """Probabilities (or hazards, any shape) combined on the log-odds scale."""
    used = [(c, w) for c, w in weights.items() if w > 0]
    if len(used) == 1:
        return np.asarray(candidates[used[0][0]], dtype=np.float64)
    logit = sum(w * special.logit(np.clip(candidates[c], _EPS, 1 - _EPS)) for c, w in used)
    return np.asarray(special.expit(logit), dtype=np.float64)


def blend_values(candidates: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Counts or values combined as they are (a convex combination of expectations)."""
    used = [(c, w) for c, w in weights.items() if w > 0]
    return np.asarray(sum(w * np.asarray(candidates[c], dtype=np.float64) for c, w in used))


def _grid(names: tuple[str, ...]) -> list[dict[str, float]]:
    """Every weighting in tenths, vertices (one candidate alone) first, BTYD's first of all."""
    points = [
        dict(zip(names, (k / _STEPS for k in combo), strict=True))
        for combo in itertools.product(range(_STEPS + 1), repeat=len(names))
        if sum(combo) == _STEPS
    ]
    # On a tie the classic model stays: it learns nothing from labels, so it cannot overfit them.
    preference = {"btyd": 0, "lgbm": 1, "naive": 2}
    return sorted(
        points,
        key=lambda p: (sum(w > 0 for w in p.values()), preference[max(p, key=p.__getitem__)]),
    )


def choose(
    output: str,
    candidates: Mapping[str, np.ndarray],
    combine: Combine,
    metric: Metric,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    random_state: int = 0,
) -> OutputChoice:
    """The weights of ``candidates`` whose combination scores best on ``metric`` (higher wins;
    NaN never wins). A weighting must beat the best found so far by more than 1e-9 to replace
    it, and single candidates are tried first: a blend wins only by doing better than its parts.

    BTYD is left only on evidence: the winner's gain over BTYD must exceed its standard error,
    estimated by a paired bootstrap over the validation customers (``resamples`` draws; 0 turns
    the check off). On a small validation (a few hundred customers) a gain of a few hundredths
    of AUC is noise, and picking it would make retain worse than the classic model it set out
    to beat."""
    names = tuple(c for c in CANDIDATES[output] if c in candidates)
    best: tuple[float, dict[str, float]] | None = None
    scores: dict[str, float] = {}
    best_blend = -np.inf
    for weights in _grid(names):
        value = float(metric(combine(candidates, weights), None))
        used = [c for c, w in weights.items() if w > 0]
        if len(used) == 1:
            scores[used[0]] = value
        elif np.isfinite(value):
            best_blend = max(best_blend, value)
        if np.isfinite(value) and (best is None or value > best[0] + 1e-9):
            best = (value, weights)
    if best is None:
        return single(output, "btyd", "no candidate could be scored on the validation")
    if np.isfinite(best_blend):
        scores["blend"] = best_blend
    weights = {c: best[1].get(c, 0.0) for c in CANDIDATES[output]}
    reason = None
    if weights.get("btyd", 0.0) < 1.0 and "btyd" in candidates and resamples > 0:
        gain = best[0] - scores.get("btyd", math.nan)
        error = _gain_error(
            metric, combine(candidates, weights), candidates["btyd"], resamples, random_state
        )
        scores["gain_standard_error"] = error
        if not gain > error:
            reason = f"gain over BTYD {gain:.4f} within its standard error {error:.4f}"
            weights = {c: float(c == "btyd") for c in CANDIDATES[output]}
    scores["chosen"] = scores["btyd"] if reason else best[0]
    return OutputChoice(output, weights, METRICS[output], scores, reason)


def _gain_error(
    metric: Metric, chosen: np.ndarray, btyd: np.ndarray, resamples: int, random_state: int
) -> float:
    """Standard deviation of metric(chosen) - metric(btyd) over paired bootstrap resamples of
    the validation rows (NaN draws, e.g. a resample without a positive, are skipped)."""
    rng = np.random.default_rng(random_state)
    n = chosen.shape[0]
    gains = []
    for _ in range(resamples):
        rows: np.ndarray = np.asarray(rng.integers(0, n, size=n))
        gains.append(metric(chosen[rows], rows) - metric(btyd[rows], rows))
    finite = np.asarray(gains, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.std(ddof=1)) if finite.size > 1 else math.inf


def choose_outputs(
    candidates: Mapping[str, Mapping[str, np.ndarray]],
    labels: pd.DataFrame,
    horizon_days: int,
    edges: np.ndarray,
) -> dict[str, OutputChoice]:
    """Every output's choice, on the validation rows' ``labels`` (``churned``, ``purchased``,
    ``days_to_next_purchase``, ``purchases_in_horizon``, ``spend_in_horizon``) over a
    ``horizon_days`` horizon; timing candidates are hazards over the bins between ``edges``."""
    return {
        output: choose(output, candidates[output], combine, metric)
        for output, (combine, metric) in validation_metrics(labels, horizon_days, edges).items()
    }


def validation_metrics(
    labels: pd.DataFrame, horizon_days: int, edges: np.ndarray
) -> dict[str, tuple[Combine, Metric]]:
    """Per output, how its candidates combine and the validation metric of a prediction (see
    :func:`choose_outputs` for the arguments)."""
    # Imported here: retain.evaluation imports the models, so a module-level import would cycle.
    from retain.evaluation.metrics import count_metrics, normalized_gini
    from retain.evaluation.timing_metrics import timing_cindex

    churned = labels["churned"].to_numpy(bool)
    bought = labels["purchased"].to_numpy(bool)
    days = labels["days_to_next_purchase"].to_numpy(float)
    soon = bought & (days <= min(30, horizon_days))
    purchases = labels["purchases_in_horizon"].to_numpy(float)
    spend = labels["spend_in_horizon"].to_numpy(float)

    def on(values: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        return values if rows is None else values[rows]

    def auc(y: np.ndarray) -> Metric:
        def score(p: np.ndarray, rows: np.ndarray | None) -> float:
            yy = on(y, rows)
            return float(roc_auc_score(yy, p)) if 0 < yy.sum() < yy.size else math.nan

        return score

    def cindex(hazards: np.ndarray, rows: np.ndarray | None) -> float:
        return timing_cindex(on(days, rows), on(bought, rows), timing_score(hazards, edges))

    def buyers_spearman(predicted: np.ndarray, rows: np.ndarray | None) -> float:
        return count_metrics(on(purchases, rows), predicted)["buyers_spearman"]

    def gini(predicted: np.ndarray, rows: np.ndarray | None) -> float:
        actual = on(spend, rows)
        return normalized_gini(actual, predicted) if (actual > 0).any() else math.nan

    return {
        "churn_probability": (blend_log_odds, auc(churned)),
        "p_purchase_30d": (blend_log_odds, auc(soon)),
        "days_to_next_purchase": (blend_log_odds, cindex),
        "expected_purchases": (blend_values, buyers_spearman),
        "clv": (blend_values, gini),
    }


def timing_score(hazards: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The "buys sooner" score of :func:`retain.evaluation.timing_metrics.timing_score` from bin
    hazards: minus the median day of the next purchase; undated customers (median past the
    horizon) below every dated one, the likelier to buy within the horizon the higher."""
    from retain.evaluation.timing_metrics import timing_score as from_days  # see choose_outputs

    horizon = float(edges[-1])
    median = days_from_hazards(hazards, edges)
    return from_days(median, cdf_from_hazards(hazards, edges, horizon), horizon)
