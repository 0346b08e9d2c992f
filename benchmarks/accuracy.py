"""Accuracy benchmark: retain beside BG/NBD + Gamma-Gamma (lifetimes) and a naive rule.

What it measures
----------------
For each window below (a data set, a cutoff ``as_of`` and a horizon), every contender scores the
customers with a purchase on or before ``as_of`` from the history up to it, and is judged on what
those customers did in ``(as_of, as_of + horizon]``. The data are cut at the horizon's end and the
labels are told that day is observed (``observed_until``), as a backtest does.

| window | data | as_of | horizon | what it is for |
|---|---|---|---|---|
| cdnow-1y | CDNOW master | 1997-12-31 | 181 | one year of history, the demo's holdout; issue 15's first failing case for the tracked run |
| cdnow-90d | CDNOW master | 1997-03-31 | 44 | at most 90 days of history: the short-history bug of issue 15 |
| orii | Online Retail II | 2011-06-09 | 183 | the real export of issue 15's table, a long horizon |
| orii-2011 | Online Retail II from 2011-01-01 | 2011-08-09 | 122 | eight months of history (issue 15 says as of 2011-09-01; its 122 days would end on 2012-01-01, after the data's last day, 2011-12-09, so the cutoff is the latest whose horizon the data cover) |
| orii-xmas | Online Retail II | 2011-09-09 | 90 | issue 21 point 4: Christmas inside the horizon, the latest cutoff whose 90 days the data cover |
| synthetic | ``simulate(20_000, seed=7)`` (``--quick``: 5,000) | 2024-07-04 | 180 | BG/NBD data with known truth: BG/NBD is the right model, retain must not lose to it |

Contenders
----------
- ``retain``: ``RetentionModel(horizon).fit(transactions, as_of)`` with its defaults, then
  ``predict``; the training is timed. A fit that raises is shown as ``failed`` with the first
  line of the error; the baselines still print.
- ``bgnbd``: lifetimes' ``BetaGeoFitter`` and ``GammaGammaFitter`` (penalizer 0.001, as retain's
  BTYD features), fitted at ``as_of``, independently of retain's BTYD code. lifetimes is archived
  (0.11.3) and two of its bugs are worked around here:
  * its RFM utilities break on pandas 3, so the RFM summary is retain's ``FeatureBuilder`` columns,
    which the feature tests check equal to lifetimes' ``summary_data_from_transaction_data``
    (frequency = repeat purchase days, recency and T in days, monetary_value = mean spend of the
    repeat purchase days);
  * its conditional expected purchases (Fader, Hardie & Lee 2005, eq. 10) take the log of the
    Gauss hypergeometric function, which is negative when ``a + b + x - 1 < 0`` (x = 0 and
    a + b < 1, e.g. b < 1 and a small): NaN. ``expected_purchases`` below writes eq. 10 with logs
    of absolute values and the sign kept, and every run checks it against lifetimes where lifetimes
    is finite and against an independent form (the same expectation as a one-dimensional integral
    over the dropout probability, by Gauss-Jacobi quadrature); the largest differences print.
  Churn = P(no purchase in the horizon): lifetimes has no such function. Derived from the model:
  a customer dead at T never buys again; one alive at T buys at the Poisson rate lambda, whose
  posterior given alive is Gamma(r + x, alpha + T), and cannot die before the next purchase, so
  S(t) = P(no purchase by T + t) = 1 - P(alive) + P(alive) ((alpha + T) / (alpha + T + t))^(r + x),
  with lifetimes' ``conditional_probability_alive``. 30-day repurchase and the timing score are
  1 - S(30); the integrated Brier score uses S(t) for t = 1..horizon. retain's own formula
  (a ratio of likelihoods) is evaluated at lifetimes' parameters as a cross-check.
  CLV = expected purchases in the horizon x Gamma-Gamma's expected spend per purchase.
- ``naive``: as ``retain.evaluation.holdout.baseline_scores``: days since the last purchase for
  churn (more = riskier) and for timing (fewer = sooner); the last horizon's purchase days and net
  spend (everything, for customers who arrived during it) for purchases and CLV. No probabilities,
  so no integrated Brier score.

Metrics (``retain.evaluation.metrics`` and ``retain.evaluation.timing_metrics``): churn ROC-AUC,
30-day repurchase AUC, timing C-index (Harrell's, days to the next purchase censored at the
horizon; retain's score is ``-days_to_next_purchase``, a null value, "no purchase expected within
the horizon", ranking below every dated customer and the nulls by P(purchase within the horizon),
``retain.models.choice.timing_score``; each baseline's is its 30-day score), integrated Brier
score of P(no purchase by t) over the horizon, purchases Spearman among buyers, CLV normalised
Gini, and total purchases and spend error (predicted - actual) / actual. ``chosen`` is the model
behind each of retain's outputs, chosen on its internal validation (``lgbm``, ``btyd``, ``naive``
or weights of a blend; ``retain.models.choice``), ``train_seconds`` retain's fit time.

How to run
----------
``.venv/bin/python benchmarks/accuracy.py`` (every window, about 10 minutes on the 2-core
machine); ``--windows cdnow-1y,synthetic`` for a subset; ``--quick`` for a smaller simulation.
It prints the table and writes it as CSV and markdown to
``benchmarks/results/accuracy-<commit>.{csv,md}`` (``-dirty`` when src/ has uncommitted
changes). Every window runs in this process, one after another. Exit status 0 even when retain
fails a window: this is a report, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import subprocess
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from scipy import special

ROOT: Final = Path(__file__).resolve().parent.parent
RESULTS: Final = Path(__file__).resolve().parent / "results"
PENALIZER: Final = 0.001
CONTENDERS: Final[tuple[str, ...]] = ("retain", "bgnbd", "naive")
METRICS: Final = (
    "churn_roc_auc",
    "repurchase_30d_auc",
    "timing_cindex",
    "integrated_brier",
    "purchases_buyers_spearman",
    "clv_normalized_gini",
    "purchases_total_error",
    "spend_total_error",
)
# The full training path of issue 18 (every customer, every quiet customer-period, float64), set
# beside the lean defaults by --full-path.
FULL_PATH: Final = {
    "max_training_customers": None,
    "timing_max_rows": 5_000_000,
    "training_float32": False,
}
# --full-path's verdict: the lean path's metric within this of the full path's, or better.
LEAN_TOLERANCE: Final = 0.003
SIM_CUSTOMERS: Final = 20_000
SIM_CUSTOMERS_QUICK: Final = 5_000
SIM_SEED: Final = 7
QUADRATURE_NODES: Final = 64


@dataclass(frozen=True)
class Window:
    name: str
    data: str  # "cdnow", "orii" or "synthetic"
    as_of: str
    horizon_days: int
    purpose: str
    start: str | None = None  # transactions before this day are dropped


WINDOWS: Final = (
    Window("cdnow-1y", "cdnow", "1997-12-31", 181, "one year of history (the demo's holdout)"),
    Window("cdnow-90d", "cdnow", "1997-03-31", 44, "at most 90 days of history (issue 15)"),
    Window("orii", "orii", "2011-06-09", 183, "a real export, long horizon (issue 15)"),
    Window(
        "orii-2011",
        "orii",
        "2011-08-09",
        122,
        "eight months of history; issue 15's 2011-09-01 + 122 d ends after the data",
        start="2011-01-01",
    ),
    Window("orii-xmas", "orii", "2011-09-09", 90, "Christmas inside the horizon (issue 21.4)"),
    Window("synthetic", "synthetic", "2024-07-04", 180, "BG/NBD data with known truth"),
)


@dataclass
class WindowResult:
    window: Window
    customers: int = 0
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    chosen: dict[str, str] = field(default_factory=dict)
    train_seconds: float = math.nan
    retain_error: str | None = None
    notes: list[str] = field(default_factory=list)
    full_metrics: dict[str, float] | None = None
    full_seconds: float = math.nan


# -- data ---------------------------------------------------------------------------------------


def load(window: Window, quick: bool, cache: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, str]:
    """The window's transactions (validated), before any cut, and a description."""
    from retain.data.datasets import load_cdnow, load_online_retail
    from retain.data.synthetic import simulate

    if window.data not in cache:
        if window.data == "cdnow":
            cache[window.data] = load_cdnow("master").transactions.frame
        elif window.data == "orii":
            cache[window.data] = load_online_retail().transactions.frame
        else:
            n = SIM_CUSTOMERS_QUICK if quick else SIM_CUSTOMERS
            sim = simulate(n, seed=SIM_SEED)
            cache[window.data] = sim.transactions
            cache["synthetic-params"] = pd.DataFrame([sim.params])
    frame = cache[window.data]
    what = {"cdnow": "CDNOW master", "orii": "Online Retail II", "synthetic": "simulate"}[
        window.data
    ]
    if window.data == "synthetic":
        what = f"simulate({len(frame['customer_id'].unique()):,} customers, seed={SIM_SEED})"
    if window.start is not None:
        start = pd.Timestamp(window.start, tz="UTC")
        frame = frame.loc[frame["timestamp"] >= start]
        what += f" from {window.start}"
    return frame, what


