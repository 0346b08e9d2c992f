"""The retargeting audience: customers worth winning back, most value at risk first.

Who is in it (:class:`~retain.actions.settings.AudienceSettings`, defaults in brackets): customers
with churn probability at least ``min_churn_probability`` (0.5) and value at risk (churn
probability x predicted CLV) above zero and at least ``min_value_at_risk`` (0), except those whose
recommended action is in ``exclude_actions`` (``let go``, ``nurture``, ``no discount``: so the
audience is the ``win back`` and ``reactivate`` customers, as the actions say), ranked by value at
risk (ties by customer id), at most ``max_size`` (no limit). Each row carries its top reason (the
first of ``reasons``), lifecycle segment and loyalty tier (of the whole scored base).

Files (:func:`write_audience`): ``<name>.csv`` for people and tools, and, when customer e-mails were
given, ``<name>_customer_match.csv`` for an ad platform's customer-match upload: one column
``Email`` of lowercase hex SHA-256 digests, as Google Ads accepts for hashed uploads. Before hashing,
each address is normalised as Google asks: surrounding white space removed, lower-cased, and for
``gmail.com`` and ``googlemail.com`` addresses the dots of the part before ``@`` removed
(``John.Doe@Gmail.com`` -> ``johndoe@gmail.com``; a ``+tag`` is kept, as Google does not ask to drop
it). Addresses that are then not ``something@domain.tld`` (one ``@``, no white space) count as
without an e-mail. Plain addresses never reach a file, and not even the audience frame: it holds the
digest (``email_sha256``) only. Digests repeated by several customers are written once.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from retain.actions._checks import numbers, require
from retain.actions.outreach import overdue
from retain.actions.recommend import recommend_actions
from retain.actions.segments import lifecycle_segments
from retain.actions.settings import ActionSettings
from retain.actions.tiers import loyalty_tiers
from retain.errors import RetainInputError

__all__ = [
    "AUDIENCE_COLUMNS",
    "GMAIL_DOMAINS",
    "hash_emails",
    "normalize_emails",
    "retargeting_audience",
    "write_audience",
]

AUDIENCE_COLUMNS: Final = (
    "rank",
    "customer_id",
    "value_at_risk",
    "churn_probability",
    "clv",
    "p_alive",
    "reason",
    "lifecycle_segment",
    "loyalty_tier",
    "segment",
    "action",
    "days_since_last_purchase",
    "overdue",
)
GMAIL_DOMAINS: Final = frozenset({"gmail.com", "googlemail.com"})
_NEEDED: Final = (
    "customer_id",
    "churn_probability",
    "clv",
    "p_alive",
    "reasons",
    "segment",
    "frequency",
    "T",
    "days_since_last_purchase",
)
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def normalize_emails(emails: pd.Series) -> pd.Series:
    """E-mail addresses as Google's customer match hashes them: stripped, lower-cased, without
    dots before ``@`` for Gmail addresses; NA where there is no valid address."""
    text = emails.astype("str").where(emails.notna()).str.strip().str.lower()
    # The part before the last "@" and the domain after it (NA without an "@").
    parts = text.str.extract(r"^(?P<local>.*)@(?P<domain>[^@]*)$")
    local, domain = parts["local"], parts["domain"]
    gmail = domain.isin(GMAIL_DOMAINS)
    local = local.where(~gmail, local.str.replace(".", "", regex=False))
    normalized = local + "@" + domain
    valid = normalized.str.fullmatch(_EMAIL).fillna(False).astype(bool)
    result = normalized.where(valid)
    result.name = emails.name
    return result


def hash_emails(emails: pd.Series) -> pd.Series:
    """Lowercase hex SHA-256 of each normalised address (:func:`normalize_emails`); NA where there
    is no valid address."""
    normalized = normalize_emails(emails)
    present = normalized.notna().to_numpy()
    digests = np.full(len(normalized), None, dtype=object)
    # hashlib has no vectorised form: one call per address, on the valid ones only.
    digests[present] = [
        hashlib.sha256(address.encode("utf-8")).hexdigest()
        for address in normalized[present].tolist()
    ]
    return pd.Series(digests, index=emails.index, name="email_sha256", dtype="str")


def retargeting_audience(
    scores: pd.DataFrame,
    settings: ActionSettings | None = None,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The retargeting audience of a scored base (``scores.parquet``), ranked from 1.

    Columns ``AUDIENCE_COLUMNS``, and ``email_sha256`` (digest, or NA) when ``customers`` (the
    customers table: ``customer_id`` and ``email``) is given.
    """
    settings = settings or ActionSettings()
    require(scores, _NEEDED)
    churn = numbers(scores, "churn_probability")
    risk = churn * numbers(scores, "clv")
    # Segments and tiers of the whole base, before anybody is left out.
    segments = lifecycle_segments(scores, settings)
    tiers = loyalty_tiers(scores["clv"], settings)
    late, _ = overdue(scores, settings.outreach)
    action = (
        scores["action"].astype("str") if "action" in scores.columns else recommend_actions(scores)
    )
    rules = settings.audience
    keep = (
        (churn >= rules.min_churn_probability)
        & (risk > 0)
        & (risk >= rules.min_value_at_risk)
        & ~action.isin(rules.exclude_actions).to_numpy()
    )
    chosen = pd.DataFrame(
        {
            "customer_id": scores["customer_id"].astype("str").to_numpy()[keep],
            "value_at_risk": risk[keep],
            "churn_probability": churn[keep],
            "clv": scores["clv"].to_numpy(dtype="float64")[keep],
            "p_alive": numbers(scores, "p_alive")[keep],
            "reason": _first_reason(scores["reasons"]).to_numpy()[keep],
            "lifecycle_segment": segments.array[keep],
            "loyalty_tier": tiers.array[keep],
            "segment": scores["segment"].astype("str").to_numpy()[keep],
            "action": action.to_numpy()[keep],
            "days_since_last_purchase": numbers(scores, "days_since_last_purchase")[keep],
            "overdue": late[keep],
        }
    )
    chosen = chosen.sort_values(
        ["value_at_risk", "customer_id"], ascending=[False, True], kind="stable"
    )
    if rules.max_size is not None:
        chosen = chosen.head(rules.max_size)
    chosen = chosen.reset_index(drop=True)
    chosen.insert(0, "rank", np.arange(1, len(chosen) + 1, dtype="int64"))
    audience = chosen[list(AUDIENCE_COLUMNS)]
    if customers is not None:
        audience = audience.assign(email_sha256=_digests(audience["customer_id"], customers))
    return audience


