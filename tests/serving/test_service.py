"""The HTTP service as a client sees it: the real ``bentoml serve`` process, its answers and errors.

The scores it returns are the batch job's (``RetentionModel.predict``) for the same histories; every
mistake of a caller is a 4xx that names the field or the customers, never a 500, and the server keeps
answering afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from tests.helpers import PREDICTED_FLOATS
from tests.serving.conftest import (
    AS_OF,
    MAX_CUSTOMERS,
    MAX_TRANSACTIONS,
    VERSION,
    Server,
    Trained,
    histories,
    json_rows,
    running_server,
    serving_env,
)

from retain.actions import ACTIONS
from retain.features import build_features
from retain.serving.schemas import Prediction

N_CUSTOMERS = 20


@pytest.fixture(scope="module")
def batch(trained: Trained) -> pd.DataFrame:
    """The batch job's scores of every customer, by customer_id."""
    return trained.model.predict(trained.transactions, AS_OF).set_index("customer_id")


@pytest.fixture(scope="module")
def customer_ids(batch: pd.DataFrame) -> list[str]:
    """Twenty customers spread over the table (every segment of the sample is among them)."""
    ids = batch.sort_values(["segment", "churn_probability"]).index
    step = len(ids) // N_CUSTOMERS
    return [str(c) for c in ids[::step][:N_CUSTOMERS]]


@pytest.fixture(scope="module")
def client(server: Server) -> httpx.Client:
    return server.client()


def assert_same_scores(answer: dict[str, Any], batch: pd.DataFrame, ids: list[str]) -> None:
    assert answer["as_of"] == AS_OF
    assert answer["model_version"] == VERSION
    got = pd.DataFrame(answer["predictions"])
    assert got["customer_id"].tolist() == ids
    expected = batch.loc[ids].reset_index()
    for column in PREDICTED_FLOATS:
        # JSON null (no purchase expected within the horizon) where the batch has NaN.
        values = got[column].astype("float64").to_numpy()
        assert values == pytest.approx(
            expected[column].to_numpy(), rel=1e-9, abs=1e-9, nan_ok=True
        ), column
    assert got["segment"].tolist() == expected["segment"].astype(str).tolist()
    assert got["reasons"].tolist() == expected["reasons"].tolist()
    dates = [
        None if pd.isna(d) else d.date().isoformat()
        for d in expected["expected_next_purchase_date"]
    ]
    # From the JSON itself: a DataFrame would turn null into NaN.
    assert [p["expected_next_purchase_date"] for p in answer["predictions"]] == dates
    assert set(got["model_version"]) == {VERSION}
    assert set(got["action"]) <= set(ACTIONS)


# -- the scores ------------------------------------------------------------------------------------


def test_predict_gives_the_batch_scores(
    client: httpx.Client, trained: Trained, batch: pd.DataFrame, customer_ids: list[str]
) -> None:
    assert len(set(batch.loc[customer_ids, "segment"])) >= 5  # a varied sample
    body = {"customers": histories(trained.transactions, customer_ids), "as_of": AS_OF}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    assert_same_scores(response.json(), batch, customer_ids)


def test_predict_of_one_customer_is_their_batch_score(
    client: httpx.Client, trained: Trained, batch: pd.DataFrame, customer_ids: list[str]
) -> None:
    """A customer alone in a request scores as among the whole population (no batch effects)."""
    ids = customer_ids[3:4]
    body = {"customers": histories(trained.transactions, ids), "as_of": AS_OF}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    assert_same_scores(response.json(), batch, ids)


def test_no_expected_purchase_is_answered_with_nulls(
    client: httpx.Client, trained: Trained, batch: pd.DataFrame
) -> None:
    """A customer the timing model expects no purchase from within the horizon gets null days and
    date in the JSON (not a date decades away), beside one who gets both; as in the batch."""
    unknown = batch.index[batch["days_to_next_purchase"].isna()][0]
    known = batch.index[batch["days_to_next_purchase"].notna()][0]
    ids = [str(unknown), str(known)]
    body = {"customers": histories(trained.transactions, ids), "as_of": AS_OF}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    first, second = response.json()["predictions"]
    assert first["days_to_next_purchase"] is None
    assert first["expected_next_purchase_date"] is None
    assert 0 < second["days_to_next_purchase"] <= trained.model.horizon_days
    assert dt.date.fromisoformat(second["expected_next_purchase_date"]) > dt.date.fromisoformat(
        AS_OF
    )
    assert_same_scores(response.json(), batch, ids)


