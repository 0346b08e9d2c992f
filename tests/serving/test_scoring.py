"""The service's work without HTTP: the Scorer's limits, conversions and checks."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError
from tests.serving.conftest import AS_OF, VERSION, Trained, histories, json_rows

from retain.actions import ACTIONS
from retain.errors import RetainInputError
from retain.features import build_features
from retain.models.retention import RetentionModel
from retain.models.trees import warmed
from retain.serving.schemas import FeatureRequest, PredictRequest, PredictResponse
from retain.serving.scoring import _LATEST_AS_OF, EXPORT_MODEL, RequestTooLarge, Scorer, _utc
from retain.serving.settings import ServingSettings


@pytest.fixture(scope="module")
def scorer(trained: Trained) -> Scorer:
    settings = ServingSettings(model_dir=trained.model_dir, max_customers=3, max_transactions=4)
    return Scorer.load(settings)


def request(*customers: dict[str, Any], **fields: Any) -> PredictRequest:
    """A request as the service parses it: from JSON text."""
    body = {"customers": list(customers), "as_of": AS_OF} | fields
    return PredictRequest.model_validate_json(json.dumps(body))


def buyer(customer_id: str = "c1", *stamps: str, amount: Any = 20.0) -> dict[str, Any]:
    lines = [{"timestamp": s, "amount": amount} for s in stamps or ("1998-01-10T12:00:00",)]
    return {"customer_id": customer_id, "transactions": lines}


def scores(response: PredictResponse) -> list[dict[str, Any]]:
    return [p.model_dump() for p in response.predictions]


# -- loading -----------------------------------------------------------------------------------------


def test_an_export_is_loaded_with_its_version(scorer: Scorer, trained: Trained) -> None:
    assert scorer.version == VERSION
    assert scorer.source == str(trained.model_dir / EXPORT_MODEL)
    assert scorer.model.feature_names_ == trained.model.feature_names_


def test_a_loaded_model_serves_from_compiled_trees(scorer: Scorer) -> None:
    prepared = warmed(scorer.model.churn_.booster_)
    assert prepared is not None and prepared.tables is not None


def test_a_model_whose_trees_cannot_compile_still_loads_and_scores(
    trained: Trained, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # As when numba cannot compile or cache in an image: the failure costs speed, not service.
    def unavailable(self: object) -> object:
        raise RuntimeError("cannot cache function: no locator available")

    monkeypatch.setattr(RetentionModel, "warm", unavailable)
    loaded = Scorer.load(ServingSettings(model_dir=trained.model_dir))
    assert warmed(loaded.model.churn_.booster_) is None
    assert "compiled trees unavailable" in caplog.text
    assert len(loaded.predict(request(buyer("c1"))).predictions) == 1


def test_a_model_uri_wins_over_the_export(trained: Trained) -> None:
    path = str(trained.model_dir / EXPORT_MODEL)
    loaded = Scorer.load(ServingSettings(model_uri=path, model_dir=trained.model_dir))
    assert loaded.source == path
    assert loaded.version == path  # a path has no registry version: the path is the version


def test_the_settings_come_from_retain_serve_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIN_SERVE_MAX_CUSTOMERS", "7")
    monkeypatch.setenv("RETAIN_SERVE_API_TOKEN", "t")
    settings = ServingSettings()
    assert (settings.max_customers, settings.api_token, settings.model_uri) == (7, "t", None)
    assert settings.workers == "cpu_count"  # counted by BentoML at start-up, within CPU quotas
    monkeypatch.setenv("RETAIN_SERVE_WORKERS", "3")
    assert ServingSettings().workers == 3
    monkeypatch.setenv("RETAIN_SERVE_WORKERS", "0")
    with pytest.raises(ValueError, match="workers"):
        ServingSettings()


# -- limits ------------------------------------------------------------------------------------------


def test_customers_up_to_the_limit(scorer: Scorer) -> None:
    answer = scorer.predict(request(*(buyer(f"c{i}") for i in range(3))))
    assert [p.customer_id for p in answer.predictions] == ["c0", "c1", "c2"]
    with pytest.raises(RequestTooLarge, match=r"customers: 4 customers, more than the limit of 3"):
        scorer.predict(request(*(buyer(f"c{i}") for i in range(4))))


def test_transactions_and_events_up_to_the_limit(scorer: Scorer) -> None:
    stamps = [f"1998-01-{d:02d}" for d in range(1, 6)]
    scorer.predict(request(buyer("c1", *stamps[:4])))
    with pytest.raises(RequestTooLarge, match=r"customers\[1\]\.transactions: 5 rows .* 'c2'"):
        scorer.predict(request(buyer("c1"), buyer("c2", *stamps)))
    events = [{"timestamp": s, "event_type": "session"} for s in stamps]
    with pytest.raises(RequestTooLarge, match=r"customers\[0\]\.events: 5 rows"):
        scorer.predict(request(buyer("c1") | {"events": events}))
    assert scorer.predict(request(buyer("c1") | {"events": events[:4]})).predictions


def test_feature_rows_up_to_the_limit(scorer: Scorer) -> None:
    rows = [{"customer_id": f"c{i}"} for i in range(4)]
    with pytest.raises(RequestTooLarge, match="rows: 4 feature rows, more than the limit of 3"):
        scorer.predict_features(FeatureRequest(rows=rows, as_of=dt.date(1998, 3, 31)))


def test_a_too_large_request_is_an_input_error() -> None:
    assert issubclass(RequestTooLarge, RetainInputError)


# -- conversions -------------------------------------------------------------------------------------


def test_utc() -> None:
    naive = dt.datetime(1998, 3, 31, 23, 30)
    zoned = dt.datetime(1998, 3, 31, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    micro = dt.datetime(2001, 2, 3, 4, 5, 6, 789012, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    early = dt.datetime(1901, 1, 1, 0, 0, 0, 1)  # before the epoch: floor division must hold
    stamps = _utc([naive, zoned, micro, early])
    assert str(stamps.dtype) == "datetime64[us, UTC]"
    assert stamps.tolist() == [
        pd.Timestamp("1998-03-31 23:30", tz="UTC"),
        pd.Timestamp("1998-04-01 04:30", tz="UTC"),
        pd.Timestamp("2001-02-02 19:05:06.789012", tz="UTC"),
        pd.Timestamp("1901-01-01 00:00:00.000001", tz="UTC"),
    ]


def test_naive_timestamps_are_utc(scorer: Scorer) -> None:
    stamps = ("1997-06-01T10:00:00", "1997-11-20T08:00:00", "1998-03-31T23:59:59")
    naive = scorer.predict(request(buyer("c1", *stamps)))
    utc = scorer.predict(request(buyer("c1", *(s + "Z" for s in stamps))))
    assert scores(naive) == scores(utc)


def test_zoned_timestamps_are_converted_to_utc(scorer: Scorer) -> None:
    # 1998-04-01 01:00 in Paris is 1998-03-31 23:00 UTC: on the as_of day...
    paris = scorer.predict(request(buyer("c1", "1997-06-01T10:00:00", "1998-04-01T01:00:00+02:00")))
    utc = scorer.predict(request(buyer("c1", "1997-06-01T10:00:00", "1998-03-31T23:00:00")))
    assert scores(paris) == scores(utc)
    # ... and 1998-03-31 23:30 in New York is 1998-04-01 04:30 UTC: after it.
    new_york = scorer.predict(
        request(buyer("c1", "1997-06-01T10:00:00", "1998-03-31T23:30:00-05:00"))
    )
    before = scorer.predict(request(buyer("c1", "1997-06-01T10:00:00")))
    assert scores(new_york) == scores(before)
    with pytest.raises(RetainInputError, match=r"no purchase .* 'c1'"):
        scorer.predict(request(buyer("c1", "1998-03-31T23:30:00-05:00")))


def late_history(trained: Trained) -> list[pd.Timestamp]:
    """The purchase instants (CDNOW days) of the first customer with four purchases (the scorer's
    limit), moved to 20:00 UTC: late enough in the UTC day that Auckland's wall clock (UTC+12/+13)
    shows the next day."""
    tx = trained.transactions
    sizes = tx.groupby("customer_id").size()
    stamps = tx.loc[tx["customer_id"] == sizes[sizes == 4].index[0], "timestamp"]
    return [stamp + pd.Timedelta(hours=20) for stamp in stamps]


def test_naive_timestamps_are_read_in_the_request_timezone(
    scorer: Scorer, trained: Trained
) -> None:
    """The same purchases as Auckland wall-clock times with timezone=Pacific/Auckland, as UTC
    instants ("Z") or with Auckland's offsets score the same; read as UTC, the wall-clock times
    fall a day later and score otherwise."""
    instants = late_history(trained)
    local = [stamp.tz_convert("Pacific/Auckland") for stamp in instants]
    assert all(w.date() != i.date() for w, i in zip(local, instants, strict=True))  # a day later
    wall = [w.tz_localize(None).isoformat() for w in local]
    in_auckland = scorer.predict(
        request(buyer("c1", *wall), timezone="Pacific/Auckland", as_of="1998-06-30")
    )
    as_utc = scorer.predict(
        request(
            buyer("c1", *(i.strftime("%Y-%m-%dT%H:%M:%SZ") for i in instants)), as_of="1998-06-30"
        )
    )
    with_offsets = scorer.predict(
        request(
            buyer("c1", *(w.isoformat() for w in local)),
            timezone="Pacific/Auckland",
            as_of="1998-06-30",
        )
    )
    assert scores(in_auckland) == scores(as_utc) == scores(with_offsets)
    naive_utc = scorer.predict(request(buyer("c1", *wall), as_of="1998-06-30"))
    assert scores(naive_utc)[0]["churn_probability"] != scores(in_auckland)[0]["churn_probability"]


def test_zoned_timestamps_ignore_the_request_timezone(scorer: Scorer) -> None:
    stamps = ("1997-06-01T10:00:00+02:00", "1998-03-31T23:30:00-05:00", "1998-02-01T12:00:00Z")
    in_london = scorer.predict(request(buyer("c1", *stamps), timezone="Europe/London"))
    assert scores(in_london) == scores(scorer.predict(request(buyer("c1", *stamps))))


def test_wall_times_the_clocks_repeat_or_skip_are_refused_by_their_paths(scorer: Scorer) -> None:
    """1997-10-26 01:30 happened twice in London (the clocks went back at 02:00 BST) and
    1998-03-29 01:30 never happened (they went forward at 01:00 GMT): which instant is meant
    cannot be known, so the request is refused naming each timestamp and what is wrong with it, as
    a file's rows are set aside under ``--ambiguous-times refuse`` (not moved forward quietly)."""
    twice = buyer("c2", "1997-06-01T10:00:00", "1997-10-26T01:30:00")
    skipped = buyer("c3", "1998-03-29T01:30:00")
    body = request(buyer("c1"), twice, skipped, timezone="Europe/London")
    with pytest.raises(RetainInputError) as refused:
        scorer.predict(body)
    assert str(refused.value) == (
        "timestamps: some without an offset name no single instant in Europe/London: "
        "1 do not exist (the clocks go forward over them): "
        "customers[2].transactions[0].timestamp (1998-03-29T01:30:00); "
        "1 are ambiguous (the clocks go back and that time happens twice): "
        "customers[1].transactions[1].timestamp (1997-10-26T01:30:00); give them an offset"
    )
    with_offset = scorer.predict(request(buyer("c1", "1998-03-29T01:30:00+01:00")))
    assert len(with_offset.predictions) == 1
    events = buyer("c1") | {
        "events": [{"timestamp": "1997-10-26T01:30:00", "event_type": "session"}]
    }
    with pytest.raises(RetainInputError, match=r"customers\[0\]\.events\[0\]\.timestamp"):
        scorer.predict(request(events, timezone="Europe/London"))


