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
from retain.reporting.html import NOT_MEASURABLE

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


def full_data(**options: object) -> ReportData:
    """Every section's data; ``options`` replace ReportData fields (currency...)."""
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
            AudienceSummary(
                "retargeting", 300, 1234.5, None, "retargeting.csv", "lapsing", "value at risk"
            ),
            AudienceSummary(
                "discounts", 40, 500.0, 200.0, "discounts.csv", "rule mode", "incremental margin"
            ),
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
        **options,  # type: ignore[arg-type]
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
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in document


SCRIPT = "<script>alert(1)</script>"
AMPERSANDS = """Paid & "social" <'web'>"""


def test_hostile_ids_segments_and_channels_are_escaped_everywhere() -> None:
    """A segment, an audience (a channel), an input name and the notes holding markup reach the
    page only as text: the template engine escapes every value, so no raw tag or quote from data
    gets through. (Customer ids are not listed in the report, which summarises; a hostile one is
    among the scores all the same and must not surface raw.)"""
    data = full_data()
    scores = data.scores.copy()
    scores["customer_id"] = scores["customer_id"].astype(str)
    scores.loc[scores.index[0], "customer_id"] = SCRIPT
    scores["lifecycle_segment"] = np.where(scores.index % 2 == 0, AMPERSANDS, SCRIPT)
    hostile = ReportData(
        as_of=AS_OF,
        scores=scores,
        manifest={**data.manifest, "inputs": {SCRIPT: {"path": AMPERSANDS, "rows_valid": 1}}},
        audiences=[AudienceSummary(AMPERSANDS, 3, 1.0, None, SCRIPT, SCRIPT, AMPERSANDS)],
        discounts=DiscountSection(mode=SCRIPT, budget=None, assumptions=[AMPERSANDS]),
        notes=[SCRIPT, AMPERSANDS],
        title=AMPERSANDS,
    )
    document = render_report(hostile)
    assert "<script" not in document.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert "Paid &amp; &#34;social&#34; &lt;&#39;web&#39;&gt;" in document
    assert AMPERSANDS not in document
    parsed = parse(document)
    assert "script" not in parsed.tags
    # What a reader sees is the data, as text: the parser decodes the escapes back.
    texts = _texts(document)
    assert SCRIPT in texts and AMPERSANDS in texts
    assert f"Input: {SCRIPT}" in texts


def _texts(document: str) -> set[str]:
    """The text nodes of a document, entities decoded."""
    found: set[str] = set()

    class Texts(HTMLParser):
        def handle_data(self, data: str) -> None:
            found.add(data)

    Texts(convert_charrefs=True).feed(document)
    return found


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


# What every figure must say beside it (its horizon, window and unit), as a reader sees it, with
# GBP as the currency; the browser test below checks they are visible.
LABELS_GBP = [
    "Mean churn risk (no order in the next 90 days)",
    "Predicted CLV, next 90 days, total (GBP)",
    "Value at risk, next 90 days, total (GBP)",
    "(active: an order in 365 days)",
    "Revenue (GBP, net)",
    "AOV (GBP)",
    "Active = an order in the 365 days before an instant",
    "Value (GBP)",
    "Value is",
    "value at risk",
    "Cost (GBP)",
    "spend expected in the next 90 days (GBP)",
    "P(no order in the next 90 days)",
    "Money\nin GBP.",
]


def test_every_figure_says_its_horizon_window_and_unit() -> None:
    document = render_report(full_data(currency="GBP"))
    text = re.sub(r"<[^>]+>", "\n", document)
    for label in LABELS_GBP:
        assert label.replace("\n", "") in text.replace("\n", ""), label
    assert "Predicted CLV, total" not in document and "Expected value" not in document
    # Without a currency, money is labelled "amount" and the definitions say how to set one.
    plain = render_report(full_data())
    assert "Predicted CLV, next 90 days, total (amount)" in plain
    assert "Revenue (amount, net)" in plain and "(GBP)" not in plain
    assert "RETAIN_REPORT_CURRENCY" in plain


def test_periods_without_a_whole_active_window_of_data_show_not_measurable() -> None:
    tx = simulate(500, seed=2).transactions
    known = tx.loc[tx["timestamp"] < pd.Timestamp("2024-07-01", tz="UTC")]
    kpis = retention_kpis(known)
    young = kpis.loc[~kpis["window_covered"]]
    assert len(young) >= 12  # the data's first year
    # The first 13 periods, with the formula's 100 % / 0 % where the window is not covered.
    shown = kpis.head(13)
    uncovered = shown.loc[~shown["window_covered"] & shown["customers_start"].gt(0)]
    assert (uncovered["crr"] == 100.0).all() and (uncovered["churn_rate"] == 0.0).all()
    document = render_report(
        ReportData(as_of=AS_OF, scores=scores_frame(), kpis=shown, active_window_days=365)
    )
    cells = re.findall(r'<td class="num">([^<]*)</td>', document)
    assert cells.count(NOT_MEASURABLE) == 2 * int((~shown["window_covered"]).sum())
    last = shown.iloc[-1]  # covered: its CRR is shown
    assert last["window_covered"] and f'<td class="num">{last["crr"]:.1f}</td>' in document
    assert "not measurable, the data do not reach back 365 days" in document


