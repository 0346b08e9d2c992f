"""What marketing reads: one static HTML report of KPIs, segments, tiers, audiences and outreach,
rendered from Jinja2 templates. Rendering only: the files around it (audiences, the action plan)
are written by :mod:`retain.jobs.actions`, and nothing here imports the batch or jobs layers."""

from retain.reporting.html import (
    AudienceSummary,
    DiscountSection,
    ReportData,
    render_report,
    write_report,
)

__all__ = ["AudienceSummary", "DiscountSection", "ReportData", "render_report", "write_report"]
