"""The HTML report from hand-made inputs: every section, escaped text, self-contained, the same
bytes twice, and what a browser shows (headless Chromium: plots decoded, tables with rows, no
console error, no request)."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from tests.reporting.browser import SECTIONS, assert_renders, render

from retain.data.synthetic import simulate
from retain.kpis import cohort_retention, forecast_crr, retention_kpis
from retain.reporting import (
    AudienceSummary,
    DiscountSection,
    ReportData,
    render_report,
    write_report,
)

AS_OF = "2024-06-30"
HOSTILE = '<script>alert("x")</script>'


def scores_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "churn_probability": rng.uniform(0, 1, n),
            "p_purchase_30d": rng.uniform(0, 0.5, n),
            "clv": rng.lognormal(4, 1, n),
            "days_since_last_purchase": rng.integers(0, 400, n).astype(float),
        }
    )
    frame["value_at_risk"] = frame["churn_probability"] * frame["clv"]
    frame["lifecycle_segment"] = rng.choice(["champion", "lapsed", "new", HOSTILE], n)
    frame["loyalty_tier"] = pd.Categorical(
        rng.choice(["Bronze", "Silver", "Gold"], n),
        categories=["Bronze", "Silver", "Gold"],
        ordered=True,
    )
    frame["contact_date"] = pd.Timestamp(AS_OF) + pd.to_timedelta(rng.integers(0, 60, n), "D")
    frame["overdue"] = rng.uniform(size=n) < 0.1
    return frame


def full_data() -> ReportData:
    tx = simulate(500, seed=2).transactions
    ids = tx["customer_id"].unique()
    scores = scores_frame(len(ids))
    scores["customer_id"] = ids
    tiers = pd.DataFrame(
        {
            "min_clv": [-np.inf, 50.0, 200.0],
            "max_clv": [50.0, 200.0, np.inf],
            "customers": [1, 2, 3],
        },
        index=pd.Index(["Bronze", "Silver", "Gold"], name="loyalty_tier"),
    )
    known = tx.loc[tx["timestamp"] < pd.Timestamp("2024-07-01", tz="UTC")]
    return ReportData(
        as_of=AS_OF,
        scores=scores,
        manifest={
            "as_of": AS_OF,
            "horizon_days": 90,
            "model": {"name": "retain", "version": "7", "trained_as_of": AS_OF, "uri": HOSTILE},
            "inputs": {"transactions": {"path": "tx.parquet", "rows_valid": 1234}},
        },
        kpis=retention_kpis(known),
        cohorts=cohort_retention(known),
        forecast=forecast_crr(scores, AS_OF, horizon_days=90, transactions=known),
        tiers=tiers,
        audiences=[
            AudienceSummary("retargeting", 300, 1234.5, None, "retargeting.csv", "lapsing"),
            AudienceSummary("discounts", 40, 500.0, 200.0, "discounts.csv", "rule mode"),
        ],
        discounts=DiscountSection(
            mode="rule",
            budget=200.0,
            summary={"offers": 40, "expected_cost": 200.0},
            levels=pd.DataFrame(
                {"customers": [560, 30, 10]}, index=pd.Index(["none", "5%", "10%"], name="level")
            ),
            assumptions=["Gross margin: 30% of revenue.", f"a rate {HOSTILE}"],
        ),
        notes=[f"note {HOSTILE}"],
    )


class _Collect(HTMLParser):
    """Tags, image sources and links of a document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        for name in ("href", "src"):
            if values.get(name):
                self.links.append(values[name] or "")


def parse(document: str) -> _Collect:
    parser = _Collect()
    parser.feed(document)
    return parser


def decode_png(source: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert source.startswith(prefix), source[:40]
    image = Image.open(io.BytesIO(base64.b64decode(source[len(prefix) :])))
    image.load()
    return image


@pytest.fixture(scope="module")
def data() -> ReportData:
    return full_data()


@pytest.fixture(scope="module")
def document(data: ReportData) -> str:
    return render_report(data)


def test_every_section_is_there_with_its_plots_and_tables(document: str) -> None:
    parsed = parse(document)
    for section in SECTIONS:
        assert f'<section id="{section}">' in document, section
    # CRR, cohorts, segments, tiers, churn, CLV, discount levels, outreach.
    assert len(parsed.images) == 8
    assert parsed.tags.count("table") >= 10
    assert "Expected CRR" in document and "Observed CRR" in document


def test_every_plot_is_a_valid_png_that_is_not_blank(document: str) -> None:
    for source in parse(document).images:
        image = decode_png(source)
        assert image.format == "PNG"
        assert image.width > 300 and image.height > 150
        pixels = np.asarray(image.convert("L"), dtype=float)
        assert pixels.std() > 5, "a blank plot"


def test_text_from_the_data_is_escaped(document: str) -> None:
    assert "<script" not in document
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in document


def test_the_file_is_self_contained(document: str) -> None:
    parsed = parse(document)
    assert "script" not in parsed.tags and "link" not in parsed.tags
    assert all(link.startswith(("data:image/png;base64,", "#")) for link in parsed.links)
    assert not re.search(r"https?://", document)


def test_the_same_data_gives_the_same_bytes(data: ReportData, document: str) -> None:
    assert render_report(data) == document


def test_missing_inputs_are_said_not_drawn() -> None:
    document = render_report(ReportData(as_of=AS_OF, scores=scores_frame()[["customer_id"]]))
    assert "No transactions were given" in document
    assert "No CRR forecast" in document
    assert "No manifest.json" in document
    assert "No audience was built" in document
    assert "<img" not in document


def test_tiers_are_drawn_in_their_order_and_shares_as_percentages(document: str) -> None:
    assert document.index(">Bronze<") < document.index(">Silver<") < document.index(">Gold<")
    summary = render_report(
        ReportData(
            as_of=AS_OF,
            scores=scores_frame(),
            segments=pd.DataFrame(
                {"customers": [3, 1], "share": [0.75, 0.25]},
                index=pd.Index(["champion", "new"], name="lifecycle_segment"),
            ),
        )
    )
    assert "75.0%" in summary and "25.0%" in summary


def test_the_report_renders_in_headless_chromium(data: ReportData, tmp_path: Path) -> None:
    path = write_report(data, tmp_path / "report.html")
    rendered = render(path)

    assert rendered.title == f"Retention report as of {AS_OF}"
    assert rendered.sections == ["notes", *SECTIONS]
    assert_renders(rendered, min_images=8, min_tables=10)
