"""Serving settings: read when the service starts (not at import), frozen, and strict about keys."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from retain.errors import RetainInputError
from retain.serving.service import LoadShedding, RetentionService
from retain.serving.settings import ServingSettings


@pytest.fixture(autouse=True)
def no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RETAIN_SERVE_* variable of the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("RETAIN_SERVE_"):
            monkeypatch.delenv(name)


def test_settings_set_after_import_are_seen_by_a_new_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The module is imported above; the variables set now still reach the service built now."""
    missing = tmp_path / "missing.pkl"  # the loader fails at once, without MLflow
    monkeypatch.setenv("RETAIN_SERVE_API_TOKEN", "set-after-import")
    monkeypatch.setenv("RETAIN_SERVE_MAX_CUSTOMERS", "5")
    monkeypatch.setenv("RETAIN_SERVE_MODEL_URI", str(missing))
    monkeypatch.setenv("RETAIN_SERVE_MODEL_DIR", str(tmp_path))
    service = RetentionService()
    assert service.settings.api_token == "set-after-import"
    assert service.settings.max_customers == 5
    assert service.settings.model_uri == str(missing)
    _wait_for_the_loader()
    assert service.scorer is None
    assert service.load_failed
    monkeypatch.setenv("RETAIN_SERVE_MAX_IN_FLIGHT", "2")
    assert LoadShedding(app=None).limit == 2  # read when a worker builds its application
    assert LoadShedding(app=None, limit=7).limit == 7


def _wait_for_the_loader(timeout: float = 60.0) -> None:
    """The model loader runs in a thread; let it end so that it does not outlive the test."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name == "retain-model-loader":
            thread.join(max(0.0, deadline - time.monotonic()))


def test_settings_are_frozen() -> None:
    settings = ServingSettings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.max_customers = 3  # type: ignore[misc]


def test_an_unknown_variable_is_refused_with_the_valid_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETAIN_SERVE_MAX_CUSTOMER", "3")  # the typo of MAX_CUSTOMERS
    with pytest.raises(
        RetainInputError,
        match=r"unknown variable\(s\) RETAIN_SERVE_MAX_CUSTOMER; the variables are "
        r"RETAIN_SERVE_MODEL_URI, .*RETAIN_SERVE_MAX_CUSTOMERS, .*RETAIN_SERVE_API_TOKEN",
    ):
        ServingSettings()


def test_an_unknown_keyword_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(
        RetainInputError, match="max_customer: unknown setting; the settings are model_uri, "
    ):
        ServingSettings(max_customer=3)  # type: ignore[call-arg]


def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIN_SERVE_MAX_CUSTOMERS", "many")
    with pytest.raises(
        RetainInputError, match=r"max_customers \(RETAIN_SERVE_MAX_CUSTOMERS\): .*'many'"
    ):
        ServingSettings()