def test_n_reasons_is_the_number_of_reasons(
    client: httpx.Client, trained: Trained, customer_ids: list[str]
) -> None:
    ids = customer_ids[:5]
    expected = trained.model.predict(
        trained.transactions.loc[trained.transactions["customer_id"].isin(ids)],
        AS_OF,
        n_reasons=1,
    ).set_index("customer_id")
    for n in (0, 1):
        body = {"customers": histories(trained.transactions, ids), "as_of": AS_OF, "n_reasons": n}
        response = client.post("/predict", json=body)
        assert response.status_code == 200, response.text
        reasons = [p["reasons"] for p in response.json()["predictions"]]
        assert reasons == ([[]] * len(ids) if n == 0 else expected.loc[ids, "reasons"].tolist())


def test_as_of_defaults_to_today(client: httpx.Client) -> None:
    body = {"customers": [customer("c1")]}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    today = dt.datetime.now(dt.UTC).date()
    assert dt.date.fromisoformat(response.json()["as_of"]) in (today, today - dt.timedelta(1))


def test_predict_features_gives_the_batch_scores(
    client: httpx.Client, trained: Trained, batch: pd.DataFrame, customer_ids: list[str]
) -> None:
    """Rows as ``retain features`` writes them (segments and RFM scores included, NaN as null)."""
    table = build_features(trained.transactions, AS_OF)
    rows = table.set_index("customer_id").loc[customer_ids].reset_index()
    body: dict[str, Any] = {"rows": json_rows(rows), "as_of": AS_OF}
    assert isinstance(body["rows"][0]["segment"], str)
    response = client.post("/predict_features", json=body)
    assert response.status_code == 200, response.text
    assert_same_scores(response.json(), batch, customer_ids)


