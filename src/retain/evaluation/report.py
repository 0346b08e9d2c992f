"""The backtest report: tables as CSV, one PNG per plot, and a markdown page that ties them together.

``write_report(result, out_dir)`` writes into ``out_dir``:

- ``metrics.csv``: the long table (cutoff, contender, metric, value, best);
- ``summary.csv``: per metric and contender across cutoffs (mean, min, max, wins);
- one PNG per plot of :data:`REPORT_PLOTS`, all of the latest cutoff;
- ``report.md``: the data, the comparison table of every cutoff with the best marked, the summary,
  the plots (embedded by relative path, so the folder can be moved or zipped as a whole), and the
  calibration and CLV-decile tables of the latest cutoff.

Figures are :class:`matplotlib.figure.Figure` objects made directly, not through pyplot: nothing is
registered with pyplot's figure manager, so no backend or display is needed (any backend works, as
Agg does) and nothing stays open after a figure is saved.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from retain.errors import RetainInputError
from retain.evaluation.backtest import BacktestResult
from retain.evaluation.comparison import BEST_COLUMN
from retain.evaluation.holdout import HoldoutResult
from retain.evaluation.metrics import calibration_table, decile_table
from retain.evaluation.plots import (
    plot_calibration,
    plot_cumulative_repeat_transactions,
    plot_feature_importance,
    plot_gains,
    plot_lift,
    plot_value_deciles,
)
from retain.models.retention import RetentionModel

__all__ = ["REPORT_PLOTS", "churn_feature_importance", "write_report"]

REPORT_PLOTS: Final = {
    "calibration.png": "Calibration of churn probabilities",
    "gains_churn.png": "Cumulative gains: churners captured",
    "lift_churn.png": "Cumulative lift: churners",
    "cumulative_repeat_transactions.png": "Cumulative repeat transactions: actual and BG/NBD",
    "frequency_recency_matrix.png": "BG/NBD expected purchases by frequency and recency",
    "probability_alive_matrix.png": "BG/NBD probability of being alive",
    "feature_importance.png": "Feature importance of the churn model",
    "clv_deciles.png": "Actual spend by decile of predicted value",
}
"""File name and caption of every plot the report writes, in the report's order."""

_DPI: Final = 110
_MATRIX_FREQUENCY_QUANTILE: Final = 0.99
"""The frequency axis of the BTYD matrices stops at this quantile of the customers' repeat
purchase days: the few heaviest buyers would otherwise squeeze everyone else into one column."""

# What each contender's columns of the holdout frame are called.
_CHURN: Final = {"retain": "churn_probability", "bgnbd": "bgnbd_churn", "naive": "naive_churn"}
_VALUE: Final = {"retain": "clv", "bgnbd": "bgnbd_value", "naive": "naive_value"}
_PROBABILISTIC: Final = ("retain", "bgnbd")  # the naive rule ranks; it gives no probabilities


def churn_feature_importance(model: RetentionModel) -> pd.Series:
    """Each feature's share of the total split gain of the churn model, largest first.

    The churn booster's gain (LightGBM's ``"gain"`` importance) as a share, so reports of models
    trained on different data compare at a glance. RetentionModel does not expose this itself
    (its churn model does, as ``churn_.feature_importance``), hence this accessor.
    """
    if not isinstance(model, RetentionModel) or not hasattr(model, "churn_"):
        raise RetainInputError("churn_feature_importance needs a fitted RetentionModel")
    if model.churn_ is None:
        raise RetainInputError(
            "churn_feature_importance: the model has no churn booster (it fell back to "
            f"BG/NBD + Gamma-Gamma alone: {model.fallback_ or 'no reason recorded'})"
        )
    gain = model.churn_.feature_importance("gain")
    total = float(gain.sum())
    share = gain / total if total > 0 else gain
    return share.rename("share of the churn model's total gain")


