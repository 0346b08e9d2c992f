"""Issue 17, the HTTP service: what a caller or a local user must not be able to read or stall.

These run the service's parts in this process (the service object, its settings, the Scorer and the
ASGI middleware) rather than the real server, which takes seconds to start.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import stat
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.serving.conftest import AS_OF, Trained, json_rows

from retain.errors import RetainInputError
from retain.features import build_features
from retain.serving.schemas import FeatureRequest
from retain.serving.scoring import EXPORT_MODEL, BadRequest, Scorer
from retain.serving.service import RetentionService
from retain.serving.settings import ServingSettings


@pytest.fixture(autouse=True)
def no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RETAIN_SERVE_* or MLFLOW_* variable of the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("RETAIN_SERVE_", "MLFLOW_")):
            monkeypatch.delenv(name)


def _wait_for_the_loader(timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name == "retain-model-loader":
            thread.join(max(0.0, deadline - time.monotonic()))


def _context() -> Any:
    """What the service reads of BentoML's request context: the headers and the response status."""
    return SimpleNamespace(
        request=SimpleNamespace(headers={}), response=SimpleNamespace(status_code=200)
    )


# -- finding 3: the 503 does not expose the model-load error -----------------------------------------


def test_a_load_error_is_not_answered_and_is_logged_without_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri = "http://alice:s3cr3t-pw@tracking.invalid/models/retain"
    monkeypatch.setenv("RETAIN_SERVE_MODEL_URI", uri)
    monkeypatch.setenv("RETAIN_SERVE_MODEL_DIR", str(tmp_path))
    with caplog.at_level(logging.INFO):
        service = RetentionService()
        _wait_for_the_loader()
        assert service.scorer is None
        context = _context()
        answer: Any = service._answer(context, lambda scorer: scorer.predict(None))
    assert answer.status_code == 503 == context.response.status_code
    body = answer.body.decode()
    assert "s3cr3t" not in body and "alice" not in body and "tracking.invalid" not in body
    assert "the model could not be loaded" in body
    # The detail is in the log, with the URI's credentials removed and nowhere else.
    assert "tracking.invalid/models/retain" in caplog.text
    assert "s3cr3t" not in caplog.text and "alice" not in caplog.text


# -- finding 4: a 400 is logged without the request's values ---------------------------------------


def test_a_request_breaking_the_schema_is_logged_without_its_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """BentoML logs the ValidationError of a 400 (pydantic's text carries each ``input_value``):
    the service leaves the field paths and error types in that line, and no value."""
    from bentoml._internal.server.http_app import log_exception
    from pydantic import ValidationError

    from retain.serving.schemas import PredictRequest

    monkeypatch.setenv("RETAIN_SERVE_MODEL_URI", str(tmp_path / "missing"))
    monkeypatch.setenv("RETAIN_SERVE_MODEL_DIR", str(tmp_path))
    RetentionService()
    _wait_for_the_loader()
    body = {
        "customers": [{"customer_id": "c1", "transactions": [{"amount": 1}], "email": "jo@x.org"}],
        "as_of": "1998-03-31",
    }
    request = SimpleNamespace(url=SimpleNamespace(path="/predict"), method="POST")
    with caplog.at_level(logging.INFO):
        try:
            PredictRequest.model_validate(body)
        except ValidationError:
            log_exception(request)  # type: ignore[arg-type]  # what BentoML does with a 400
    assert "jo@x.org" not in caplog.text
    assert "customers.0.email (extra_forbidden)" in caplog.text
    assert "customers.0.transactions.0.timestamp (missing)" in caplog.text
    assert "/predict" in caplog.text


# -- finding 5: token defaults ------------------------------------------------------------------------