def test_an_id_written_as_a_decimal_is_the_customer_a_file_would_name(scorer: Scorer) -> None:
    """Issue 17, finding 9: "12346.0" is customer "12346" in a request as in a CSV file, so the
    answer names the id the batch scores use, and the two spellings are one customer."""
    answer = scorer.predict(request(buyer("12346.0"), buyer("00042.00"), buyer("A7.0")))
    assert [p.customer_id for p in answer.predictions] == ["12346", "00042", "A7.0"]
    same = scorer.predict(request(buyer("12346")))
    assert scores(same) == scores(answer)[:1]
    with pytest.raises(RetainInputError, match=r"customers\[1\]\.customer_id: '12346' is also"):
        scorer.predict(request(buyer("12346"), buyer(" 12346.00 ")))


def test_an_unknown_time_zone_is_refused_naming_the_field() -> None:
    for zone in ("Europe/Lodnon", "../../etc/passwd", ""):
        with pytest.raises(ValidationError) as refused:
            request(buyer("c1"), timezone=zone)
        (problem,) = refused.value.errors()
        assert problem["loc"] == ("timezone",), problem
    with pytest.raises(ValidationError, match="unknown time zone 'Europe/Lodnon'; give an IANA"):
        request(buyer("c1"), timezone="Europe/Lodnon")
    assert request(buyer("c1")).timezone == "UTC"
    # As the CLI reads --timezone: 'utc' in any case is UTC; other names keep their case.
    assert request(buyer("c1"), timezone="utc").timezone == "UTC"
    with pytest.raises(ValidationError, match="unknown time zone 'europe/london'"):
        request(buyer("c1"), timezone="europe/london")