def write_report(result: BacktestResult, out_dir: str | Path) -> Path:
    """Write the CSV tables, the PNG plots and ``report.md`` into ``out_dir``; return the
    report's path. The folder is created if needed; files of the same names are replaced."""
    if not isinstance(result, BacktestResult):
        raise RetainInputError(
            f"result must be the BacktestResult of backtest() (a single holdout is a backtest "
            f"with n_cutoffs=1), not {type(result).__name__}"
        )
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RetainInputError(f"{out} exists and is not a folder: cannot write the report there")
    out.mkdir(parents=True, exist_ok=True)
    metrics = result.metrics.assign(cutoff=result.metrics["cutoff"].dt.strftime("%Y-%m-%d"))
    metrics.to_csv(out / "metrics.csv", index=False)
    result.summary.to_csv(out / "summary.csv", index=False)
    plots = _write_plots(result, out)
    path = out / "report.md"
    path.write_text(_markdown(result, plots), encoding="utf-8")
    return path


# --- plots -----------------------------------------------------------------------------------


def _write_plots(result: BacktestResult, out: Path) -> list[str]:
    """Draw and save every plot of the latest cutoff; return the file names in order."""
    from retain.models.btyd.plots import (  # pyplot comes with it: only when a report is made
        plot_frequency_recency_matrix,
        plot_probability_alive_matrix,
    )

    latest = result.latest
    frame = latest.frame
    churned = frame["churned"].to_numpy(bool)
    churn = {name: frame[column].to_numpy(float) for name, column in _CHURN.items()}
    bgnbd = latest.model.btyd_.transactions_
    T = float(result.rfm["T"].max())
    max_frequency = max(
        1, math.ceil(float(result.rfm["frequency"].quantile(_MATRIX_FREQUENCY_QUANTILE)))
    )
    # A model that fell back to BTYD alone has no churn booster: no importance plot.
    importance = churn_feature_importance(latest.model) if latest.model.churn_ is not None else None
    tracking = result.tracking
    draw: dict[str, tuple[tuple[float, float], Callable[[Axes], object]]] = {
        "calibration.png": (
            (6.0, 6.0),
            lambda ax: plot_calibration(churned, {k: churn[k] for k in _PROBABILISTIC}, ax=ax),
        ),
        "gains_churn.png": (
            (7.0, 5.0),
            lambda ax: plot_gains(churned, churn, outcome="churners", ax=ax),
        ),
        "lift_churn.png": (
            (7.0, 5.0),
            lambda ax: plot_lift(churned, churn, outcome="churners", ax=ax),
        ),
        "cumulative_repeat_transactions.png": (
            (9.0, 5.0),
            lambda ax: plot_cumulative_repeat_transactions(
                tracking["date"],
                tracking["actual"],
                {"bgnbd": tracking["expected"]},
                calibration_end=latest.as_of,
                ax=ax,
            ),
        ),
        "frequency_recency_matrix.png": (
            (7.0, 5.5),
            lambda ax: plot_frequency_recency_matrix(
                bgnbd, T=T, max_frequency=max_frequency, t=float(result.horizon_days), ax=ax
            ),
        ),
        "probability_alive_matrix.png": (
            (7.0, 5.5),
            lambda ax: plot_probability_alive_matrix(
                bgnbd, T=T, max_frequency=max_frequency, ax=ax
            ),
        ),
        "feature_importance.png": (
            (7.0, 1.5 + 0.3 * min(20, 0 if importance is None else len(importance))),
            lambda ax: (
                plot_feature_importance(importance, top=20, ax=ax)
                if importance is not None
                else _no_importance(ax, latest.model.fallback_)
            ),
        ),
        "clv_deciles.png": (
            (9.0, 5.0),
            lambda ax: plot_value_deciles(
                frame["spend_in_horizon"].to_numpy(float),
                {name: frame[column].to_numpy(float) for name, column in _VALUE.items()},
                ax=ax,
            ),
        ),
    }
    assert list(draw) == list(REPORT_PLOTS)
    for name, (size, plot) in draw.items():
        figure = Figure(figsize=size, layout="constrained")
        plot(figure.add_subplot())
        figure.savefig(out / name, dpi=_DPI)
        figure.clear()
    return list(draw)


def _no_importance(ax: Axes, reason: str | None) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, f"no churn booster: {reason}", ha="center", va="center", wrap=True)


# --- markdown --------------------------------------------------------------------------------


def _markdown(result: BacktestResult, plots: list[str]) -> str:
    """The report page: what was compared on which data, each cutoff's comparison, the summary
    across cutoffs, the plots and the latest cutoff's calibration and CLV-decile tables."""
    lines = [
        *_data_lines(result),
        *_comparison_lines(result),
        *_summary_lines(result),
        *_plot_lines(result, plots),
        *_table_lines(result),
    ]
    return "\n".join(lines)


