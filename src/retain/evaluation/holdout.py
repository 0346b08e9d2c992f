"""Temporal holdout: train on the history up to ``as_of``, judge on what customers did after it.

Every contender scores the same customers (those with a purchase by ``as_of``) in the same run:

- ``retain``: the :class:`~retain.models.retention.RetentionModel` fitted on data up to ``as_of``;
- ``bgnbd``: BG/NBD + Gamma-Gamma fitted at ``as_of`` (the classic baseline): churn = P(no purchase
  in the horizon), 30-day repurchase = 1 - P(no purchase in 30 days), purchases = conditional
  expected purchases, value = expected purchases x expected spend per purchase;
- ``naive``: days since the last purchase for churn (larger = riskier) and 30-day repurchase
  (smaller = likelier), and the last horizon's purchase days and net spend for the future.

Next-purchase timing (:mod:`retain.evaluation.timing_metrics`): ``timing_cindex`` ranks each
contender's "buys sooner" score against the days to the next purchase, censored at the horizon:
retain's ``-days_to_next_purchase`` (a null day, no purchase expected within the horizon, ranks
below every dated customer, by P(purchase within the horizon): :func:`timing_score`), BG/NBD's
P(purchase within 30 days) and the naive rule's ``-days_since_last_purchase``.
``integrated_brier`` scores the curve ``S(t) = P(no purchase by day t)``, t = 1..horizon: retain's
:meth:`~retain.models.retention.RetentionModel.purchase_survival` and BG/NBD's; the naive rule gives
no probability, so it has none. The curves are computed for a block of customers at a time, so
memory stays flat whatever the number of customers and the horizon.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from retain.data.dates import DateLike
from retain.evaluation.comparison import compare
from retain.evaluation.metrics import (
    churn_metrics,
    count_metrics,
    repurchase_auc,
    value_metrics,
)
from retain.evaluation.timing_metrics import integrated_brier_score, timing_cindex, timing_score
from retain.features import FeatureBuilder, to_cutoff
from retain.models.btyd._base import ConvergenceWarning, convergence_noted, warn_not_converged
from retain.models.retention import BTYDFeatures, RetentionModel
from retain.models.training import up_to

__all__ = ["HoldoutResult", "baseline_scores", "temporal_holdout"]

# Survival curves are computed for this many values (customers x days) at a time: 32 MB of floats.
_BLOCK_VALUES = 1 << 22


@dataclass
class HoldoutResult:
    """Scores of every contender beside the outcomes, and the metrics table."""

    as_of: pd.Timestamp
    horizon_days: int
    model: RetentionModel
    frame: pd.DataFrame  # one row per customer: outcomes and every contender's scores
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        return compare(self.metrics)


def baseline_scores(transactions: pd.DataFrame, as_of: DateLike, horizon_days: int) -> pd.DataFrame:
    """BG/NBD + Gamma-Gamma and naive-rule scores at ``as_of``, from the history up to it."""
    return _baselines(transactions, to_cutoff(as_of), horizon_days)[0]


def _baselines(
    transactions: pd.DataFrame, day: pd.Timestamp, horizon_days: int
) -> tuple[pd.DataFrame, BTYDFeatures, pd.DataFrame]:
    """The baselines' scores, the fitted BG/NBD + Gamma-Gamma and the features it scored (in
    the rows of the scores)."""
    history = up_to(transactions, day)
    assert history is not None
    features = FeatureBuilder().build(history, day)
    notes: dict[str, list[ConvergenceWarning]] = {}
    with convergence_noted(notes, f"{day:%Y-%m-%d}"):
        fitted = BTYDFeatures(horizon_days).fit(features)
        btyd = fitted.transform(features)
    warn_not_converged(
        notes, "baseline BG/NBD + Gamma-Gamma", "its scores use the best parameters found."
    )
    start = day - pd.Timedelta(days=horizon_days)
    last_horizon = (
        FeatureBuilder()
        .labels(history, start, horizon_days, observed_until=day)
        .set_index("customer_id")
    )
    previous = last_horizon.reindex(features["customer_id"])
    # Customers who arrived during the last horizon: everything they did is in it.
    new = previous["purchases_in_horizon"].isna().to_numpy()
    purchases = previous["purchases_in_horizon"].to_numpy(float, copy=True)
    spend = previous["spend_in_horizon"].to_numpy(float, copy=True)
    purchases[new] = features["frequency"].to_numpy(float)[new] + 1
    spend[new] = features["spend_total"].to_numpy(float)[new]
    scores = pd.DataFrame(
        {
            "customer_id": features["customer_id"].to_numpy(),
            "bgnbd_churn": btyd["btyd_p_no_purchase"].to_numpy(),
            "bgnbd_p30": 1 - btyd["btyd_p_no_purchase_30d"].to_numpy(),
            "bgnbd_purchases": btyd["btyd_expected_purchases"].to_numpy(),
            "bgnbd_value": btyd["btyd_clv"].to_numpy(),
            "naive_churn": features["days_since_last_purchase"].to_numpy(float),
            "naive_p30": -features["days_since_last_purchase"].to_numpy(float),
            "naive_purchases": purchases,
            "naive_value": spend,
        }
    )
    return scores, fitted, features


def _bgnbd_survival(btyd: BTYDFeatures, features: pd.DataFrame, days: np.ndarray) -> np.ndarray:
    """BG/NBD's P(no purchase by each of ``days``) for each row of ``features``, ``(n, len(days))``."""
    x, t_x, T = (features[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    return np.exp(btyd.transactions_.log_probability_of_no_purchase(days, x, t_x, T))


def _curve_brier(
    days: np.ndarray,
    purchased: np.ndarray,
    horizon_days: int,
    survival: Callable[[np.ndarray], np.ndarray],
) -> tuple[float, np.ndarray]:
    """The integrated Brier score of ``survival(rows)`` (P(no purchase by day t), t = 1..horizon,
    for the customers at positions ``rows``) and each customer's survival at the horizon.

    The curves are made and scored a block of customers at a time; the score is a mean over
    customers x days, so the blocks' scores weighted by their sizes give exactly the whole one.
    """
    n = len(days)
    block = max(1, _BLOCK_VALUES // horizon_days)
    total = 0.0
    at_horizon = np.empty(n, dtype=np.float64)
    for start in range(0, n, block):
        rows = np.arange(start, min(n, start + block))
        curves = survival(rows)
        brier = integrated_brier_score(days[rows], purchased[rows], curves, horizon_days)
        total += brier * len(rows)
        at_horizon[rows] = curves[:, -1]
    return total / n, at_horizon


def temporal_holdout(
    transactions: pd.DataFrame,
    as_of: DateLike,
    horizon_days: int,
    model: RetentionModel | None = None,
    *,
    observed_until: DateLike | None = None,
) -> HoldoutResult:
    """Fit on data up to ``as_of`` (unless a fitted model is given), score, and judge every
    contender on the horizon after ``as_of``.

    ``observed_until`` is the last day the transactions are complete for (default: the day of the
    last transaction). A caller that cuts the data at the end of the horizon passes it, because
    that day may have no transaction and still be observed (a backtest does).
    """
    day = to_cutoff(as_of)
    model = model or RetentionModel(horizon_days)
    if not hasattr(model, "churn_"):
        model.fit(transactions, day)
    table = model.features(transactions, day)  # once: the scores and the survival curves read it
    scores = model.score_features(table, day).rename(
        columns={"days_to_next_purchase": "predicted_days_to_next_purchase"}
    )
    outcomes = FeatureBuilder().labels(
        transactions, day, horizon_days, observed_until=observed_until
    )
    baselines, btyd, btyd_features = _baselines(transactions, day, horizon_days)
    frame = scores.merge(outcomes, on="customer_id", validate="one_to_one").merge(
        baselines, on="customer_id"
    )
    happened = _Outcomes.of(frame)
    curves = _Curves(model, table, btyd, btyd_features, horizon_days)
    briers, retain_at_horizon = curves.integrated_briers(frame, happened)
    frame["retain_timing"] = timing_score(
        frame["predicted_days_to_next_purchase"], 1.0 - retain_at_horizon, horizon_days
    )
    result = HoldoutResult(day, horizon_days, model, frame)
    result.metrics = {
        name: _contender_metrics(happened, frame, columns, integrated_brier=briers.get(name))
        for name, columns in _CONTENDER_COLUMNS.items()
    }
    return result


_CONTENDER_COLUMNS: Final[dict[str, tuple[str, str, str, str, str]]] = {
    "retain": ("churn_probability", "p_purchase_30d", "retain_timing", "expected_purchases", "clv"),
    "bgnbd": ("bgnbd_churn", "bgnbd_p30", "bgnbd_p30", "bgnbd_purchases", "bgnbd_value"),
    "naive": ("naive_churn", "naive_p30", "naive_p30", "naive_purchases", "naive_value"),
}
"""Each contender's columns of the holdout frame: churn, 30-day repurchase, timing ("buys
sooner"), purchases and value. BG/NBD and the naive rule rank timing by their 30-day score."""


@dataclass(frozen=True)
class _Outcomes:
    """What the customers did in the horizon, in the rows of the holdout frame."""

    churned: np.ndarray
    bought: np.ndarray
    waited: np.ndarray
    """Days to the next purchase (censored at the horizon for those who did not buy)."""
    bought_30d: np.ndarray
    purchases: np.ndarray
    spend: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Outcomes:
        return cls(
            churned=frame["churned"].to_numpy(bool),
            bought=frame["purchased"].to_numpy(bool),
            waited=frame["days_to_next_purchase"].to_numpy(float),
            bought_30d=(frame["purchased"] & (frame["days_to_next_purchase"] <= 30)).to_numpy(),
            purchases=frame["purchases_in_horizon"].to_numpy(float),
            spend=frame["spend_in_horizon"].to_numpy(float),
        )


@dataclass(frozen=True)
class _Curves:
    """The survival curves P(no purchase by day t), t = 1..horizon, of the contenders that give
    probabilities: retain (from its feature table) and BG/NBD (from the baseline's features)."""

    model: RetentionModel
    table: pd.DataFrame
    btyd: BTYDFeatures
    btyd_features: pd.DataFrame
    horizon_days: int

    def integrated_briers(
        self, frame: pd.DataFrame, happened: _Outcomes
    ) -> tuple[dict[str, float], np.ndarray]:
        """Each contender's integrated Brier score, and retain's survival at the horizon for
        the customers of ``frame`` (in its rows)."""
        customers = frame["customer_id"].astype(str)
        retain_rows = _positions(self.table["customer_id"], customers, "retain's feature table")
        bgnbd_rows = _positions(
            self.btyd_features["customer_id"], customers, "the baseline's features"
        )
        curve_days = [float(t) for t in range(1, self.horizon_days + 1)]
        retain_brier, retain_at_horizon = _curve_brier(
            happened.waited,
            happened.bought,
            self.horizon_days,
            lambda rows: self.model.purchase_survival(
                self.table.iloc[retain_rows[rows]], curve_days
            ),
        )
        bgnbd_brier, _ = _curve_brier(
            happened.waited,
            happened.bought,
            self.horizon_days,
            lambda rows: _bgnbd_survival(
                self.btyd, self.btyd_features.iloc[bgnbd_rows[rows]], np.asarray(curve_days)
            ),
        )
        return {"retain": retain_brier, "bgnbd": bgnbd_brier}, retain_at_horizon


def _contender_metrics(
    happened: _Outcomes,
    frame: pd.DataFrame,
    columns: tuple[str, str, str, str, str],
    integrated_brier: float | None,
) -> dict[str, float]:
    """Metrics of one contender, from its ``columns`` of ``frame`` (:data:`_CONTENDER_COLUMNS`).
    A naive rule gives scores, not probabilities (``integrated_brier`` None): it is judged on
    ranking (AUCs, C-index) only, not on Brier."""
    churn, p30, timing, count, value = (frame[column].to_numpy() for column in columns)
    churned, bought_30d = happened.churned, happened.bought_30d
    if integrated_brier is None:
        metrics = {
            "churn_roc_auc": float(roc_auc_score(churned, churn)),
            "churn_pr_auc": float(average_precision_score(churned, churn)),
            "repurchase_30d_auc": float(roc_auc_score(bought_30d, p30)),
        }
    else:
        found = churn_metrics(churned, churn)
        metrics = {f"churn_{k}": found[k] for k in ("roc_auc", "pr_auc", "brier")}
        metrics["repurchase_30d_auc"] = repurchase_auc(bought_30d, p30)
    metrics["timing_cindex"] = timing_cindex(happened.waited, happened.bought, timing)
    if integrated_brier is not None:
        metrics["integrated_brier"] = integrated_brier
    counts = count_metrics(happened.purchases, count)
    values = value_metrics(happened.spend, value)
    return metrics | {
        "purchases_spearman": counts["spearman"],
        "purchases_any_auc": counts["any_auc"],
        "purchases_buyers_spearman": counts["buyers_spearman"],
        "purchases_total_error": counts["total_error"],
        "clv_normalized_gini": values["normalized_gini"],
        "clv_spearman": values["spearman"],
        "clv_total_error": values["total_error"],
    }


def _positions(ids: pd.Series, customers: pd.Series, source: str) -> np.ndarray:
    """Where each of ``customers`` sits among ``ids`` (the rows of a table scored in its order)."""
    rows = pd.Index(ids.astype(str)).get_indexer(pd.Index(customers))
    if (rows < 0).any():
        raise RuntimeError(f"the holdout's customers are missing from {source}")
    return rows
