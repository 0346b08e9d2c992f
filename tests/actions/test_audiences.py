"""The retargeting audience: who is in it, in what order, and the files an ad platform accepts."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.actions.rows import scores

from retain.actions import (
    AUDIENCE_COLUMNS,
    ActionSettings,
    AudienceSettings,
    hash_emails,
    normalize_emails,
    retargeting_audience,
    write_audience,
)
from retain.errors import RetainInputError


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def risky(customer_id: str, churn: float, clv: float, **more: Any) -> dict[str, Any]:
    """A customer at risk whose recommended action is to win them back (unless ``more`` says)."""
    row = {"customer_id": customer_id, "churn_probability": churn, "clv": clv, "action": "win back"}
    return row | more


def audience_of(*rows: dict[str, Any], **settings: Any) -> pd.DataFrame:
    return retargeting_audience(
        scores(*rows), ActionSettings(audience=AudienceSettings(**settings))
    )


def test_ranked_by_value_at_risk() -> None:
    audience = audience_of(
        risky("a", 0.6, 10.0),  # 6
        risky("b", 0.9, 20.0),  # 18
        risky("c", 0.5, 30.0),  # 15
        risky("d", 0.8, 7.5),  # 6: tied with a, after it by id
    )
    assert list(audience.columns) == list(AUDIENCE_COLUMNS)
    assert audience["customer_id"].tolist() == ["b", "c", "a", "d"]
    assert audience["rank"].tolist() == [1, 2, 3, 4]
    assert audience["value_at_risk"].tolist() == pytest.approx([18, 15, 6, 6])
    assert audience.index.tolist() == [0, 1, 2, 3]


def test_the_top_reason_is_the_first() -> None:
    audience = audience_of(
        risky("a", 0.9, 10.0, reasons=["no order for 200 days", "spent 5 in all"]),
        risky("b", 0.9, 5.0, reasons=np.array(["fewer visits"], dtype=object)),
        risky("c", 0.9, 1.0, reasons=[]),
    )
    assert audience["reason"].tolist()[:2] == ["no order for 200 days", "fewer visits"]
    assert pd.isna(audience["reason"].iloc[2])


@pytest.mark.parametrize(
    ("row", "settings", "included"),
    [
        (risky("a", 0.5, 10.0), {}, True),
        (risky("a", 0.4999, 10.0), {}, False),  # not at risk enough
        (risky("a", 0.4, 10.0), {"min_churn_probability": 0.4}, True),
        (risky("a", 0.9, 0.0), {}, False),  # nothing at risk
        (risky("a", 0.9, 10.0), {"min_value_at_risk": 9.0}, True),
        (risky("a", 0.9, 10.0), {"min_value_at_risk": 9.01}, False),
        (risky("a", 0.9, 10.0, action="let go"), {}, False),
        (risky("a", 0.9, 10.0, action="let go"), {"exclude_actions": []}, True),
        (risky("a", 0.9, 10.0, action="win back"), {"exclude_actions": ["win back"]}, False),
        # On their own rhythm, or likely to buy anyway: not retargeted, whatever the churn risk.
        (risky("a", 0.9, 10.0, action="nurture"), {}, False),
        (risky("a", 0.9, 10.0, action="no discount"), {}, False),
        (risky("a", 0.9, 10.0, action="reactivate"), {}, True),
    ],
)
def test_who_is_in_it(row: dict[str, Any], settings: dict[str, Any], included: bool) -> None:
    assert len(audience_of(row, **settings)) == int(included)


def test_the_action_is_recommended_when_the_scores_lack_it() -> None:
    # Both 200 days since their last purchase, against a usual gap of 50: overdue.
    late = {"days_since_last_purchase": 200.0}
    table = scores(
        risky("a", 0.9, 10.0, p_alive=0.01, segment="Lost", **late), risky("b", 0.9, 10.0, **late)
    ).drop(columns="action")
    audience = retargeting_audience(table)
    assert audience["customer_id"].tolist() == ["b"]  # a: lapsed, P(alive) 1%, not valuable: let go
    assert audience["action"].tolist() == ["win back"]  # overdue, risky, and Loyal


def test_max_size_keeps_the_top() -> None:
    rows = [risky(f"c{i}", 0.9, float(i)) for i in range(1, 11)]
    audience = audience_of(*rows, max_size=3)
    assert audience["customer_id"].tolist() == ["c10", "c9", "c8"]


def test_segments_and_tiers_are_of_the_whole_base() -> None:
    # Nine quiet customers worth 100 and one risky worth 10: the risky one is Bronze in the base,
    # although alone in the audience.
    rows = [risky(f"q{i}", 0.1, 100.0 + i) for i in range(9)] + [risky("r", 0.9, 10.0)]
    audience = audience_of(*rows)
    assert audience["customer_id"].tolist() == ["r"]
    assert audience["loyalty_tier"].tolist() == ["Bronze"]
    assert audience["lifecycle_segment"].tolist() == ["steady"]
    assert audience["loyalty_tier"].cat.categories.tolist()[-1] == "Platinum"


def test_an_empty_audience() -> None:
    audience = audience_of(risky("a", 0.1, 10.0))
    assert audience.empty
    assert list(audience.columns) == list(AUDIENCE_COLUMNS)


@pytest.mark.parametrize("column", ["customer_id", "reasons", "segment", "churn_probability"])
def test_a_missing_column_is_named(column: str) -> None:
    with pytest.raises(RetainInputError, match=f"scores: missing column\\(s\\) {column}"):
        retargeting_audience(scores(risky("a", 0.9, 10.0)).drop(columns=column))


# -- e-mails ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "normalized"),
    [
        ("  John.Doe@Example.COM ", "john.doe@example.com"),
        ("\tjohn.doe@example.com\n", "john.doe@example.com"),
        ("John.Doe@Gmail.com", "johndoe@gmail.com"),
        (" j.o.h.n+news@GOOGLEMAIL.COM", "john+news@googlemail.com"),
        ("john.doe@gmail.com.au", "john.doe@gmail.com.au"),  # not Gmail
        ("john.doe@mail.gmail.com", "john.doe@mail.gmail.com"),
    ],
)
def test_normalization_and_known_digests(email: str, normalized: str) -> None:
    emails = pd.Series([email])
    assert normalize_emails(emails).tolist() == [normalized]
    assert hash_emails(emails).tolist() == [sha256(normalized)]


def test_a_known_digest() -> None:
    digest = hash_emails(pd.Series(["  John.Doe@Example.COM "])).iloc[0]
    assert digest == "836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f"
    assert digest == sha256("john.doe@example.com")


@pytest.mark.parametrize(
    "email",
    [
        None,
        np.nan,
        "",
        "   ",
        "john",
        "john@",
        "@example.com",
        "john@localhost",
        "a b@c.com",
        "a@b@c.com",
    ],
)
def test_invalid_addresses_have_no_digest(email: object) -> None:
    assert hash_emails(pd.Series([email], dtype=object)).isna().all()


def test_hash_emails_keeps_the_index() -> None:
    digests = hash_emails(pd.Series(["a@b.co", None], index=[5, 9]))
    assert digests.index.tolist() == [5, 9]
    assert digests.name == "email_sha256"


PEOPLE = {
    "a": "  Ann.Smith@Example.COM ",
    "b": "bob.jones@gmail.com",
    "c": None,  # no address
    "d": "not an address",
    "e": "BOBJONES@gmail.com",  # the same Gmail account as b
}


def customers() -> pd.DataFrame:
    frame = pd.DataFrame({"customer_id": list(PEOPLE), "email": list(PEOPLE.values())})
    return frame.astype({"customer_id": "str", "email": "str"})


def people_audience() -> pd.DataFrame:
    rows = [risky(c, 0.9, 10.0 - i) for i, c in enumerate([*PEOPLE, "f"])]  # f: not a customer
    return retargeting_audience(scores(*rows), customers=customers())


def test_the_audience_holds_digests_not_addresses() -> None:
    audience = people_audience()
    assert audience["email_sha256"].tolist()[:2] == [
        sha256("ann.smith@example.com"),
        sha256("bobjones@gmail.com"),
    ]
    assert audience["email_sha256"].iloc[2:4].isna().all()
    assert audience["email_sha256"].iloc[4] == sha256("bobjones@gmail.com")
    assert pd.isna(audience["email_sha256"].iloc[5])
    assert "email" not in audience.columns


def test_write_audience(tmp_path: Path) -> None:
    audience = people_audience()
    written = write_audience(audience, tmp_path / "out", "winback")
    assert written == {
        "audience": str(tmp_path / "out" / "winback.csv"),
        "rows": 6,
        "customer_match": str(tmp_path / "out" / "winback_customer_match.csv"),
        "customer_match_rows": 2,
        "rows_without_email": 3,
        "duplicate_emails": 1,
    }
    table = pd.read_csv(tmp_path / "out" / "winback.csv")
    assert table.columns.tolist() == list(AUDIENCE_COLUMNS)
    assert table["customer_id"].tolist() == ["a", "b", "c", "d", "e", "f"]
    assert table["value_at_risk"].tolist() == pytest.approx([9, 8.1, 7.2, 6.3, 5.4, 4.5])
    match = (tmp_path / "out" / "winback_customer_match.csv").read_text()
    assert match.splitlines() == [
        "Email",
        sha256("ann.smith@example.com"),
        sha256("bobjones@gmail.com"),
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "winback.csv",
        "winback_customer_match.csv",
    ]


def test_no_address_reaches_a_file(tmp_path: Path) -> None:
    write_audience(people_audience(), tmp_path)
    text = "".join(p.read_text().lower() for p in tmp_path.iterdir())
    for address in filter(None, PEOPLE.values()):
        for part in (address.strip().lower(), address.strip().lower().split("@")[0]):
            assert part not in text
    assert "@" not in text
    assert "email_sha256" not in (tmp_path / "retargeting.csv").read_text()


def test_without_customers_no_customer_match_file(tmp_path: Path) -> None:
    audience = audience_of(risky("a", 0.9, 10.0))
    written = write_audience(audience, tmp_path)
    assert written == {"audience": str(tmp_path / "retargeting.csv"), "rows": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["retargeting.csv"]


def test_a_rewrite_replaces_the_files(tmp_path: Path) -> None:
    write_audience(people_audience(), tmp_path)
    write_audience(people_audience().head(1), tmp_path)
    assert len(pd.read_csv(tmp_path / "retargeting.csv")) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "retargeting.csv",
        "retargeting_customer_match.csv",
    ]
    assert len(pd.read_csv(tmp_path / "retargeting_customer_match.csv")) == 1
    # Without e-mails this time: the old customer-match list must not stay behind.
    write_audience(people_audience().drop(columns="email_sha256"), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["retargeting.csv"]


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "with space"])
def test_write_audience_refuses_a_path_as_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(RetainInputError, match="audience name"):
        write_audience(people_audience(), tmp_path, name)


def test_customers_without_email_are_refused() -> None:
    with pytest.raises(RetainInputError, match=r"customers: missing column\(s\) email"):
        retargeting_audience(
            scores(risky("a", 0.9, 10.0)), customers=pd.DataFrame({"customer_id": ["a"]})
        )