def _data_lines(result: BacktestResult) -> list[str]:
    n = len(result.holdouts)
    horizon = result.horizon_days
    data = result.data
    return [
        "# retain evaluation report",
        "",
        f"Backtest of the retain model against BG/NBD + Gamma-Gamma (`bgnbd`) and a naive rule "
        f"(`naive`: days since the last purchase, last horizon's purchases and spend) at {n} "
        f"cutoff{'s' if n > 1 else ''}. At each cutoff every contender is trained on the history "
        f"up to it and judged on the next {horizon} days; nothing after a cutoff's horizon is "
        f"read.",
        "",
        "## Data",
        "",
        f"- transactions read: {data.rows:,} rows of {data.customers:,} customers, "
        f"{data.first_day:%Y-%m-%d} to {data.last_day:%Y-%m-%d} (the data runs to "
        f"{data.data_end:%Y-%m-%d})",
        f"- horizon: {horizon} days; cutoffs: "
        + ", ".join(f"{c:%Y-%m-%d}" for c in result.cutoffs)
        + (f" ({result.step_days} days apart)" if result.step_days is not None and n > 1 else ""),
        "",
        _markdown_table(
            [
                "cutoff",
                "judged to",
                "customers scored",
                "churned",
                "purchase days in horizon",
                "spend in horizon",
                "retain training rows",
            ],
            [_cutoff_row(h) for h in result.holdouts],
            text=(0, 1),
        ),
        "",
    ]


def _comparison_lines(result: BacktestResult) -> list[str]:
    lines = [
        "## Comparison at each cutoff",
        "",
        "Best value of each metric in **bold** (and named in *best*). Higher is better for AUCs, "
        "the timing C-index, Gini and Spearman, lower for Brier and the integrated Brier of "
        "P(no purchase by day t) over the horizon, closest to zero for the signed `total_error` "
        "((predicted - actual) / actual over all customers). The naive rule gives scores, not "
        "probabilities, so it has no Brier score.",
        "",
    ]
    for holdout in result.holdouts:
        end = holdout.as_of + pd.Timedelta(days=holdout.horizon_days)
        lines += [
            f"### Cutoff {holdout.as_of:%Y-%m-%d} (judged {holdout.as_of + pd.Timedelta(days=1):%Y-%m-%d}"
            f" to {end:%Y-%m-%d})",
            "",
            _comparison_markdown(holdout.table()),
            "",
        ]
    return lines


def _summary_lines(result: BacktestResult) -> list[str]:
    n = len(result.holdouts)
    lines = ["## Summary across cutoffs", ""]
    if n == 1:
        won = int((result.summary.query("contender == 'retain'")["wins"] > 0).sum())
        total = result.summary["metric"].nunique()
        lines += [
            f"One cutoff: its table above is the whole result. retain is best on {won} of "
            f"{total} metrics; more cutoffs (`--cutoffs`) say whether that holds across seasons.",
            "",
        ]
    else:
        lines += [
            f"Mean [min, max] over the {n} cutoffs; *retain wins*: cutoffs where retain was best.",
            "",
            _summary_markdown(result.summary, n),
            "",
        ]
    return lines


def _plot_lines(result: BacktestResult, plots: list[str]) -> list[str]:
    lines = [
        f"## Plots (latest cutoff, {result.latest.as_of:%Y-%m-%d})",
        "",
        "The BG/NBD of the matrices and of the tracking plot is the one fitted at the cutoff "
        "(the `bgnbd` contender); the matrices are for customers as old as the oldest customer "
        f"(T = {result.rfm['T'].max():,.0f} days), expected purchases over the "
        f"{result.horizon_days}-day horizon.",
        "",
    ]
    for name in plots:
        lines += [f"### {REPORT_PLOTS[name]}", "", f"![{REPORT_PLOTS[name]}]({name})", ""]
    return lines


