"""Fuzzing the live service from its own OpenAPI schema (``/docs.json``): no request it is sent,
valid by the schema or not, may make it answer 5xx.

Schemathesis generates the requests from the schema BentoML publishes for /predict and
/predict_features, both schema-valid ones (positive) and schema-breaking ones (negative), a bounded
number per operation and mode, derandomised so that a run repeats exactly. Random requests rarely
get past validation into the scoring, so two more fuzzers start from plausible requests: histories
with arbitrary times, zones, amounts and as-of days, and real feature rows with arbitrary values.

Each test runs twice: against the service as the session starts it (no token), and against one
started with ``RETAIN_SERVE_API_TOKEN`` set, where every request is sent with the right
``Authorization: Bearer`` header (and must get past the gate to validation and scoring: no 401)
and once more without it (a 401, whatever the body).

For a longer hunt: ``SERVING_FUZZ_EXAMPLES=500 SERVING_FUZZ_RANDOM=1 pytest tests/serving/test_schemathesis.py``
(more examples per test, and a new random seed each run).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from tests.serving.conftest import AS_OF, Server, Trained, json_rows, running_server, serving_env

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


TOKEN = "fuzz-token"


@dataclass(frozen=True)
class Target:
    """A server and the token it was started with (None: no token)."""

    server: Server
    token: str | None

    def headers(self) -> dict[str, str]:
        return {} if self.token is None else {"Authorization": f"Bearer {self.token}"}

    def check(self, status: int, request: Callable[[], Any], answer: Any, what: str) -> None:
        """What every answer must be: never a 5xx; with a token, never a 401 (the header is right);
        and on a server with a token, the same request without the header is a 401."""
        assert status < 500, f"{status} for {what}: {answer.text[:1000]}"
        if self.token is None:
            return
        assert status != 401, f"401 with the right token for {what}: {answer.text[:1000]}"
        refused = request()
        assert refused.status_code == 401, f"{refused.status_code} without the token for {what}"


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory, trained: Trained) -> Iterator[Server]:
    """The service with a token set (one worker: the fuzzers send one request at a time)."""
    env = serving_env(trained, RETAIN_SERVE_API_TOKEN=TOKEN, RETAIN_SERVE_WORKERS="1")
    with running_server(tmp_path_factory.mktemp("guarded"), env) as started:
        yield started


@pytest.fixture(params=["token-off", "token-on"])
def target(request: pytest.FixtureRequest, server: Server) -> Target:
    if request.param == "token-off":
        return Target(server, None)
    return Target(request.getfixturevalue("guarded_server"), TOKEN)


@pytest.mark.parametrize("path", ["/predict", "/predict_features"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_no_request_makes_a_server_error(target: Target, path: str, mode: GenerationMode) -> None:
    url = target.server.url
    # The schema as each server publishes it: open on a server with a token too.
    operation = schemathesis.openapi.from_url(f"{url}/docs.json")[path]["POST"]
    statuses: set[int] = set()

    @SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Case) -> None:
        response = case.call(base_url=url, timeout=60, headers=target.headers())
        statuses.add(response.status_code)
        target.check(
            response.status_code,
            lambda: case.call(base_url=url, timeout=60),
            response,
            repr(case.body),
        )

    call()
    assert statuses, "no request was sent"
    with target.server.client() as client:
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


# A request the model scores, tried first (Phase.explicit): the derandomised seed comes from the
# test's source, and a change to it can draw 50 requests none of which gets past validation.
SCORABLE = {
    "customers": [
        {
            "customer_id": "a",
            "transactions": [{"timestamp": "1998-01-05T10:00:00+00:00", "amount": 20.0}],
        }
    ],
    "as_of": AS_OF,
    "n_reasons": 3,
}


def test_no_history_makes_a_server_error(target: Target) -> None:
    statuses: set[int] = set()
    with target.server.client(**target.headers()) as client, target.server.client() as bare:

        @SETTINGS
        @hypothesis.example(body=SCORABLE)
        @given(body=predict_requests())
        def call(body: dict[str, Any]) -> None:
            response = client.post("/predict", json=body)
            statuses.add(response.status_code)
            target.check(
                response.status_code,
                lambda: bare.post("/predict", json=body),
                response,
                repr(body),
            )
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


def test_no_feature_row_makes_a_server_error(target: Target, trained: Trained) -> None:
    rows = json_rows(build_features(trained.transactions, AS_OF).head(3))
    columns = sorted(k for k in rows[0] if k != "customer_id")
    statuses: set[int] = set()
    with target.server.client(**target.headers()) as client, target.server.client() as bare:

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
            target.check(
                response.status_code,
                lambda: bare.post("/predict_features", json=body),
                response,
                f"{changes!r}, {as_of}",
            )
            if response.status_code == 200:
                answer = PredictResponse.model_validate(response.json())
                assert len(answer.predictions) == len(rows)

        call()
        assert 200 in statuses
        assert client.get("/livez").status_code == 200