def test_integer_amounts_are_amounts(scorer: Scorer) -> None:
    as_ints = request(buyer("c1", "1998-01-10", "1998-02-10", amount=20))
    assert isinstance(as_ints.customers[0].transactions[0].amount, float)
    as_floats = request(buyer("c1", "1998-01-10", "1998-02-10", amount=20.0))
    assert scores(scorer.predict(as_ints)) == scores(scorer.predict(as_floats))


def test_the_scores_are_the_batch_scores_in_request_order(scorer: Scorer, trained: Trained) -> None:
    batch = trained.model.predict(trained.transactions, AS_OF).set_index("customer_id")
    ids = [str(batch.index[i]) for i in (1500, 10, 700)]  # not in the table's order
    answer = scorer.predict(request(*histories(trained.transactions, ids)))
    assert answer.model_version == VERSION
    assert answer.as_of == dt.date(1998, 3, 31)
    got = pd.DataFrame(scores(answer)).set_index("customer_id")
    assert got.index.tolist() == ids
    for column in ("churn_probability", "p_alive", "expected_purchases", "clv"):
        assert got[column].tolist() == pytest.approx(batch.loc[ids, column].tolist(), rel=1e-12)
    assert set(got["action"]) <= set(ACTIONS)
    assert set(got["model_version"]) == {VERSION}


