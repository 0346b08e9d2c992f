"""What marketing reads: one static HTML report of KPIs, segments, tiers, audiences and outreach,
and the outputs of ``retain audiences`` (:mod:`retain.reporting.outputs`)."""

from retain.reporting.html import (
    AudienceSummary,
    DiscountSection,
    ReportData,
    render_report,
    write_report,
)

__all__ = ["AudienceSummary", "DiscountSection", "ReportData", "render_report", "write_report"]