def test_a_service_without_a_token_warns_at_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RETAIN_SERVE_MODEL_URI", str(tmp_path / "missing"))
    monkeypatch.setenv("RETAIN_SERVE_MODEL_DIR", str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="retain.serving"):
        RetentionService()
        _wait_for_the_loader()
    warned = [r for r in caplog.records if "RETAIN_SERVE_API_TOKEN" in r.getMessage()]
    assert warned and warned[0].levelno == logging.WARNING
    assert "without a token" in warned[0].getMessage()
    caplog.clear()
    monkeypatch.setenv("RETAIN_SERVE_API_TOKEN", "set")
    with caplog.at_level(logging.WARNING, logger="retain.serving"):
        RetentionService()
        _wait_for_the_loader()
    assert "without a token" not in caplog.text


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_token_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("RETAIN_SERVE_API_TOKEN", value)
    with pytest.raises(RetainInputError, match=r"RETAIN_SERVE_API_TOKEN.*empty"):
        ServingSettings()
    monkeypatch.delenv("RETAIN_SERVE_API_TOKEN")
    with pytest.raises(RetainInputError, match=r"RETAIN_SERVE_API_TOKEN.*empty"):
        ServingSettings(api_token=value)


# -- finding 6: the loading lock is in a folder the service owns --------------------------------------


def test_a_lock_held_in_tmp_does_not_stall_loading(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trained: Trained
) -> None:
    """Any local user could hold /tmp/retain-serve-load.lock; the service's lock is in its own
    state folder (RETAIN_SERVE_STATE_DIR), made private (0700)."""
    state = tmp_path / "state"
    monkeypatch.setenv("RETAIN_SERVE_STATE_DIR", str(state))
    settings = ServingSettings(
        model_uri=str(trained.model_dir / EXPORT_MODEL), model_dir=trained.model_dir
    )
    loaded: list[Scorer] = []
    squatted = Path(tempfile.gettempdir()) / "retain-serve-load.lock"
    with squatted.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # another user's process holding the old lock
        try:
            loader = threading.Thread(target=lambda: loaded.append(Scorer.load(settings)))
            loader.start()
            loader.join(60)
            assert loaded, "loading waited for a lock in the shared temporary folder"
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            loader.join(60)
    assert (state / "load.lock").is_file()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_a_state_folder_others_can_write_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trained: Trained
) -> None:
    state = tmp_path / "shared"
    state.mkdir(mode=0o777)
    state.chmod(0o777)
    monkeypatch.setenv("RETAIN_SERVE_STATE_DIR", str(state))
    settings = ServingSettings(model_uri=str(trained.model_dir / EXPORT_MODEL))
    with pytest.raises(RetainInputError, match=r"RETAIN_SERVE_STATE_DIR.*0777"):
        Scorer.load(settings)


# -- finding 2: /predict_features refuses what it cannot score, in time linear in the request ---------


@pytest.fixture(scope="module")
def scorer(trained: Trained) -> Scorer:
    return Scorer.load(ServingSettings(model_dir=trained.model_dir, max_customers=2_000))


@pytest.fixture(scope="module")
def feature_rows(trained: Trained) -> list[dict[str, Any]]:
    return json_rows(build_features(trained.transactions, AS_OF).head(3))


def _features(rows: list[dict[str, Any]]) -> FeatureRequest:
    """A feature request as the service parses it: from JSON text."""
    return FeatureRequest.model_validate_json(json.dumps({"rows": rows, "as_of": AS_OF}))


def test_unknown_feature_keys_are_a_400_naming_them(
    scorer: Scorer, feature_rows: list[dict[str, Any]]
) -> None:
    rows = [feature_rows[0], {**feature_rows[1], "frequncy": 3.0, "email": "jo@x.org"}]
    with pytest.raises(BadRequest) as raised:
        scorer.predict_features(_features(rows))
    message = str(raised.value)
    assert "2 unknown key(s)" in message and "'email'" in message and "'frequncy'" in message
    assert "rows[1]" in message
    assert "jo@x.org" not in message


def test_many_unknown_keys_are_refused_at_once(scorer: Scorer) -> None:
    """350 rows of 350 distinct keys each (about 2 MB) cost 5 s and 1 GB; refused now, quickly."""
    rows = [{"customer_id": f"c{i}"} | {f"k{i}_{j}": 1.0 for j in range(350)} for i in range(350)]
    request = _features(rows)
    started = time.perf_counter()
    with pytest.raises(BadRequest, match=r"122,500 unknown key\(s\)"):
        scorer.predict_features(request)
    assert time.perf_counter() - started < 1.0