def test_feature_rows_keep_no_segment_of_their_own(scorer: Scorer, trained: Trained) -> None:
    """``retain features`` segments its own population; the model's segments are used instead."""
    table = build_features(trained.transactions, AS_OF)
    rows = json_rows(table.head(3))
    as_of = dt.date(1998, 3, 31)
    plain = scorer.predict_features(FeatureRequest(rows=rows, as_of=as_of))
    relabelled = [row | {"segment": "Lost", "r_score": 1, "rfm_score": 111} for row in rows]
    assert scores(scorer.predict_features(FeatureRequest(rows=relabelled, as_of=as_of))) == scores(
        plain
    )
    stripped = [
        {k: v for k, v in row.items() if k not in ("segment", "r_score", "rfm_score")}
        for row in rows
    ]
    assert scores(scorer.predict_features(FeatureRequest(rows=stripped, as_of=as_of))) == scores(
        plain
    )


# -- unscorable requests -----------------------------------------------------------------------------


def test_customers_without_a_purchase_by_as_of_are_named(scorer: Scorer) -> None:
    with pytest.raises(RetainInputError, match=r"customers: 2 have no purchase .* 'late', 'gone'"):
        scorer.predict(
            request(buyer("ok"), buyer("late", "1998-04-01"), buyer("gone", amount=-5.0))
        )


