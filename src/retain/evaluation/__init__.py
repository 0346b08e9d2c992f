"""Evaluation: holdout metrics, the model-versus-baselines table and the plots of a report.

Nothing here trains a model: contenders (retain, BG/NBD + Gamma-Gamma, a naive rule) are scored
elsewhere on the same holdout, and these functions compare their predictions with what happened.
Definitions and conventions (ties, deciles, errors) are in :mod:`retain.evaluation.metrics`.
"""

from retain.evaluation.comparison import (
    BEST_COLUMN,
    METRIC_DIRECTIONS,
    compare,
    format_comparison,
)
from retain.evaluation.metrics import (
    CALIBRATION_STRATEGIES,
    calibration_table,
    churn_metrics,
    count_metrics,
    decile_table,
    gains_curve,
    lift_table,
    normalized_gini,
    repurchase_auc,
    value_metrics,
)
from retain.evaluation.plots import (
    plot_calibration,
    plot_cumulative_repeat_transactions,
    plot_feature_importance,
    plot_gains,
    plot_lift,
    plot_value_deciles,
)

__all__ = [
    "BEST_COLUMN",
    "CALIBRATION_STRATEGIES",
    "METRIC_DIRECTIONS",
    "calibration_table",
    "churn_metrics",
    "compare",
    "count_metrics",
    "decile_table",
    "format_comparison",
    "gains_curve",
    "lift_table",
    "normalized_gini",
    "plot_calibration",
    "plot_cumulative_repeat_transactions",
    "plot_feature_importance",
    "plot_gains",
    "plot_lift",
    "plot_value_deciles",
    "repurchase_auc",
    "value_metrics",
]
