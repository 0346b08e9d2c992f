"""Fuzzing the live service from its own OpenAPI schema (``/docs.json``): no request it is sent,
valid by the schema or not, may make it answer 5xx.

Schemathesis generates the requests from the schema BentoML publishes for /predict and
/predict_features, both schema-valid ones (positive) and schema-breaking ones (negative), a bounded
number per operation and mode, derandomised so that a run repeats exactly. Random requests rarely
get past validation into the scoring, so two more fuzzers start from plausible requests: histories
with arbitrary times, zones, amounts and as-of days, and real feature rows with arbitrary values.

For a longer hunt: ``SERVING_FUZZ_EXAMPLES=500 SERVING_FUZZ_RANDOM=1 pytest tests/serving/test_schemathesis.py``
(more examples per test, and a new random seed each run).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from tests.serving.conftest import AS_OF, Server, Trained, json_rows

from retain.features import build_features
from retain.serving.schemas import PredictResponse

MAX_EXAMPLES = int(os.environ.get("SERVING_FUZZ_EXAMPLES", "50"))
SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=os.environ.get("SERVING_FUZZ_RANDOM") is None,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def schema(server: Server) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/docs.json")


@pytest.mark.parametrize("path", ["/predict", "/predict_features"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_no_request_makes_a_server_error(
    schema: schemathesis.BaseSchema, server: Server, path: str, mode: GenerationMode
) -> None:
    operation = schema[path]["POST"]
    statuses: set[int] = set()

    @SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Case) -> None:
        response = case.call(base_url=server.url, timeout=60)
        statuses.add(response.status_code)
        assert response.status_code < 500, (
            f"{response.status_code} for {case.body!r}: {response.text[:1000]}"
        )

    call()
    assert statuses, "no request was sent"
    with server.client() as client:
        assert client.get("/livez").status_code == 200


# -- plausible requests with arbitrary values --------------------------------------------------------

zones: Any = st.one_of(
    st.none(),
    st.timedeltas(min_value=dt.timedelta(hours=-23), max_value=dt.timedelta(hours=23)).map(
        lambda offset: dt.timezone(dt.timedelta(minutes=offset // dt.timedelta(minutes=1)))
    ),
)
stamps = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=zones
)
amounts = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from([0.0, -0.0, 1e-300, 20.0, -20.0]),
)
transactions = st.fixed_dictionaries(
    {"timestamp": stamps.map(dt.datetime.isoformat), "amount": amounts},
    optional={
        "order_id": st.text(min_size=1, max_size=5),
        "product_id": st.text(min_size=1, max_size=5),
        "category": st.sampled_from(["a", "b"]),
        "quantity": st.floats(allow_nan=False, allow_infinity=False),
        "discount": st.floats(allow_nan=False, allow_infinity=False),
    },
)
events = st.fixed_dictionaries(
    {
        "timestamp": stamps.map(dt.datetime.isoformat),
        "event_type": st.sampled_from(["session", "add_to_cart", "email_open", "other"]),
    }
)


@st.composite
def predict_requests(draw: st.DrawFn) -> dict[str, Any]:
    ids = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4, unique=True))
    customers = []
    for customer_id in ids:
        customer: dict[str, Any] = {
            "customer_id": customer_id,
            "transactions": draw(st.lists(transactions, min_size=1, max_size=6)),
        }
        if draw(st.booleans()):
            customer["events"] = draw(st.lists(events, max_size=4))
        customers.append(customer)
    as_of = draw(
        st.one_of(
            st.just(AS_OF),
            st.dates(min_value=dt.date(1, 1, 1)).map(dt.date.isoformat),
        )
    )
    return {"customers": customers, "as_of": as_of, "n_reasons": draw(st.integers(0, 10))}


def test_no_history_makes_a_server_error(server: Server) -> None:
    statuses: set[int] = set()
    with server.client() as client:

        @SETTINGS
        @given(body=predict_requests())
        def call(body: dict[str, Any]) -> None:
            response = client.post("/predict", json=body)
            statuses.add(response.status_code)
            assert response.status_code < 500, f"{body!r}: {response.text[:1000]}"
            if response.status_code == 200:
                answer = PredictResponse.model_validate(response.json())
                assert [p.customer_id for p in answer.predictions] == [
                    c["customer_id"] for c in body["customers"]
                ]

        call()
        assert 200 in statuses
        assert client.get("/livez").status_code == 200


feature_values = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**9), max_value=10**9),
    st.sampled_from([0.0, 1.0, -1.0, 1e308, 1e-308]),
)


def test_no_feature_row_makes_a_server_error(server: Server, trained: Trained) -> None:
    rows = json_rows(build_features(trained.transactions, AS_OF).head(3))
    columns = sorted(k for k in rows[0] if k != "customer_id")
    statuses: set[int] = set()
    with server.client() as client:

        @SETTINGS
        @given(
            changes=st.lists(
                st.dictionaries(st.sampled_from(columns), feature_values, max_size=6),
                min_size=3,
                max_size=3,
            ),
            as_of=st.one_of(st.just(AS_OF), st.dates().map(dt.date.isoformat)),
        )
        def call(changes: list[dict[str, Any]], as_of: str) -> None:
            body = {
                "rows": [row | change for row, change in zip(rows, changes, strict=True)],
                "as_of": as_of,
            }
            response = client.post("/predict_features", json=body)
            statuses.add(response.status_code)
            assert response.status_code < 500, f"{changes!r}, {as_of}: {response.text[:1000]}"
            if response.status_code == 200:
                answer = PredictResponse.model_validate(response.json())
                assert len(answer.predictions) == len(rows)

        call()
        assert 200 in statuses
        assert client.get("/livez").status_code == 200