# -- BG/NBD + Gamma-Gamma with lifetimes ----------------------------------------------------------


def bgnbd_p_alive(
    params: dict[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """BG/NBD's P(alive | x, t_x, T), as lifetimes computes it: the expit of minus the log-odds of
    having dropped out, a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x) for x > 0 (and 1 for x = 0)."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    with np.errstate(all="ignore"):
        log_odds_dead = np.where(
            x > 0,
            np.log(a)
            - np.log(b + np.maximum(x, 1) - 1)
            + (r + x) * np.log((alpha + T) / (alpha + t_x)),
            -np.inf,
        )
    return special.expit(-log_odds_dead)


def expected_purchases(
    params: dict[str, float], t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """BG/NBD's E[purchases in (T, T + t] | x, t_x, T]: Fader, Hardie & Lee (2005), eq. 10,

        (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)]
        / [1 + 1(x>0) a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)],   z = t / (alpha+T+t),

    in a numerically safe form. lifetimes takes log(2F1), which is NaN when the function is
    negative (a+b+x-1 < 0, i.e. x = 0 with a + b < 1). Here the power and 2F1 are multiplied as
    sign x exp(log|2F1| + (r+x) log(1-z)); where 2F1 overflows (z near 1), Euler's transformation
    2F1(a', b'; c; z) = (1-z)^(c-a'-b') 2F1(c-a', c-b'; c; z) is used, again with the sign kept.
    The denominator is the inverse odds of P(alive), computed as lifetimes' P(alive) is (expit).
    """
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    z = t / (alpha + T + t)
    c = a + b + x - 1
    log_power = (r + x) * np.log1p(-z)  # log ((alpha+T) / (alpha+T+t))^(r+x)
    with np.errstate(all="ignore"):
        hyp = special.hyp2f1(r + x, b + x, c, z)
        term = np.sign(hyp) * np.exp(np.log(np.abs(hyp)) + log_power)
        euler = special.hyp2f1(c - r - x, c - b - x, c, z)
        # (1-z)^(r+x) (1-z)^(c-r-x-b-x) = (1-z)^(c-b-x) = (1-z)^(a-1)
        term_euler = np.sign(euler) * np.exp(np.log(np.abs(euler)) + (a - 1) * np.log1p(-z))
        term = np.where(np.isfinite(hyp), term, term_euler)
        first = c / (a - 1)
    return first * (1 - term) * bgnbd_p_alive(params, x, t_x, T)


def expected_purchases_by_quadrature(
    params: dict[str, float], t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """The same expectation derived independently, as a check of :func:`expected_purchases`.

    Given alive at T with rate lambda and dropout p, the purchases in the next t days number
    (1 - exp(-lambda p t)) / p on average (Poisson purchases, death with probability p after
    each). Given the history and alive, lambda ~ Gamma(r+x, alpha+T) and p ~ Beta(a, b+x),
    independent, so E = P(alive) E_p[(1 - ((alpha+T)/(alpha+T+p t))^(r+x)) / p], integrated
    over the Beta density by Gauss-Jacobi quadrature (the integrand is smooth on [0, 1]); for
    a below 1e-9 (a fit that ran a to 0), the limit P(alive) (r+x) t / (alpha+T).
    """
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    out = np.empty(len(x))
    if a < 1e-9:
        # Gauss-Jacobi needs a - 1 > -1 by a margin. As a -> 0 the Beta(a, b+x) mass goes to
        # p = 0, where the integrand is (r+x) t / (alpha+T): its limit is used instead.
        out[:] = (r + x) * t / (alpha + T)
        x_values: np.ndarray = np.array([])
    else:
        x_values = np.unique(x)
    for value in x_values:
        rows = np.flatnonzero(x == value)
        nodes, weights = special.roots_jacobi(QUADRATURE_NODES, b + value - 1, a - 1)
        p = (1 + nodes) / 2
        scale = t / (alpha + T[rows])
        inner = -np.expm1(-(r + value) * np.log1p(np.outer(scale, p))) / p
        out[rows] = inner @ weights / weights.sum()
    return out * bgnbd_p_alive(params, x, t_x, T)


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> tuple[Any, str]:
    """lifetimes' ``BetaGeoFitter`` (penalizer 0.001), and which attempt converged.

    lifetimes' BFGS stops with ``ConvergenceError`` on some data whose likelihood peaks at a
    parameter's edge (Online Retail II from 2011-01-01: a and b run to 0, nobody drops out),
    depending on the start. The attempts, in order: lifetimes' own start (log-parameters 0.1) on
    the distinct histories with weights (the same likelihood, faster), then on one row per
    customer; then the start r = 0.5, alpha = the mean T, a = 0.5, b = 2, both ways. The first
    that converges is used, and the note says which.
    """
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import ConvergenceError

    rfm = pd.DataFrame({"x": x, "t_x": t_x, "T": T})
    distinct = rfm.groupby(["x", "t_x", "T"], sort=False).size().reset_index(name="weight")
    starts = {
        "lifetimes' start": None,
        "start r 0.5, alpha mean T, a 0.5, b 2": np.log([0.5, max(float(T.mean()), 1.0), 0.5, 2]),
    }
    errors = []
    for start_name, start in starts.items():
        for weighted in (True, False):
            data = distinct if weighted else rfm
            try:
                # lifetimes prints the optimiser's report when it fails: kept off the table.
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                    warnings.simplefilter("ignore")
                    fitter = BetaGeoFitter(penalizer_coef=PENALIZER).fit(
                        data["x"],
                        data["t_x"],
                        data["T"],
                        weights=distinct["weight"] if weighted else None,
                        initial_params=start,
                    )
            except ConvergenceError as error:
                errors.append(str(error).strip().splitlines()[0])
                continue
            rows = "distinct histories, weighted" if weighted else "one row per customer"
            return fitter, f"{start_name}, {rows}, attempt {len(errors) + 1} of 4"
    raise RuntimeError(f"lifetimes BG/NBD did not converge in {len(errors)} attempts")


def bgnbd_scores(
    features: pd.DataFrame, horizon: int, notes: list[str], truth: dict[str, float] | None
) -> dict[str, np.ndarray]:
    """BG/NBD + Gamma-Gamma (lifetimes) scores of every customer of ``features``."""
    from lifetimes import GammaGammaFitter

    from retain.models.btyd import BetaGeoModel

    x, t_x, T = (features[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    # lifetimes fits one row per distinct history with weights: the same likelihood, faster.
    fitter, attempt = fit_bgnbd(x, t_x, T)
    params = {k: float(fitter.params_[k]) for k in ("r", "alpha", "a", "b")}
    notes.append(
        f"lifetimes BG/NBD (days; {attempt}): "
        + ", ".join(f"{k} {v:.4g}" for k, v in params.items())
        + (
            "; simulated truth: " + ", ".join(f"{k} {truth[k]:.4g}" for k in params)
            if truth
            else ""
        )
    )
    p_alive = np.asarray(fitter.conditional_probability_alive(x, t_x, T), dtype=float)
    days = np.arange(1, horizon + 1, dtype=float)
    r, alpha = params["r"], params["alpha"]
    power = np.exp((r + x)[:, None] * np.log((alpha + T)[:, None] / (alpha + T[:, None] + days)))
    survival = 1 - p_alive[:, None] + p_alive[:, None] * power  # S(t), t = 1..horizon

    purchases = expected_purchases(params, horizon, x, t_x, T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = np.asarray(
            fitter.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, T), float
        )
    quadrature = expected_purchases_by_quadrature(params, horizon, x, t_x, T)
    finite = np.isfinite(theirs)
    retain_model = BetaGeoModel.from_dict({"model": "bgnbd", "params": params})
    retain_log_s = retain_model.log_probability_of_no_purchase(np.array([horizon]), x, t_x, T)
    notes.append(
        f"x = 0 fix: lifetimes' expected purchases NaN for {int((~finite).sum()):,} customers "
        f"(a + b - 1 = {params['a'] + params['b'] - 1:+.3f}); eq. 10 with signed logs vs "
        f"lifetimes where finite: max |diff| {_max_abs(purchases[finite] - theirs[finite]):.1e}; "
        f"vs the Beta integral: max |diff| {_max_abs(purchases - quadrature):.1e}; "
        f"S(horizon) vs retain's formula: max |diff| "
        f"{_max_abs(survival[:, -1] - np.exp(retain_log_s[:, 0])):.1e}"
    )
    if not np.isfinite(purchases).all():
        raise RuntimeError("BG/NBD expected purchases are not finite after the x = 0 fix")

    repeat = x > 0
    monetary = features["monetary_value"].to_numpy(float)
    usable = repeat & (monetary > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gg = GammaGammaFitter(penalizer_coef=PENALIZER).fit(x[usable], monetary[usable])
    spend = np.asarray(
        gg.conditional_expected_average_profit(x, np.where(repeat, np.maximum(monetary, 0.01), 0)),
        float,
    )
    p30 = 1 - survival[:, 29] if horizon >= 30 else 1 - _survival_at(params, p_alive, x, T, 30)
    return {
        "churn": survival[:, -1],
        "p30": p30,
        "timing": p30,
        "survival": survival,
        "purchases": purchases,
        "value": purchases * spend,
    }


def _survival_at(
    params: dict[str, float], p_alive: np.ndarray, x: np.ndarray, T: np.ndarray, t: float
) -> np.ndarray:
    r, alpha = params["r"], params["alpha"]
    return 1 - p_alive + p_alive * ((alpha + T) / (alpha + T + t)) ** (r + x)


def _max_abs(values: np.ndarray) -> float:
    return float(np.max(np.abs(values))) if values.size else 0.0


# -- naive rule and retain ------------------------------------------------------------------------


def naive_scores(
    history: pd.DataFrame, features: pd.DataFrame, as_of: pd.Timestamp, horizon: int
) -> dict[str, np.ndarray]:
    """As ``retain.evaluation.holdout.baseline_scores``: recency, and the last horizon repeated."""
    from retain.features import FeatureBuilder

    start = as_of - pd.Timedelta(days=horizon)
    previous = (
        FeatureBuilder()
        .labels(history, start, horizon, observed_until=as_of)
        .set_index("customer_id")
        .reindex(features["customer_id"])
    )
    new = previous["purchases_in_horizon"].isna().to_numpy()
    purchases = previous["purchases_in_horizon"].to_numpy(float, copy=True)
    spend = previous["spend_in_horizon"].to_numpy(float, copy=True)
    purchases[new] = features["frequency"].to_numpy(float)[new] + 1
    spend[new] = features["spend_total"].to_numpy(float)[new]
    recency = features["days_since_last_purchase"].to_numpy(float)
    return {"churn": recency, "p30": -recency, "timing": -recency, "purchases": purchases,
            "value": spend}  # fmt: skip


def retain_scores(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp,
    horizon: int,
    customers: pd.Series,
    params: dict[str, Any] | None = None,
) -> tuple[dict[str, np.ndarray], float, dict[str, str]]:
    """Fit retain with its defaults (or ``params``; timed), score, and read the survival curve
    behind its days_to_next_purchase."""
    from retain.models.choice import timing_score
    from retain.models.retention import RetentionModel

    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        model = RetentionModel(horizon, **(params or {})).fit(transactions, as_of)
    seconds = time.perf_counter() - started
    for warning in caught:
        print(f"retain warned: {warning.message}", file=sys.stderr)
    table = model.features(transactions, as_of)
    scores = model.score_features(table, as_of, n_reasons=0)
    survival = model.purchase_survival(table, np.arange(1, horizon + 1, dtype=float))
    order = pd.Index(scores["customer_id"].astype(str)).get_indexer(customers.astype(str))
    if (order < 0).any():
        raise RuntimeError("retain scored a different set of customers than the features hold")
    # -days_to_next_purchase; a null (no purchase expected within the horizon) ranks below every
    # dated customer, the nulls ordered by P(purchase within the horizon).
    timing = timing_score(model.purchase_hazards(table), model.timing_edges_)
    days = scores["days_to_next_purchase"].to_numpy(float)
    known = np.isfinite(days)
    if not np.allclose(timing[known], -days[known]):
        raise RuntimeError("the timing score differs from -days_to_next_purchase")
    short = {"churn_probability": "churn", "p_purchase_30d": "30d",
             "days_to_next_purchase": "days", "expected_purchases": "purch", "clv": "clv"}  # fmt: skip
    chosen = ", ".join(
        f"{short[o]}={c.describe().removeprefix('blend ').replace(' ', '')}"
        for o, c in model.choices_.items()
    )
    if model.fallback_ is not None:
        chosen = "btyd (fallback)"
    return (
        {
            "churn": scores["churn_probability"].to_numpy(float)[order],
            "p30": scores["p_purchase_30d"].to_numpy(float)[order],
            "timing": timing[order],
            "survival": survival[order],
            "purchases": scores["expected_purchases"].to_numpy(float)[order],
            "value": scores["clv"].to_numpy(float)[order],
        },
        seconds,
        {"retain": chosen},
    )


# -- one window -----------------------------------------------------------------------------------


def judge(scores: dict[str, np.ndarray], labels: pd.DataFrame, horizon: int) -> dict[str, float]:
    """Every metric of one contender (integrated Brier only with a survival curve)."""
    from retain.evaluation.metrics import count_metrics, repurchase_auc, value_metrics
    from retain.evaluation.timing_metrics import integrated_brier_score, timing_cindex

    churned = labels["churned"].to_numpy(bool)
    bought = labels["purchased"].to_numpy(bool)
    days = labels["days_to_next_purchase"].to_numpy(float)
    purchases = labels["purchases_in_horizon"].to_numpy(float)
    spend = labels["spend_in_horizon"].to_numpy(float)
    counts = count_metrics(purchases, scores["purchases"])
    values = value_metrics(spend, scores["value"])
    return {
        # repurchase_auc ranks any score: the naive rule's recency is not a probability.
        "churn_roc_auc": repurchase_auc(churned, scores["churn"]),
        "repurchase_30d_auc": repurchase_auc(bought & (days <= 30), scores["p30"]),
        "timing_cindex": timing_cindex(days, bought, scores["timing"]),
        "integrated_brier": (
            integrated_brier_score(days, bought, scores["survival"], horizon)
            if "survival" in scores
            else math.nan
        ),
        "purchases_buyers_spearman": counts["buyers_spearman"],
        "clv_normalized_gini": values["normalized_gini"],
        "purchases_total_error": counts["total_error"],
        "spend_total_error": values["total_error"],
    }


def run_window(
    window: Window, quick: bool, cache: dict[str, pd.DataFrame], full_path: bool = False
) -> WindowResult:
    from retain.features import FeatureBuilder, to_cutoff
    from retain.models.training import up_to

    result = WindowResult(window)
    frame, what = load(window, quick, cache)
    as_of = to_cutoff(window.as_of)
    horizon = window.horizon_days
    end = as_of + pd.Timedelta(days=horizon)
    last_day = frame["timestamp"].max().tz_convert("UTC").tz_localize(None).normalize()
    if end > last_day:
        raise SystemExit(
            f"window {window.name}: the horizon ends on {end:%Y-%m-%d}, after the data's last "
            f"day {last_day:%Y-%m-%d}"
        )
    transactions = up_to(frame, end)  # nothing after the horizon is read by anyone
    history = up_to(frame, as_of)
    first_day = frame["timestamp"].min().tz_convert("UTC").tz_localize(None).normalize()
    features = FeatureBuilder().build(history, as_of)
    labels = (
        FeatureBuilder()
        .labels(transactions, as_of, horizon, observed_until=end)
        .set_index("customer_id")
        .reindex(features["customer_id"])
    )
    result.customers = len(features)
    result.notes.append(
        f"{what}: history {first_day:%Y-%m-%d} to {as_of:%Y-%m-%d} "
        f"({(as_of - first_day).days} days), {result.customers:,} customers judged, "
        f"{labels['churned'].mean():.1%} without a purchase in the horizon"
    )
    truth = None
    if window.data == "synthetic":
        params = cache["synthetic-params"].iloc[0]
        truth = {k: float(params[k]) for k in ("r", "alpha", "a", "b")}
    contenders: dict[str, dict[str, np.ndarray]] = {}
    result.chosen = {"bgnbd": "bgnbd+gg", "naive": "naive"}
    try:
        contenders["bgnbd"] = bgnbd_scores(features, horizon, result.notes, truth)
    except Exception as error:  # a report: the failure is shown, the others still run
        result.chosen["bgnbd"] = "failed"
        result.notes.append(f"bgnbd failed: {type(error).__name__}: {error}")
    contenders["naive"] = naive_scores(history, features, as_of, horizon)
    try:
        scores, seconds, chosen = retain_scores(
            transactions, as_of, horizon, features["customer_id"]
        )
        contenders["retain"] = scores
        result.train_seconds = seconds
        result.chosen.update(chosen)
    except Exception as error:  # a report: any failure is shown, not raised
        lines = str(error).strip().splitlines() or [type(error).__name__]
        result.retain_error = f"{type(error).__name__}: {lines[0]}"
        result.chosen["retain"] = "failed"
        traceback.print_exc(limit=3, file=sys.stderr)
    for name in CONTENDERS:
        if name in contenders:
            result.metrics[name] = judge(contenders[name], labels, horizon)
    if full_path and "retain" in contenders:
        full, result.full_seconds, _ = retain_scores(
            transactions, as_of, horizon, features["customer_id"], FULL_PATH
        )
        result.full_metrics = judge(full, labels, horizon)
    if "retain" in contenders:
        unknown = int((contenders["retain"]["timing"] < -horizon).sum())
        result.notes.append(
            f"retain's days_to_next_purchase is null (no purchase expected within the horizon) "
            f"for {unknown:,} customers; they rank after the dated ones, by P(purchase within "
            "the horizon)"
        )
    return result


# -- output ---------------------------------------------------------------------------------------


def best_of(values: dict[str, float], metric: str) -> set[str]:
    from retain.evaluation.comparison import compare

    present = {k: v for k, v in values.items() if not math.isnan(v)}
    if len(present) < 2:
        return set()
    table = compare({k: {metric: v} for k, v in present.items()}, {"timing_cindex": True})
    return set(filter(None, str(table.loc[metric, "best"]).split(", ")))


def rows_of(results: list[WindowResult]) -> list[dict[str, Any]]:
    """The long table: window, metric and one cell per contender (text), plus the best."""
    rows: list[dict[str, Any]] = []
    for result in results:
        w = result.window
        label = f"{w.name} ({w.as_of}, {w.horizon_days} d)"
        for metric in METRICS:
            values = {c: result.metrics.get(c, {}).get(metric, math.nan) for c in CONTENDERS}
            best = best_of(values, metric)
            cells = {}
            for c in CONTENDERS:
                if result.chosen.get(c) == "failed":
                    cells[c] = "failed"
                elif math.isnan(values[c]):
                    cells[c] = "-"
                else:
                    signed = metric.endswith("total_error")
                    cells[c] = f"{values[c]:+.3f}" if signed else f"{values[c]:.4f}"
                    cells[c] += "*" if c in best else ""
            rows.append(
                {"window": label, "metric": metric, **cells, "best": ", ".join(sorted(best))}
            )
        rows.append({"window": label, "metric": "chosen", **{c: result.chosen.get(c, "-") for c in CONTENDERS}, "best": ""})  # fmt: skip
        train = "-" if math.isnan(result.train_seconds) else f"{result.train_seconds:.1f}"
        rows.append({"window": label, "metric": "train_seconds", "retain": train, "bgnbd": "-", "naive": "-", "best": ""})  # fmt: skip
        if result.retain_error is not None:
            rows.append({"window": label, "metric": "retain_error", "retain": result.retain_error, "bgnbd": "", "naive": "", "best": ""})  # fmt: skip
    return rows


def lean_within(metric: str, lean: float, full: float) -> bool:
    """Whether the lean path's value is within LEAN_TOLERANCE of the full path's, or better."""
    if metric.endswith("total_error"):
        return abs(lean) <= abs(full) + LEAN_TOLERANCE
    if metric == "integrated_brier":
        return lean <= full + LEAN_TOLERANCE
    return lean >= full - LEAN_TOLERANCE


def lean_lines(results: list[WindowResult]) -> list[str]:
    """The lean path (the defaults) beside the full path, window by window (--full-path)."""
    lines = [
        "| window | metric | lean (defaults) | full path | lean - full | within "
        f"{LEAN_TOLERANCE} or better |",
        "|---|---|---|---|---|---|",
    ]
    failed = 0
    for result in results:
        if result.full_metrics is None:
            continue
        w = result.window
        label = f"{w.name} ({w.as_of}, {w.horizon_days} d)"
        for metric in METRICS:
            lean = result.metrics["retain"][metric]
            full = result.full_metrics[metric]
            if math.isnan(lean) or math.isnan(full):
                continue
            ok = lean_within(metric, lean, full)
            failed += not ok
            lines.append(
                f"| {label} | {metric} | {lean:.4f} | {full:.4f} | {lean - full:+.4f} | "
                f"{'yes' if ok else 'NO'} |"
            )
            label = ""
        lines.append(
            f"|  | train_seconds | {result.train_seconds:.1f} | {result.full_seconds:.1f} | | |"
        )
    verdict = "PASS" if failed == 0 else f"FAIL ({failed} metric(s) outside)"
    return [*lines, "", f"lean path within {LEAN_TOLERANCE} of the full path or better: {verdict}"]


def text_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The long table as aligned text: window and metric left-aligned, values right-aligned."""
    cells = [["window", "metric", *CONTENDERS]]
    errors: list[str] = []
    previous = None
    for row in rows:
        if row["metric"] == "retain_error":
            errors.append(f"{row['window']}: retain {row['retain']}")
            continue
        window = row["window"] if row["window"] != previous else ""
        previous = row["window"]
        # A value without a star gets a blank in its place, so the decimal points line up.
        values = [v if v.endswith("*") or v in ("-", "failed") else v + " " for v in
                  (str(row[c]) for c in CONTENDERS)]  # fmt: skip
        cells.append([window, row["metric"], *values])
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = [
        "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in cells
    ]
    return [
        *lines,
        "* best of the contenders on that metric (total errors: closest to zero; integrated "
        "Brier: lowest)",
        *errors,
    ]