def test_naive_timestamps_are_read_in_the_request_timezone(
    client: httpx.Client, trained: Trained, batch: pd.DataFrame, customer_ids: list[str]
) -> None:
    """Histories sent as Auckland wall-clock times (no offset) with timezone=Pacific/Auckland are
    the batch scores of the same instants; read as UTC, purchases move a day and the scores
    change. (CDNOW's purchases are at 00:00 UTC: 12:00 or 13:00 the same day in Auckland, so they
    are moved to 20:00 UTC, the next day's morning there.)"""
    ids = customer_ids[:5]
    moved = trained.transactions.assign(
        timestamp=trained.transactions["timestamp"] + pd.Timedelta(hours=20)
    )
    expected = trained.model.predict(moved, AS_OF).set_index("customer_id")
    sent = histories(moved, ids)
    for history in sent:
        for line in history["transactions"]:
            stamp = pd.Timestamp(line["timestamp"]).tz_convert("Pacific/Auckland")
            line["timestamp"] = stamp.tz_localize(None).isoformat()  # wall clock, no offset
    body = {"customers": sent, "as_of": AS_OF, "timezone": "Pacific/Auckland"}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    assert_same_scores(response.json(), expected, ids)
    as_utc = client.post("/predict", json={"customers": sent, "as_of": AS_OF})
    assert as_utc.status_code == 200, as_utc.text
    churn = [p["churn_probability"] for p in as_utc.json()["predictions"]]
    assert churn != pytest.approx(expected.loc[ids, "churn_probability"].tolist(), rel=1e-9)


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> tuple[dict[str, Any], dict[str, Any]]:
    """The request (the curl command's ``-d '...'``) and the response (the ```json block) of the
    README's "Serving predictions over HTTP"."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Serving predictions over HTTP", 1)[1].split("\n## ", 1)[0]
    sent = re.search(r"-d '(\{.*?\})'", section, re.DOTALL)
    shown = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert sent and shown, "the README's serving section lost its request or response example"
    return json.loads(sent.group(1)), json.loads(shown.group(1))


def json_shape(value: Any, nullable: frozenset[str] = frozenset(), key: str = "") -> Any:
    """Keys and JSON types, not values: objects by key, a list by its first item; a field the
    response model lets be null may be null or its type."""
    if isinstance(value, dict):
        return {k: json_shape(v, nullable, k) for k, v in value.items()}
    if isinstance(value, list):
        return [json_shape(value[0], nullable, key)] if value else []
    if key in nullable:
        return "nullable"
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    return "number" if isinstance(value, int | float) else type(value).__name__


def test_the_readme_shows_a_real_response(client: httpx.Client) -> None:
    """The README's request is answered 200, and the response it shows has the keys and types
    of the real answer (the values come from the demo's model, not this one)."""
    sent, shown = readme_example()
    response = client.post("/predict", json=sent)
    assert response.status_code == 200, response.text
    real = response.json()
    properties = Prediction.model_json_schema()["properties"]
    nullable = frozenset(
        name for name, spec in properties.items() if {"type": "null"} in spec.get("anyOf", [])
    )
    assert json_shape(shown, nullable) == json_shape(real, nullable)
    assert shown["as_of"] == sent["as_of"] == real["as_of"]
    assert [p["customer_id"] for p in shown["predictions"]] == [
        c["customer_id"] for c in sent["customers"]
    ]
    assert shown["predictions"][0]["model_version"] == shown["model_version"]
    assert shown["predictions"][0]["action"] in ACTIONS


# -- bad requests ------------------------------------------------------------------------------------


def customer(customer_id: str, **line: Any) -> dict[str, Any]:
    """A customer with one purchase in January 1998."""
    transaction = {"timestamp": "1998-01-10T12:00:00", "amount": 25.0} | line
    return {"customer_id": customer_id, "transactions": [transaction]}


def predict(*customers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"customers": list(customers), "as_of": AS_OF} | fields


TX = ["customers", 0, "transactions", 0]

# (request body, the pydantic error type, where)
SCHEMA_ERRORS: dict[str, tuple[Any, str, list[Any]]] = {
    "unknown top-level field": (
        predict(customer("c1"), asof="1998-01-01"),
        "extra_forbidden",
        ["asof"],
    ),
    "unknown customer field": (
        predict(customer("c1") | {"email": "a@b.c"}),
        "extra_forbidden",
        ["customers", 0, "email"],
    ),
    "unknown transaction field": (
        predict(customer("c1", price=3)),
        "extra_forbidden",
        [*TX, "price"],
    ),
    "amount not a number": (
        predict(customer("c1", amount="abc")),
        "float_parsing",
        [*TX, "amount"],
    ),
    "amount infinite": (
        predict(customer("c1", amount="Infinity")),
        "finite_number",
        [*TX, "amount"],
    ),
    "timestamp missing": (
        predict({"customer_id": "c1", "transactions": [{"amount": 3}]}),
        "missing",
        [*TX, "timestamp"],
    ),
    "timestamp not a time": (
        predict(customer("c1", timestamp="last tuesday")),
        "datetime_from_date_parsing",
        [*TX, "timestamp"],
    ),
    "customer_id missing": (
        predict({"transactions": [{"timestamp": "1998-01-01", "amount": 3}]}),
        "missing",
        ["customers", 0, "customer_id"],
    ),
    "customer_id empty": (
        predict(customer("  ")),
        "string_too_short",
        ["customers", 0, "customer_id"],
    ),
    "no customers": (predict(), "too_short", ["customers"]),
    "no transactions": (
        predict({"customer_id": "c1", "transactions": []}),
        "too_short",
        ["customers", 0, "transactions"],
    ),
    "n_reasons above 10": (predict(customer("c1"), n_reasons=11), "less_than_equal", ["n_reasons"]),
    "n_reasons negative": (
        predict(customer("c1"), n_reasons=-1),
        "greater_than_equal",
        ["n_reasons"],
    ),
    "as_of not a date": (
        predict(customer("c1"), as_of="soon"),
        "date_from_datetime_parsing",
        ["as_of"],
    ),
    "not an object": ([customer("c1")], "model_type", []),
    "timezone unknown": (
        predict(customer("c1"), timezone="Europe/Lodnon"),
        "value_error",
        ["timezone"],
    ),
    "timezone empty": (predict(customer("c1"), timezone=""), "string_too_short", ["timezone"]),
}


@pytest.mark.parametrize("case", SCHEMA_ERRORS, ids=str)
def test_requests_breaking_the_schema_are_400_naming_the_field(
    client: httpx.Client, case: str
) -> None:
    body, kind, where = SCHEMA_ERRORS[case]
    response = client.post("/predict", json=body)
    assert response.status_code == 400, response.text
    problems = response.json()["detail"]
    assert any(p["type"] == kind and p["loc"] == where and p["msg"] for p in problems), problems
    if kind == "extra_forbidden":
        assert "Extra inputs are not permitted" in response.text


FEATURE_SCHEMA_ERRORS: dict[str, tuple[dict[str, Any], str, list[Any] | None]] = {
    "unknown field": (
        {"rows": [{"customer_id": "a"}], "as_of": AS_OF, "x": 1},
        "extra_forbidden",
        ["x"],
    ),
    "no as_of": ({"rows": [{"customer_id": "a"}]}, "missing", ["as_of"]),
    "no rows": ({"rows": [], "as_of": AS_OF}, "too_short", ["rows"]),
    "a list value": (
        {"rows": [{"customer_id": "a", "T": [1]}], "as_of": AS_OF},
        "float_type",
        None,
    ),
}


@pytest.mark.parametrize("case", FEATURE_SCHEMA_ERRORS, ids=str)
def test_feature_requests_breaking_the_schema_are_400(client: httpx.Client, case: str) -> None:
    body, kind, where = FEATURE_SCHEMA_ERRORS[case]
    response = client.post("/predict_features", json=body)
    assert response.status_code == 400, response.text
    problems = response.json()["detail"]
    assert any(p["type"] == kind and where in (None, p["loc"]) for p in problems), problems


@pytest.mark.parametrize("path", ["/predict", "/predict_features"])
@pytest.mark.parametrize("body", ['{"customers": [', "", "not json", '{"a": 1,}'])
def test_malformed_json_is_400(client: httpx.Client, path: str, body: str) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["detail"]


def error_of(response: httpx.Response) -> str:
    """The message of a 401, 413, 422 or 503: the body is ``{"error": message}``."""
    body = response.json()
    assert isinstance(body, dict), body
    assert list(body) == ["error"], body
    return str(body["error"])


def test_too_many_customers_is_413_naming_the_limit(client: httpx.Client) -> None:
    body = predict(*(customer(f"c{i}") for i in range(MAX_CUSTOMERS + 1)))
    response = client.post("/predict", json=body)
    assert response.status_code == 413, response.text
    assert error_of(response) == (
        f"customers: {MAX_CUSTOMERS + 1} customers, more than the limit of {MAX_CUSTOMERS} "
        "per request"
    )
    fine = client.post("/predict", json=predict(*(customer(f"c{i}") for i in range(MAX_CUSTOMERS))))
    assert fine.status_code == 200, fine.text


@pytest.mark.parametrize("table", ["transactions", "events"])
def test_too_long_a_history_is_413_naming_the_customer(client: httpx.Client, table: str) -> None:
    many = customer("c9")
    line = {"timestamp": "1998-01-10T12:00:00"}
    rows = [line | ({"amount": 1.0} if table == "transactions" else {"event_type": "session"})]
    many[table] = rows * (MAX_TRANSACTIONS + 1)
    response = client.post("/predict", json=predict(customer("c1"), many))
    assert response.status_code == 413, response.text
    message = error_of(response)
    assert f"customers[1].{table}: {MAX_TRANSACTIONS + 1} rows for customer 'c9'" in message
    assert f"limit of {MAX_TRANSACTIONS} per customer" in message


def test_too_many_feature_rows_is_413(client: httpx.Client) -> None:
    rows = [{"customer_id": f"c{i}"} for i in range(MAX_CUSTOMERS + 1)]
    response = client.post("/predict_features", json={"rows": rows, "as_of": AS_OF})
    assert response.status_code == 413, response.text
    assert f"more than the limit of {MAX_CUSTOMERS}" in error_of(response)


UNSCORABLE: dict[str, tuple[dict[str, Any], list[str]]] = {
    "only purchases after as_of": (
        predict(customer("late", timestamp="1998-04-01T00:00:00")),
        ["1 have no purchase", "on or before 1998-03-31", "'late'"],
    ),
    "after as_of in UTC (23:30 in New York)": (
        predict(customer("late", timestamp="1998-03-31T23:30:00-05:00")),
        ["1 have no purchase", "'late'"],
    ),
    "only refunds": (
        predict(customer("refunds", amount=-20.0)),
        ["1 have no purchase", "'refunds'"],
    ),
    "one of two": (
        predict(customer("ok"), customer("late", timestamp="1999-01-01")),
        ["customers: 1 have no purchase", "'late'"],
    ),
    "a wall time London's clocks repeat": (
        predict(customer("c1", timestamp="1997-10-26T01:30:00"), timezone="Europe/London"),
        ["no single instant in Europe/London", "1 are ambiguous", "customers[0].transactions[0]"],
    ),
    "the same customer twice": (
        predict(customer("c1"), customer("c2"), customer("c1")),
        ["customers[2].customer_id: 'c1' is also customers[0]"],
    ),
    "as_of too late for a date ten years on": (
        predict(customer("c1"), as_of="9999-12-31"),
        ["as_of: 9999-12-31 is too late"],
    ),
    "an unreadable amount total": (
        predict(
            {
                "customer_id": "huge",
                "transactions": [{"timestamp": "1998-01-01", "amount": 1e308}] * 2,
            }
        ),
        ["finite"],
    ),
}


@pytest.mark.parametrize("case", UNSCORABLE, ids=str)
def test_unscorable_customers_are_422_naming_them(client: httpx.Client, case: str) -> None:
    body, fragments = UNSCORABLE[case]
    response = client.post("/predict", json=body)
    assert response.status_code == 422, response.text
    message = error_of(response)
    for fragment in fragments:
        assert fragment in message


def test_unscorable_feature_rows_are_422_naming_the_problem(
    client: httpx.Client, trained: Trained, customer_ids: list[str]
) -> None:
    table = build_features(trained.transactions, AS_OF)
    rows = json_rows(table.set_index("customer_id").loc[customer_ids[:3]].reset_index())
    cases: list[tuple[list[dict[str, Any]], list[str]]] = [
        ([{"frequency": 1.0}], ["rows: every feature row needs a customer_id", "rows[0]"]),
        ([rows[0], {**rows[1], "customer_id": None}], ["rows[1]"]),
        ([rows[0], {k: v for k, v in rows[1].items() if k != "customer_id"}], ["rows[1]"]),
        ([{k: v for k, v in row.items() if k != "orders_90d"} for row in rows], ["orders_90d"]),
        ([{"customer_id": "a", "frequency": 1.0}], ["recency", "T", "monetary_value"]),
        ([{**rows[0], "frequency": "many"}], ["feature values must be numbers", "many"]),
        ([{**rows[0], "frequency": None}], ["frequency", "not finite"]),
        ([{**rows[0], "recency": -3.0}], ["recency", "negative"]),
    ]
    for sent, fragments in cases:
        response = client.post("/predict_features", json={"rows": sent, "as_of": AS_OF})
        assert response.status_code == 422, (fragments, response.text)
        message = error_of(response)
        for fragment in fragments:
            assert fragment in message, message
    late = client.post("/predict_features", json={"rows": rows, "as_of": "9999-01-01"})
    assert late.status_code == 422
    assert "as_of: 9999-01-01 is too late" in error_of(late)


def test_the_server_is_up_after_bad_requests(client: httpx.Client) -> None:
    bad = [
        ("/predict", b'{"customers": [{"customer_id": "x", "transactions": [{"amount": "abc"'),
        ("/predict", b"\xff\xfe\x00"),
        ("/predict_features", b'{"rows": [{"customer_id": {"nested": 1}}], "as_of": "1998-01-01"}'),
    ]
    for path, body in bad:
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, response.text
    assert client.get("/livez").status_code == 200
    assert client.post("/predict", json=predict(customer("c1"))).status_code == 200


# -- operations --------------------------------------------------------------------------------------


def test_health_endpoints(client: httpx.Client) -> None:
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_metrics_count_requests(client: httpx.Client) -> None:
    assert client.post("/predict", json=predict(customer("c1"))).status_code == 200
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    counted = re.search(
        r'^bentoml_service_request_total\{[^}]*endpoint="/predict",'
        r'http_response_code="200"[^}]*\} (\d+(?:\.\d+)?)$',
        response.text,
        re.MULTILINE,
    )
    assert counted, response.text[:2000]
    assert float(counted.group(1)) >= 1


def test_openapi_lists_both_endpoints(client: httpx.Client) -> None:
    response = client.get("/docs.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    for path in ("/predict", "/predict_features"):
        assert "post" in spec["paths"][path]
        assert "requestBody" in spec["paths"][path]["post"]


# -- other configurations ----------------------------------------------------------------------------


def test_bearer_token(tmp_path: Path, trained: Trained) -> None:
    env = serving_env(trained, RETAIN_SERVE_API_TOKEN="secret")
    with running_server(tmp_path, env) as server:
        body = predict(customer("c1"))
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "secret"}):
            with server.client(**headers) as client:
                response = client.post("/predict", json=body)
                assert response.status_code == 401, (headers, response.text)
                assert "Authorization: Bearer <token>" in error_of(response)
                assert response.headers["www-authenticate"] == "Bearer"
                features = client.post("/predict_features", json={"rows": [{}], "as_of": AS_OF})
                assert features.status_code == 401
        with server.client(authorization="Bearer secret") as client:
            response = client.post("/predict", json=body)
            assert response.status_code == 200, response.text
            assert client.get("/readyz").status_code == 200  # probes need no token


