"""Temporal holdout: train on the history up to ``as_of``, judge on what customers did after it.

Every contender scores the same customers (those with a purchase by ``as_of``) in the same run:

- ``retain``: the :class:`~retain.models.retention.RetentionModel` fitted on data up to ``as_of``;
- ``bgnbd``: BG/NBD + Gamma-Gamma fitted at ``as_of`` (the classic baseline): churn = P(no purchase
  in the horizon), 30-day repurchase = 1 - P(no purchase in 30 days), purchases = conditional
  expected purchases, value = expected purchases x expected spend per purchase;
- ``naive``: days since the last purchase for churn (larger = riskier) and 30-day repurchase
  (smaller = likelier), and the last horizon's purchase days and net spend for the future.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
from retain.features import FeatureBuilder, to_cutoff
from retain.models.btyd._base import ConvergenceWarning, convergence_noted, warn_not_converged
from retain.models.retention import BTYDFeatures, RetentionModel
from retain.models.training import up_to

__all__ = ["HoldoutResult", "baseline_scores", "temporal_holdout"]


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
    day = to_cutoff(as_of)
    history = up_to(transactions, day)
    assert history is not None
    features = FeatureBuilder().build(history, day)
    notes: dict[str, list[ConvergenceWarning]] = {}
    with convergence_noted(notes, f"{day:%Y-%m-%d}"):
        btyd = BTYDFeatures(horizon_days).fit(features).transform(features)
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
    return pd.DataFrame(
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
    scores = model.predict(transactions, day).rename(
        columns={"days_to_next_purchase": "predicted_days_to_next_purchase"}
    )
    outcomes = FeatureBuilder().labels(
        transactions, day, horizon_days, observed_until=observed_until
    )
    frame = scores.merge(outcomes, on="customer_id", validate="one_to_one").merge(
        baseline_scores(transactions, day, horizon_days), on="customer_id"
    )
    bought_30d = (frame["purchased"] & (frame["days_to_next_purchase"] <= 30)).to_numpy()
    churned = frame["churned"].to_numpy(bool)
    purchases = frame["purchases_in_horizon"].to_numpy(float)
    spend = frame["spend_in_horizon"].to_numpy(float)

    def contender(
        churn: np.ndarray, p30: np.ndarray, count: np.ndarray, value: np.ndarray, scores_only: bool
    ) -> dict[str, float]:
        """Metrics of one contender. A naive rule gives scores, not probabilities: it is judged
        on ranking (AUCs) only, not on Brier."""
        if scores_only:
            metrics = {
                "churn_roc_auc": float(roc_auc_score(churned, churn)),
                "churn_pr_auc": float(average_precision_score(churned, churn)),
                "repurchase_30d_auc": float(roc_auc_score(bought_30d, p30)),
            }
        else:
            found = churn_metrics(churned, churn)
            metrics = {f"churn_{k}": found[k] for k in ("roc_auc", "pr_auc", "brier")}
            metrics["repurchase_30d_auc"] = repurchase_auc(bought_30d, p30)
        counts = count_metrics(purchases, count)
        values = value_metrics(spend, value)
        return metrics | {
            "purchases_spearman": counts["spearman"],
            "purchases_any_auc": counts["any_auc"],
            "purchases_buyers_spearman": counts["buyers_spearman"],
            "purchases_total_error": counts["total_error"],
            "clv_normalized_gini": values["normalized_gini"],
            "clv_spearman": values["spearman"],
            "clv_total_error": values["total_error"],
        }

    result = HoldoutResult(day, horizon_days, model, frame)
    result.metrics = {
        "retain": contender(
            frame["churn_probability"].to_numpy(),
            frame["p_purchase_30d"].to_numpy(),
            frame["expected_purchases"].to_numpy(),
            frame["clv"].to_numpy(),
            scores_only=False,
        ),
        "bgnbd": contender(
            frame["bgnbd_churn"].to_numpy(),
            frame["bgnbd_p30"].to_numpy(),
            frame["bgnbd_purchases"].to_numpy(),
            frame["bgnbd_value"].to_numpy(),
            scores_only=False,
        ),
        "naive": contender(
            frame["naive_churn"].to_numpy(),
            frame["naive_p30"].to_numpy(),
            frame["naive_purchases"].to_numpy(),
            frame["naive_value"].to_numpy(),
            scores_only=True,
        ),
    }
    return result