def test_a_customer_sent_twice_as_feature_rows_is_refused(
    scorer: Scorer, feature_rows: list[dict[str, Any]]
) -> None:
    rows = [feature_rows[0], feature_rows[1], feature_rows[0]]
    with pytest.raises(RetainInputError, match=r"rows\[2\]\.customer_id: '.+' is also rows\[0\]"):
        scorer.predict_features(_features(rows))


@pytest.mark.parametrize("customer_id", [True, 12346.0, 12346, "   ", "x" * 201])
def test_a_feature_row_id_that_is_not_text_is_a_400(
    scorer: Scorer, feature_rows: list[dict[str, Any]], customer_id: Any
) -> None:
    rows = [feature_rows[0], {**feature_rows[1], "customer_id": customer_id}]
    with pytest.raises(BadRequest, match=r"rows\[1\]\.customer_id"):
        scorer.predict_features(_features(rows))


def test_two_thousand_feature_rows_score_as_the_model_scores_their_table(
    scorer: Scorer, trained: Trained
) -> None:
    """2,000 rows of ``retain features`` sent as JSON get, row for row, the scores the model gives
    the same table in Python (its own complete_features and score_features): no row is dropped,
    reordered, or read with a value changed on the way. (How fast: benchmarks/hardening.py.)"""
    table = build_features(trained.transactions, AS_OF).head(2_000)
    rows = json_rows(table)
    assert len(rows) == 2_000 and min(len(row) for row in rows) >= 50
    answer = scorer.predict_features(_features(rows))
    model = scorer.model
    expected = model.score_features(model.complete_features(table), AS_OF)
    served = pd.DataFrame([p.model_dump() for p in answer.predictions])
    assert served["customer_id"].tolist() == table["customer_id"].astype(str).tolist()
    for column in ("churn_probability", "p_alive", "expected_purchases", "p_purchase_30d", "clv"):
        np.testing.assert_allclose(
            served[column].to_numpy(float), expected[column].to_numpy(float), rtol=1e-9,
            err_msg=column,
        )  # fmt: skip
    np.testing.assert_allclose(
        served["days_to_next_purchase"].to_numpy(float),
        expected["days_to_next_purchase"].to_numpy(float),
        rtol=1e-9,
    )
    assert served["segment"].tolist() == expected["segment"].astype(str).tolist()
    assert served["reasons"].tolist() == [list(r) for r in expected["reasons"]]
    # The scores differ between customers: a table scored as one repeated row would not pass.
    assert served["churn_probability"].nunique() > 100


def test_a_feature_row_id_written_as_a_decimal_is_the_customer_a_file_would_name(
    scorer: Scorer, feature_rows: list[dict[str, Any]]
) -> None:
    """Finding 9 over HTTP: "12346.0" in a feature row is customer "12346", as in a CSV file, so
    the answer names the batch scores' id and the two spellings are one customer."""
    first = feature_rows[0]["customer_id"]
    rows = [{**feature_rows[0], "customer_id": f"{first}.00"}, feature_rows[1]]
    answer = scorer.predict_features(_features(rows))
    assert answer.predictions[0].customer_id == first
    same = scorer.predict_features(_features(feature_rows[:2]))
    assert answer.predictions == same.predictions
    with pytest.raises(RetainInputError, match=r"rows\[1\]\.customer_id: '.+' is also rows\[0\]"):
        scorer.predict_features(
            _features([feature_rows[0], {**feature_rows[0], "customer_id": f"{first}.0"}])
        )


def test_the_service_answers_an_unknown_feature_key_with_a_400(
    monkeypatch: pytest.MonkeyPatch, trained: Trained, feature_rows: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("RETAIN_SERVE_MODEL_DIR", str(trained.model_dir))
    service = RetentionService()
    _wait_for_the_loader()
    request = _features([{**feature_rows[0], "frequncy": 3.0}])
    context = _context()
    answer: Any = service._answer(context, lambda scorer: scorer.predict_features(request))
    assert answer.status_code == 400 == context.response.status_code
    assert "'frequncy' (rows[0])" in json.loads(answer.body)["error"]