def test_a_customer_sent_twice_is_refused(scorer: Scorer) -> None:
    with pytest.raises(RetainInputError, match=r"customers\[1\]\.customer_id: 'c1' is also"):
        scorer.predict(request(buyer("c1"), buyer("c1", "1998-02-01")))


def test_the_latest_as_of(scorer: Scorer) -> None:
    latest = scorer.predict(request(buyer("c1"), as_of=_LATEST_AS_OF.isoformat()))
    date = latest.predictions[0].expected_next_purchase_date
    assert date is None or date <= dt.date.max  # None: no purchase expected within the horizon
    later = (_LATEST_AS_OF + dt.timedelta(days=1)).isoformat()
    with pytest.raises(RetainInputError, match=f"as_of: {later} is too late"):
        scorer.predict(request(buyer("c1"), as_of=later))


def test_feature_rows_without_a_customer_id_are_named(scorer: Scorer) -> None:
    rows: list[dict[str, Any]] = [{"customer_id": "a"}, {}, {"customer_id": None}]
    with pytest.raises(RetainInputError, match=r"2 have none: rows\[1\], rows\[2\]"):
        scorer.predict_features(FeatureRequest(rows=rows, as_of=dt.date(1998, 3, 31)))


def test_feature_values_that_are_not_numbers_are_named_by_column(scorer: Scorer) -> None:
    rows: list[dict[str, Any]] = [
        {"customer_id": "a", "frequency": "many", "recency": 2.0},
        {"customer_id": "b", "frequency": "lots", "recency": "long ago", "T": None},
        {"customer_id": "c", "frequency": "3", "recency": 1.0},  # a number in text is a number
    ]
    expected = (
        "rows: feature values must be numbers or null: frequency in 2 rows (rows[0] is 'many'); "
        "recency in 1 row (rows[1] is 'long ago')"
    )
    with pytest.raises(RetainInputError) as raised:
        scorer.predict_features(FeatureRequest(rows=rows, as_of=dt.date(1998, 3, 31)))
    assert str(raised.value) == expected


def test_feature_rows_may_leave_out_columns_and_segments(scorer: Scorer, trained: Trained) -> None:
    """A feature missing from one row (or null) is unknown to that customer only, and the segment
    columns of `retain features` output are replaced by the model's own."""
    table = build_features(trained.transactions, AS_OF).head(2)
    rows = json_rows(table)
    assert not pd.isna(table["ipt_std"].iloc[0])  # the value left out matters to the model
    rows[0].pop("ipt_std")
    rows[1]["segment"] = "not a segment"
    answer = scorer.predict_features(FeatureRequest(rows=rows, as_of=dt.date(1998, 3, 31)))
    expected = table.assign(ipt_std=[float("nan"), table["ipt_std"].iloc[1]])
    scores = trained.model.score_features(trained.model.complete_features(expected), AS_OF)
    got = [p.churn_probability for p in answer.predictions]
    assert got == pytest.approx(scores["churn_probability"].tolist(), rel=1e-12)
    assert [p.segment for p in answer.predictions] == scores["segment"].astype(str).tolist()