def test_each_overdue_count_says_of_whom() -> None:
    data = full_data()
    scores = data.scores
    first = pd.Timestamp(AS_OF)
    due = scores["contact_date"].between(first, first + pd.Timedelta(days=41))
    document = render_report(data)
    everyone = int(scores["overdue"].sum())
    contacts = int((scores["overdue"] & due).sum())
    assert everyone != contacts  # two counts of one flag over two sets of customers
    assert (
        f'<td class="text">Overdue, of all {len(scores):,} customers (any contact date)</td>'
        f'<td class="num">{everyone:,}</td>'
    ) in document
    assert (
        f'<td class="text">Overdue, of the {int(due.sum()):,} contacts in the 42 days</td>'
        f'<td class="num">{contacts:,}</td>'
    ) in document
    assert "overdue in all" not in document


def test_a_segment_named_overdue_is_told_apart_from_the_overdue_flag() -> None:
    scores = scores_frame()
    scores["lifecycle_segment"] = np.where(scores["overdue"], "overdue", "steady")
    scores.loc[scores.index[:20], "lifecycle_segment"] = "lapsed"  # first rule met wins
    segments = scores.groupby("lifecycle_segment").size().rename("customers").to_frame()
    document = render_report(ReportData(as_of=AS_OF, scores=scores, segments=segments))
    flagged = scores.loc[scores["overdue"], "lifecycle_segment"].value_counts()
    assert f"{int(scores['overdue'].sum()):,} of the {len(scores):,}, by segment: " in document
    assert f"overdue {flagged['overdue']:,}" in document
    assert "a segment&#39;s count is not the overdue count" in document


def test_the_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    path = write_report(full_data(currency="GBP"), tmp_path / "report.html")
    rendered = render(path)

    assert rendered.title == f"Retention report as of {AS_OF}"
    assert rendered.sections == ["notes", *SECTIONS]
    assert_renders(rendered, min_images=8, min_tables=10)
    for label in LABELS_GBP:
        assert rendered.shows(label), label


def test_the_crr_plot_leaves_out_and_shades_the_periods_it_cannot_measure() -> None:
    from matplotlib.figure import Figure

    from retain.reporting.plots import plot_crr

    kpis = pd.DataFrame(
        {
            "period": ["2010-01", "2010-02", "2010-03", "2010-04"],
            "crr": [100.0, 100.0, 96.0, 95.0],
            "churn_rate": [0.0, 0.0, 4.0, 5.0],
            "window_covered": [False, False, True, True],
        }
    )
    ax = plot_crr(
        kpis,
        {"period": "2010-05", "expected_crr": 94.0},
        window_days=365,
        ax=Figure().add_subplot(),
    )
    crr, churn = (line.get_ydata() for line in ax.get_lines()[:2])
    assert np.isnan(crr[:2]).all() and list(crr[2:]) == [96.0, 95.0]
    assert np.isnan(churn[:2]).all() and list(churn[2:]) == [4.0, 5.0]
    assert len(ax.patches) == 1  # the shaded, not measurable periods
    assert "active: an order in the last 365 days" in ax.get_title()
    # A forecast period without a whole window of data is not drawn as an expected CRR.
    young = plot_crr(
        kpis.assign(window_covered=False),
        {"period": "2010-05", "expected_crr": 100.0, "window_covered": False},
        ax=Figure().add_subplot(),
    )
    assert not any(line.get_label().startswith("CRR expected") for line in young.get_lines())


def test_the_templates_ship_in_the_bento_and_the_wheel() -> None:
    """The report reads its templates beside retain.reporting: `bentoml build` must copy them
    (bentofile's include), and the wheel must hold them (hatch packages every file of
    src/retain, not only the .py files, unless the build config narrows it)."""
    import tomllib

    import pathspec
    import yaml

    root = Path(__file__).resolve().parents[2]
    templates = sorted((root / "src/retain/reporting/templates").iterdir())
    assert {path.name for path in templates} >= {"report.html.j2", "blocks.html.j2", "report.css"}
    bentofile = yaml.safe_load((root / "bentofile.yaml").read_text())
    included = pathspec.PathSpec.from_lines("gitwildmatch", bentofile["include"])
    for path in templates:
        assert included.match_file(path.relative_to(root).as_posix()), path.name
    wheel = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert wheel["targets"]["wheel"]["packages"] == ["src/retain"]
    assert "only-include" not in wheel["targets"]["wheel"]
    assert "exclude" not in wheel["targets"]["wheel"]
