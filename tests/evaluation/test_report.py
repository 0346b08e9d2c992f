"""The backtest report: files written, images valid, markdown that points at every image."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: set by the tests, never by the library

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from PIL import Image

from retain.data.datasets import Dataset
from retain.data.synthetic import simulate
from retain.errors import RetainInputError
from retain.evaluation import (
    REPORT_PLOTS,
    BacktestResult,
    backtest,
    churn_feature_importance,
    summarize_backtest,
    write_report,
)
from retain.models.retention import RetentionModel
from retain.models.training import up_to

IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    data = simulate(1_200, seed=5).transactions
    return backtest(
        data,
        horizon_days=90,
        n_cutoffs=2,
        step_days=60,
        last_cutoff="2024-07-31",
        model_factory=lambda h: RetentionModel(h, n_cutoffs=2, n_jobs=1),
    )


@pytest.fixture(scope="module")
def out(result: BacktestResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report") / "nested" / "evaluation"  # made by write_report
    path = write_report(result, folder)
    assert path == folder / "report.md"
    return folder


def test_every_file_is_written(out: Path) -> None:
    names = {p.name for p in out.iterdir()}
    assert names == {"report.md", "metrics.csv", "summary.csv", *REPORT_PLOTS}


def test_plots_are_real_images(out: Path) -> None:
    for name in REPORT_PLOTS:
        path = out / name
        assert path.stat().st_size > 10_000, name  # a blank figure is a few kB
        with Image.open(path) as image:
            assert image.format == "PNG", name
            image.verify()
        with Image.open(path) as image:
            width, height = image.size
            assert width >= 400 and height >= 300, (name, image.size)
            # Something was drawn: more than a handful of colours.
            colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
            assert colours is not None and len(colours) > 20, name


def test_no_figure_is_left_open(out: Path) -> None:
    assert plt.get_fignums() == []


def test_report_links_every_image_by_relative_path(out: Path) -> None:
    text = (out / "report.md").read_text(encoding="utf-8")
    linked = IMAGE_LINK.findall(text)
    assert sorted(linked) == sorted(p.name for p in out.glob("*.png"))
    assert len(linked) == len(set(linked)) == len(REPORT_PLOTS)
    assert all("/" not in link for link in linked)


def test_report_content(out: Path, result: BacktestResult) -> None:
    text = (out / "report.md").read_text(encoding="utf-8")
    for heading in (
        "## Data",
        "## Comparison at each cutoff",
        "## Summary across cutoffs",
        "## Churn calibration table",
        "## CLV decile table",
    ):
        assert heading in text
    for cutoff in result.cutoffs:
        assert f"### Cutoff {cutoff:%Y-%m-%d}" in text
    assert f"{result.data.rows:,} rows of {result.data.customers:,} customers" in text
    # The best value of each metric is bold, at each cutoff, and named in the best column.
    table = result.latest.table()
    winner = table.at["churn_roc_auc", "best"]
    value = table.at["churn_roc_auc", winner.split(", ")[0]]
    assert f"**{value:,.3f}**" in text
    assert re.search(rf"\| `churn_roc_auc` \|.*\| {winner} \|", text)
    assert text.count("| `churn_roc_auc` |") == len(result.cutoffs) + 1  # + the summary
    # Calibration tables of both probabilistic contenders, deciles 1 to 10 of the CLV table.
    calibration = text.split("\n## Churn calibration table")[1].split("\n## CLV")[0]
    assert "### retain" in calibration and "### bgnbd" in calibration
    assert "### naive" not in calibration
    deciles = text.split("\n## CLV decile table")[1]
    assert "| decile | customers | retain predicted | retain actual |" in deciles
    assert re.search(r"^\| 10 \| ", deciles, flags=re.MULTILINE)


def test_csv_tables_round_trip(out: Path, result: BacktestResult) -> None:
    metrics = pd.read_csv(out / "metrics.csv", parse_dates=["cutoff"])
    assert metrics.columns.tolist() == result.metrics.columns.tolist()
    assert len(metrics) == len(result.metrics)
    pd.testing.assert_series_equal(metrics["value"], result.metrics["value"], check_exact=False)
    assert metrics["best"].tolist() == result.metrics["best"].tolist()
    summary = pd.read_csv(out / "summary.csv")
    pd.testing.assert_frame_equal(summary, result.summary, check_exact=False)


def test_rewriting_replaces_the_files(out: Path, result: BacktestResult) -> None:
    before = (out / "report.md").read_text(encoding="utf-8")
    write_report(result, out)
    assert (out / "report.md").read_text(encoding="utf-8") == before
    assert {p.name for p in out.glob("*.png")} == set(REPORT_PLOTS)


def test_churn_feature_importance(result: BacktestResult) -> None:
    importance = churn_feature_importance(result.latest.model)
    assert importance.sum() == pytest.approx(1.0)
    assert (importance >= 0).all() and importance.is_monotonic_decreasing
    assert set(importance.index) == set(result.latest.model.feature_names_)
    with pytest.raises(RetainInputError, match="needs a fitted RetentionModel"):
        churn_feature_importance(RetentionModel())


def test_report_input_errors(result: BacktestResult, tmp_path: Path) -> None:
    with pytest.raises(RetainInputError, match="must be the BacktestResult of backtest"):
        write_report(result.latest, tmp_path)  # type: ignore[arg-type]
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RetainInputError, match="exists and is not a folder"):
        write_report(result, blocker)


def test_report_of_a_single_cutoff(result: BacktestResult, tmp_path: Path) -> None:
    latest = result.metrics[result.metrics["cutoff"] == result.latest.as_of]
    single = replace(
        result,
        holdouts=[result.latest],
        metrics=latest,
        summary=summarize_backtest(latest),
    )
    text = write_report(single, tmp_path).read_text(encoding="utf-8")
    assert text.count("### Cutoff ") == 1
    assert "One cutoff: its table above is the whole result." in text
    assert "| `churn_roc_auc` |" in text and "retain wins" not in text


def test_a_model_that_fell_back_to_btyd_still_gets_a_report(
    cdnow_sample: Dataset, tmp_path: Path
) -> None:
    """Eight weeks of history and a minimum history the model cannot meet: no churn booster,
    every plot still drawn (the importance plot says why it is empty)."""
    tx = up_to(cdnow_sample.transactions.frame, pd.Timestamp("1997-03-12"))
    with pytest.warns(RuntimeWarning, match="BG/NBD \\+ Gamma-Gamma's alone"):
        result = backtest(
            tx, horizon_days=14, model_factory=lambda h: RetentionModel(h, min_history_days=60)
        )
    assert result.latest.model.churn_ is None
    write_report(result, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(REPORT_PLOTS)