def _table_lines(result: BacktestResult) -> list[str]:
    """The latest cutoff's churn calibration table of each probabilistic contender, and its CLV
    decile table."""
    latest = result.latest
    lines = [
        f"## Churn calibration table (latest cutoff, {latest.as_of:%Y-%m-%d})",
        "",
        "Quantile bins of the predicted probability; `gap` = mean predicted - observed rate "
        "(positive: the contender over-predicts churn in that bin).",
        "",
    ]
    churned = latest.frame["churned"].to_numpy(bool)
    for name in _PROBABILISTIC:
        table = calibration_table(churned, latest.frame[_CHURN[name]].to_numpy(float))
        lines += [f"### {name}", "", _frame_markdown(table), ""]
    lines += [
        f"## CLV decile table (latest cutoff, {latest.as_of:%Y-%m-%d})",
        "",
        f"Customers sorted by each contender's predicted value for the {result.horizon_days}-day "
        "horizon (decile 1 = highest), against the spend that followed; *share* is the decile's "
        "share of all actual spend.",
        "",
        _frame_markdown(_deciles(latest)),
        "",
    ]
    return lines


def _cutoff_row(holdout: HoldoutResult) -> list[str]:
    frame = holdout.frame
    end = holdout.as_of + pd.Timedelta(days=holdout.horizon_days)
    return [
        f"{holdout.as_of:%Y-%m-%d}",
        f"{end:%Y-%m-%d}",
        f"{len(frame):,}",
        f"{frame['churned'].mean():.1%}",
        f"{frame['purchases_in_horizon'].sum():,.0f}",
        f"{frame['spend_in_horizon'].sum():,.2f}",
        f"{getattr(holdout.model, 'training_rows_', 0):,}",
    ]


def _deciles(holdout: HoldoutResult) -> pd.DataFrame:
    """Mean predicted and actual value per decile of every contender, side by side."""
    frame = holdout.frame
    actual = frame["spend_in_horizon"].to_numpy(float)
    columns: dict[str, object] = {}
    for name, column in _VALUE.items():
        table = decile_table(actual, frame[column].to_numpy(float))
        if not columns:
            columns["decile"] = table["decile"]
            columns["customers"] = table["n"]
        columns[f"{name} predicted"] = table["mean_predicted"]
        columns[f"{name} actual"] = table["mean_actual"]
        columns[f"{name} share"] = table["share_of_actual"]
    return pd.DataFrame(columns)


def _comparison_markdown(table: pd.DataFrame) -> str:
    contenders = [str(c) for c in table.columns if c != BEST_COLUMN]
    rows = []
    for metric, row in table.iterrows():
        winners = set(filter(None, str(row[BEST_COLUMN]).split(", ")))
        cells = [f"`{metric}`"]
        for contender in contenders:
            text = _number(float(row[contender]))
            cells.append(f"**{text}**" if contender in winners else text)
        cells.append(", ".join(sorted(winners, key=contenders.index)) or "-")
        rows.append(cells)
    return _markdown_table(["metric", *contenders, "best"], rows, text=(0, len(contenders) + 1))


def _summary_markdown(summary: pd.DataFrame, n: int) -> str:
    contenders = list(dict.fromkeys(summary["contender"]))
    cells = summary.set_index(["metric", "contender"])
    rows = []
    for metric in dict.fromkeys(summary["metric"]):
        row = [f"`{metric}`"]
        for contender in contenders:
            line = cells.loc[(metric, contender)]
            row.append(
                "-"
                if line["cutoffs"] == 0
                else f"{_number(line['mean'])} [{_number(line['min'])}, {_number(line['max'])}]"
            )
        wins = cells.loc[(metric, "retain"), "wins"] if (metric, "retain") in cells.index else 0
        row.append(f"{int(wins)} of {n}")
        rows.append(row)
    return _markdown_table(["metric", *contenders, "retain wins"], rows)


def _frame_markdown(frame: pd.DataFrame) -> str:
    rows = []
    for values in frame.itertuples(index=False):
        rows.append(
            [f"{v:,}" if isinstance(v, int | np.integer) else _number(float(v), 3) for v in values]
        )
    return _markdown_table([str(c) for c in frame.columns], rows)


def _markdown_table(header: list[str], rows: list[list[str]], text: tuple[int, ...] = (0,)) -> str:
    """A pipe table; numbers right-aligned, the ``text`` columns (positions) left-aligned."""
    align = ["---" if i in text else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value: float, decimals: int = 3) -> str:
    return "-" if math.isnan(value) else f"{value:,.{decimals}f}"
