"""Issue 17, finding 1: the token and the body size are checked before the body is read.

BentoML reads and validates the whole body before the API runs; the service's ASGI middleware
answers 401 (no valid token) and 413 (a body over RETAIN_SERVE_MAX_BODY_BYTES, by its
Content-Length or by the bytes streamed) before the application sees the request.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, cast

import pytest
from tests.serving.conftest import Trained, running_server, serving_env

from retain.serving.service import Gatekeeper, LoadShedding, RetentionService
from retain.serving.settings import ServingSettings

MB = 1_000_000


@pytest.fixture(autouse=True)
def no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RETAIN_SERVE_"):
            monkeypatch.delenv(name)


class Application:
    """The application behind the middleware: records that it ran and the body it read."""

    def __init__(self) -> None:
        self.called = False
        self.body = b""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called = True
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def call(
    gate: Gatekeeper, headers: dict[str, str], chunks: int, chunk: int = MB, path: str = "/predict"
) -> tuple[int, dict[str, Any] | None, int]:
    """The status and JSON body answered, and how many body messages were read, for a request
    whose body comes in ``chunks`` messages of ``chunk`` bytes."""
    read = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": b"x" * chunk, "more_body": read < chunks}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(gate(scope, receive, send))
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, (json.loads(body) if body and body != b"{}" else None), read


def gate(**settings: Any) -> tuple[Gatekeeper, Application]:
    app = Application()
    return Gatekeeper(app, ServingSettings(**settings)), app


def test_no_token_is_a_401_before_the_body_is_read() -> None:
    keeper, app = gate(api_token="secret", max_body_bytes=500 * MB)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "secret"}):
        status, body, read = call(keeper, headers | {"Content-Length": str(100 * MB)}, 100)
        assert (status, read, app.called) == (401, 0, False), headers
        assert body is not None and "Authorization: Bearer <token>" in body["error"]


def test_a_declared_length_over_the_limit_is_a_413_before_the_body_is_read() -> None:
    keeper, app = gate(api_token="secret", max_body_bytes=10 * MB)
    headers = {"Authorization": "Bearer secret", "Content-Length": str(100 * MB)}
    status, body, read = call(keeper, headers, 100)
    assert (status, read, app.called) == (413, 0, False)
    assert body is not None and "10,000,000 bytes" in body["error"]


def test_a_streamed_body_over_the_limit_is_a_413_once_the_limit_is_passed() -> None:
    keeper, app = gate(max_body_bytes=10 * MB)
    status, _, read = call(keeper, {}, 100)  # no Content-Length: chunked
    assert (status, app.called) == (413, False)
    assert read == 11  # stopped at the first byte past the limit


def test_a_request_within_the_limits_reaches_the_application_whole() -> None:
    keeper, app = gate(api_token="secret", max_body_bytes=10 * MB)
    headers = {"Authorization": "Bearer secret", "Content-Length": str(3 * 1000)}
    status, _, _ = call(keeper, headers, 3, chunk=1000)
    assert status == 200 and app.called and app.body == b"x" * 3000


def test_probes_are_not_gated() -> None:
    keeper, app = gate(api_token="secret", max_body_bytes=10)
    status, _, _ = call(keeper, {}, 1, chunk=100, path="/readyz")
    assert status == 200 and app.called


def test_the_service_puts_the_gate_in_front() -> None:
    """Outside load shedding: a refused request never takes an in-flight place."""
    classes = [cls for cls, _ in cast(Any, RetentionService).middlewares]
    assert classes.index(Gatekeeper) < classes.index(LoadShedding)


def _post_head_only(url: str, headers: dict[str, str], length: int) -> tuple[bytes, float]:
    """Send a POST's headers announcing ``length`` bytes and no body; the answer's status line and
    the seconds it took."""
    host, port = url.removeprefix("http://").split(":")
    lines = ["POST /predict HTTP/1.1", f"Host: {host}", f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    started = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = sock.recv(200)
    return answer.split(b"\r\n")[0], time.perf_counter() - started


def test_the_real_server_refuses_a_large_body_before_receiving_it(
    tmp_path: Path, trained: Trained
) -> None:
    """A 100 MB body announced and never sent: the server answers from the headers alone."""
    env = serving_env(trained, RETAIN_SERVE_API_TOKEN="secret", RETAIN_SERVE_WORKERS="1")
    with running_server(tmp_path, env) as server:
        status, seconds = _post_head_only(server.url, {}, 100 * MB)
        assert status.endswith(b"401 Unauthorized") and seconds < 1.0, (status, seconds)
        status, seconds = _post_head_only(server.url, {"Authorization": "Bearer secret"}, 100 * MB)
        assert b" 413 " in status and seconds < 1.0, (status, seconds)