def markdown_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| window | metric | retain | bgnbd | naive |", "|---|---|---|---|---|"]
    previous = None
    for row in rows:
        window = row["window"] if row["window"] != previous else ""
        previous = row["window"]
        cells = [str(row[c]).replace("|", "\\|") for c in CONTENDERS]
        lines.append(f"| {window} | {row['metric']} | " + " | ".join(cells) + " |")
    return lines


def commit_name() -> tuple[str, list[str]]:
    """The short commit and the files under src/ that differ from it (uncommitted)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.rstrip("\n")  # porcelain lines start with a blank status column: keep it

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "src").splitlines()]
    return commit, dirty


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    names = [w.name for w in WINDOWS]
    parser.add_argument(
        "--windows", default=",".join(names), help=f"comma-separated subset of {', '.join(names)}"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"simulate {SIM_CUSTOMERS_QUICK:,} customers instead of {SIM_CUSTOMERS:,}",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the CSV and markdown")
    parser.add_argument(
        "--full-path",
        action="store_true",
        help="also fit retain's full training path (no customer sample, every quiet "
        "customer-period, float64) and print it beside the lean defaults (issue 18)",
    )
    args = parser.parse_args(argv)
    wanted = [n.strip() for n in args.windows.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        parser.error(f"unknown window(s) {', '.join(unknown)}; known: {', '.join(names)}")

    commit, dirty = commit_name()
    started = time.perf_counter()
    cache: dict[str, pd.DataFrame] = {}
    results = []
    for window in WINDOWS:
        if window.name not in wanted:
            continue
        print(f"[{window.name}] as of {window.as_of}, {window.horizon_days} days ...", flush=True)
        window_started = time.perf_counter()
        result = run_window(window, args.quick, cache, args.full_path)
        results.append(result)
        status = f"retain failed ({result.retain_error})" if result.retain_error else "ok"
        print(f"  {status}; {time.perf_counter() - window_started:.0f}s", flush=True)
    total = time.perf_counter() - started

    rows = rows_of(results)
    header = [
        f"accuracy benchmark at commit {commit}"
        + (f" with uncommitted changes in {', '.join(dirty)}" if dirty else "")
        + f"; {total:.0f}s in all"
        + (" (--quick)" if args.quick else ""),
    ]
    notes = [f"{r.window.name}: {note}" for r in results for note in r.notes]
    print()
    print("\n".join([*header, "", *text_lines(rows), "", "notes:", *notes]))
    lean = lean_lines(results) if args.full_path else []
    if lean:
        print("\nlean path (the defaults) beside the full path:\n" + "\n".join(lean))

    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"accuracy-{commit}{'-dirty' if dirty else ''}"
    pd.DataFrame(rows).to_csv(args.out / f"{stem}.csv", index=False)
    markdown = [
        f"# Accuracy benchmark, {commit}",
        "",
        *header,
        "",
        *markdown_lines(rows),
        "",
        "`*` best of the contenders on that metric (total errors: closest to zero; integrated "
        "Brier: lowest).",
        "",
        "Notes:",
        "",
        *(f"- {note}" for note in notes),
        "",
        *(["## Lean path beside the full path (issue 18)", "", *lean, ""] if lean else []),
    ]
    (args.out / f"{stem}.md").write_text("\n".join(markdown))
    print(f"\nwritten: {args.out / stem}.csv and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
