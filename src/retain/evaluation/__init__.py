"""Evaluation: holdout metrics, the model-versus-baselines table and the plots of a report.

The metrics, comparison and plots train nothing: contenders (retain, BG/NBD + Gamma-Gamma, a naive
rule) are scored on the same holdout, and these functions compare their predictions with what
happened. Definitions and conventions (ties, deciles, errors) are in
:mod:`retain.evaluation.metrics` and, for next-purchase timing, :mod:`retain.evaluation.timing_metrics`. :func:`backtest` runs the temporal holdout
(:mod:`retain.evaluation.holdout`, which does train) at several cutoffs, and :func:`write_report`
turns its result into CSV tables, PNG plots and a markdown report.
"""

from retain.evaluation.backtest import (
    BacktestResult,
    DataSummary,
    backtest,
    format_summary,
    stack_metrics,
    summarize_backtest,
)
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
from retain.evaluation.report import REPORT_PLOTS, churn_feature_importance, write_report
from retain.evaluation.timing_metrics import integrated_brier_score, timing_cindex, timing_score

__all__ = [
    "BEST_COLUMN",
    "CALIBRATION_STRATEGIES",
    "METRIC_DIRECTIONS",
    "REPORT_PLOTS",
    "BacktestResult",
    "DataSummary",
    "backtest",
    "calibration_table",
    "churn_feature_importance",
    "churn_metrics",
    "compare",
    "count_metrics",
    "decile_table",
    "format_comparison",
    "format_summary",
    "gains_curve",
    "integrated_brier_score",
    "lift_table",
    "normalized_gini",
    "plot_calibration",
    "plot_cumulative_repeat_transactions",
    "plot_feature_importance",
    "plot_gains",
    "plot_lift",
    "plot_value_deciles",
    "repurchase_auc",
    "stack_metrics",
    "summarize_backtest",
    "timing_cindex",
    "timing_score",
    "value_metrics",
    "write_report",
]
