"""From predictions to what marketing does about them."""

from retain.actions.audiences import (
    AUDIENCE_COLUMNS,
    hash_emails,
    normalize_emails,
    retargeting_audience,
    write_audience,
)
from retain.actions.outreach import OUTREACH_COLUMNS, outreach_schedule, overdue, usual_gap
from retain.actions.plan import PLAN_COLUMNS, plan_actions
from retain.actions.recommend import ACTIONS, recommend_actions
from retain.actions.segments import (
    LIFECYCLE_SEGMENTS,
    high_value,
    high_value_threshold,
    lifecycle_segments,
    segment_summary,
)
from retain.actions.settings import (
    ActionSettings,
    AudienceSettings,
    OutreachSettings,
    SegmentRules,
    TierSettings,
)
from retain.actions.tiers import loyalty_tiers, tier_cuts

__all__ = [
    "ACTIONS",
    "AUDIENCE_COLUMNS",
    "LIFECYCLE_SEGMENTS",
    "OUTREACH_COLUMNS",
    "PLAN_COLUMNS",
    "ActionSettings",
    "AudienceSettings",
    "OutreachSettings",
    "SegmentRules",
    "TierSettings",
    "hash_emails",
    "high_value",
    "high_value_threshold",
    "lifecycle_segments",
    "loyalty_tiers",
    "normalize_emails",
    "outreach_schedule",
    "overdue",
    "plan_actions",
    "recommend_actions",
    "retargeting_audience",
    "segment_summary",
    "tier_cuts",
    "usual_gap",
    "write_audience",
]