def test_past_the_in_flight_limit_requests_get_a_clean_503(
    tmp_path: Path, trained: Trained, customer_ids: list[str]
) -> None:
    """One worker admitting one prediction at a time, sent eight at once: the others are told
    503 with Retry-After at once (never another status), health probes are never shed, and the
    server answers normally afterwards."""
    env = serving_env(trained, RETAIN_SERVE_MAX_IN_FLIGHT="1", RETAIN_SERVE_WORKERS="1")
    body = predict(*histories(trained.transactions, customer_ids), as_of=AS_OF)
    with running_server(tmp_path, env) as server:
        statuses: list[int] = []
        for _ in range(5):  # rounds until two requests met (each takes milliseconds)
            start = threading.Barrier(8)

            def send(_: int, start: threading.Barrier = start) -> httpx.Response:
                with server.client() as client:
                    start.wait()
                    return client.post("/predict", json=body)

            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(send, range(8)))
            statuses += [answer.status_code for answer in answers]
            for answer in answers:
                if answer.status_code == 503:
                    assert answer.headers["retry-after"] == "1"
                    assert error_of(answer).startswith("overloaded: 1 requests in progress")
            if 503 in statuses:
                break
        assert set(statuses) == {200, 503}, statuses
        with server.client() as client:
            assert client.get("/livez").status_code == 200
            assert client.get("/readyz").status_code == 200
            assert client.post("/predict", json=body).status_code == 200


def test_a_model_that_cannot_load_is_not_ready(tmp_path: Path) -> None:
    env = {
        "RETAIN_SERVE_MODEL_URI": "models:/nope@champion",
        "RETAIN_SERVE_MODEL_DIR": str(tmp_path / "no-export"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}",
    }
    with running_server(tmp_path, env, wait_ready=False) as server, server.client() as client:
        assert client.get("/livez").status_code == 200
        assert client.get("/readyz").status_code == 503
        body = predict(customer("c1"))
        for _ in range(120):  # until the loader has given up (MLflow creates the store first)
            response = client.post("/predict", json=body)
            if "could not be loaded" in response.text:
                break
            assert response.status_code == 503, response.text
            assert "the model is not loaded yet" in error_of(response)
            client.get("/livez")
            time.sleep(0.5)
        assert response.status_code == 503, response.text
        # Callers learn that loading failed, not why (the error may name a URI's credentials);
        # the server log says why.
        assert error_of(response) == "the model could not be loaded; the server log says why"
        assert "nope" not in response.text
        assert "nope" in server.output()
        assert client.get("/readyz").status_code == 503
        assert client.get("/livez").status_code == 200