def write_audience(
    audience: pd.DataFrame, folder: Path, name: str = "retargeting"
) -> dict[str, int | str]:
    """Write ``<name>.csv`` (every column but the e-mail digest) and, when the audience holds
    ``email_sha256``, ``<name>_customer_match.csv`` (header ``Email``, one digest a row); without
    it, a customer-match file of an earlier audience of that name is removed, never left stale.

    Returns the paths written (``audience``, ``customer_match``) and the counts: ``rows``,
    ``customer_match_rows``, ``rows_without_email``, ``duplicate_emails``.
    """
    if not _NAME.fullmatch(name):
        raise RetainInputError(
            f"audience name {name!r}: use letters, digits, '.', '_' and '-' (a file name, no path)"
        )
    require(audience, ("customer_id",), table="audience")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = audience.drop(columns=["email_sha256", "email"], errors="ignore")
    written: dict[str, int | str] = {
        "audience": str(_write_csv(table, folder / f"{name}.csv")),
        "rows": len(table),
    }
    if "email_sha256" in audience.columns:
        digests = audience["email_sha256"]
        present = digests.dropna().astype("str")
        unique = present.drop_duplicates()
        match = pd.DataFrame({"Email": unique.to_numpy()})
        written |= {
            "customer_match": str(_write_csv(match, folder / f"{name}_customer_match.csv")),
            "customer_match_rows": len(unique),
            "rows_without_email": int(digests.isna().sum()),
            "duplicate_emails": len(present) - len(unique),
        }
    else:
        (folder / f"{name}_customer_match.csv").unlink(missing_ok=True)
    return written


def _first_reason(reasons: pd.Series) -> pd.Series:
    """The first reason of each row (lists, or arrays as parquet gives them); NA when none."""
    return reasons.str.get(0).astype("str")


def _digests(customer_ids: pd.Series, customers: pd.DataFrame) -> np.ndarray:
    """The e-mail digest of each audience customer (NA when unknown or without a valid e-mail)."""
    require(customers, ("customer_id", "email"), table="customers")
    known = pd.DataFrame(
        {
            "customer_id": customers["customer_id"].astype("str").str.strip().to_numpy(),
            "email_sha256": hash_emails(customers["email"]).to_numpy(),
        }
    )
    # A customer listed twice: the first valid address.
    known = known.dropna(subset=["email_sha256"]).drop_duplicates("customer_id")
    lookup = known.set_index("customer_id")["email_sha256"]
    return customer_ids.map(lookup).to_numpy()


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write a CSV whole or not at all (a temporary file beside it, then renamed)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_csv(temporary, index=False, date_format="%Y-%m-%d")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
