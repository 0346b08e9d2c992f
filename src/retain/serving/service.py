"""The HTTP service: ``bentoml serve`` (or ``retain serve``) from the project root.

Endpoints: ``POST /predict`` (customers with their histories), ``POST /predict_features`` (feature
rows), and BentoML's own ``/livez``, ``/readyz`` (503 until the model is loaded), ``/metrics``
(Prometheus) and ``/docs.json`` (OpenAPI).

Errors are the caller's to fix and say so: 400 for a request that is not JSON or breaks the schema
(BentoML's answer: each field and its problem from pydantic, under ``detail``; or ours, for feature
rows with keys the model does not read or ids that are not text), 422 for one that
cannot be scored (the customers or feature rows and why), 413 past the size limits, 401 without the
configured bearer token (the token and the body's size are checked before the body is read: see
:class:`Gatekeeper`), 503 until the model is loaded (saying only whether loading failed: the
load error, which may name a tracking URI, is in the server log with the URIs' credentials removed);
these four answer ``{"error": message}``. A 500 is a bug of ours.

Workers: one process per CPU by default (RETAIN_SERVE_WORKERS, default ``cpu_count``, which BentoML
counts at start-up within a container's CPU quota): scoring is mostly Python, which one process
runs on one core at a time. Each loads the model and prepares its compiled trees before
it answers ``/readyz``.

Overload: past ``max_in_flight`` prediction requests in progress in a worker
(RETAIN_SERVE_MAX_IN_FLIGHT, default 16) a request gets an immediate 503 with ``Retry-After: 1``
(see :class:`LoadShedding`).

Batching: a request carries up to ``max_customers`` customers and is scored as one table, which is
where the throughput is (one feature pass and one call per model for all of them: 500 customers in
about 80 ms, against about 7 ms of CPU for one). Server-side adaptive batching of single-customer
requests is not used, on purpose: BentoML batches only an API whose input is a list of items, and
one model call for several callers' items would make one caller's bad history (a 422) fail the
others' requests too, or turn errors into 200s; and at the rates one-customer callers send (the
benchmark's 50 requests/s) batches would mostly hold one item while every request waited for the
window. Measured on the 2-core machine with the load generator beside it, one-customer requests
saturate at about 120-130 requests/s; callers that need more send several customers per request.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import secrets
import threading
import traceback
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Literal, cast

import bentoml
from pydantic import ValidationError
from starlette.responses import JSONResponse

from retain.errors import RetainInputError
from retain.serving.schemas import FeatureRequest, PredictRequest, PredictResponse
from retain.serving.scoring import BadRequest, RequestTooLarge, Scorer
from retain.serving.settings import ServingSettings

__all__ = ["Gatekeeper", "LoadShedding", "RetentionService", "redact_credentials"]

log = logging.getLogger("retain.serving")


class LoadShedding:
    """ASGI middleware: at most ``limit`` prediction requests in flight; past it, an immediate 503
    with ``Retry-After: 1``.

    A request admitted past the point where the CPUs keep up only waits in a queue until its
    caller has given up, and makes every request behind it late too; a quick 503 lets the caller
    retry or go elsewhere. The health, readiness and metrics endpoints are never shed.
    """

    def __init__(self, app: Any, limit: int | None = None) -> None:
        """``limit`` default: ``max_in_flight`` of the settings, read now (when the server builds
        its application in a worker), not when this module is imported."""
        self.app = app
        self.limit = ServingSettings().max_in_flight if limit is None else limit
        self.in_flight = 0  # the event loop is single-threaded: no lock needed

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in _SHED_PATHS:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.limit:
            message = f"overloaded: {self.limit} requests in progress; retry shortly"
            return await _refuse(send, HTTPStatus.SERVICE_UNAVAILABLE, message, retry_after="1")
        self.in_flight += 1
        try:
            return await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


_SHED_PATHS = frozenset({"/predict", "/predict_features"})


class Gatekeeper:
    """ASGI middleware: the token and the body size of a prediction request are checked before
    BentoML reads and parses the body, which it otherwise does whatever the size and whoever
    calls (a 200 MB body without a token took 2.4 s and 800 MB of memory to be refused).

    No valid ``Authorization: Bearer <token>`` (when a token is set) is a 401 and a declared
    ``Content-Length`` over ``max_body_bytes`` a 413, both without reading a byte of the body;
    a body sent without a length is counted as it arrives and refused (413) at the first message
    past the limit. An admitted body, at most the limit, is handed on as it was received."""

    def __init__(self, app: Any, settings: ServingSettings | None = None) -> None:
        """``settings`` default: read now, when a worker builds its application."""
        self.app = app
        settings = settings or ServingSettings()
        self.limit = settings.max_body_bytes
        token = settings.api_token
        self.expected = None if token is None else f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in _SHED_PATHS:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        given = headers.get(b"authorization", b"")
        if self.expected is not None and not secrets.compare_digest(given, self.expected):
            return await _refuse(send, HTTPStatus.UNAUTHORIZED, _UNAUTHORIZED, bearer=True)
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            return await _refuse(send, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, self._too_large())
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None  # the caller has gone: nobody to answer
            body += message.get("body", b"")
            if len(body) > self.limit:
                return await _refuse(send, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, self._too_large())
            if not message.get("more_body"):
                break
        return await self.app(scope, _replay(bytes(body), receive), send)

    def _too_large(self) -> str:
        return (
            f"body: more than the limit of {self.limit:,} bytes per request "
            "(RETAIN_SERVE_MAX_BODY_BYTES); send fewer customers per request"
        )


_UNAUTHORIZED = "authorization: a valid 'Authorization: Bearer <token>' header is required"


def _replay(body: bytes, receive: Any) -> Any:
    """An ASGI ``receive`` that gives the body already read, then whatever the server sends next
    (a disconnect)."""
    given = False

    async def replay() -> Any:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(
    send: Any, status: HTTPStatus, message: str, *, bearer: bool = False, retry_after: str = ""
) -> None:
    """Answer ``{"error": message}`` with ``status`` from a middleware, before the application."""
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if bearer:
        headers.append((b"www-authenticate", b"Bearer"))
    if retry_after:
        headers.append((b"retry-after", retry_after.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _workers() -> int | Literal["cpu_count"]:
    """The worker count, the one setting read when this module is imported: BentoML takes it from
    the decorator below before any service object exists (``bentoml serve`` imports the module
    when it starts, so the variable is still read at start-up)."""
    return ServingSettings().workers


# BentoML's own concurrency cap answers 429 and is set above ours so that LoadShedding decides.
@bentoml.service(
    name="retain",
    workers=_workers(),
    traffic={"timeout": 60, "max_concurrency": 1024},
)
class RetentionService:
    """Churn risk, next purchase and CLV for customers sent with their histories."""

    def __init__(self) -> None:
        # Read here, when the server starts the service, so the environment at start-up counts.
        self.settings = ServingSettings()
        _hide_request_values()
        if self.settings.api_token is None:
            log.warning(
                "retain: serving without a token: anyone who can reach the service can call it; "
                "set RETAIN_SERVE_API_TOKEN to require 'Authorization: Bearer <token>'"
            )
        self.scorer: Scorer | None = None
        self.load_failed = False
        # Loading (MLflow, reading the model folder) happens beside start-up, so /livez answers at
        # once and /readyz says 503 until the model is there.
        threading.Thread(target=self._load, name="retain-model-loader", daemon=True).start()

    def _load(self) -> None:
        try:
            scorer = Scorer.load(self.settings)
        except Exception as error:  # callers are told it failed; the log says why
            self.load_failed = True
            detail = "".join(traceback.format_exception(error))
            log.error("retain: the model could not be loaded: %s", redact_credentials(detail))
            return
        # The model's objects (boosters, tables, pandas frames) live as long as the process: out
        # of the garbage collector's sight, they no longer make every collection during a
        # request walk them.
        gc.collect()
        gc.freeze()
        self.scorer = scorer
        log.warning("retain: serving model version %s from %s", scorer.version, scorer.source)

    def __is_ready__(self) -> bool:
        return self.scorer is not None

    @bentoml.api(route="/predict")
    def predict(self, request: PredictRequest, /, *, ctx: bentoml.Context) -> PredictResponse:
        """Scores, reasons and the recommended action for each customer, as of a day (timestamps
        without an offset read in the request's ``timezone``, default UTC)."""
        return self._answer(ctx, lambda scorer: scorer.predict(request))

    @bentoml.api(route="/predict_features")
    def predict_features(
        self, request: FeatureRequest, /, *, ctx: bentoml.Context
    ) -> PredictResponse:
        """The same from feature rows (``retain features`` output) instead of histories."""
        return self._answer(ctx, lambda scorer: scorer.predict_features(request))

    # -- helpers ----------------------------------------------------------------------------------

    def _answer(
        self, ctx: bentoml.Context, work: Callable[[Scorer], PredictResponse]
    ) -> PredictResponse:
        """The response, or the caller's error as ``{"error": message}`` with its status.

        Errors are answered here rather than raised as BentoMLException: BentoML replaces the
        message of a 401 with "Authorization error" and that of any 5xx with "An unexpected error
        has occurred", which would hide why the model is not loaded."""
        headers: dict[str, str] = {}
        try:
            return work(self._ready(ctx))
        except _Unauthorized as error:
            status, message = HTTPStatus.UNAUTHORIZED, str(error)
            headers["WWW-Authenticate"] = "Bearer"
        except _NotLoaded as error:
            status, message = HTTPStatus.SERVICE_UNAVAILABLE, str(error)
        except RequestTooLarge as error:
            status, message = HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(error)
        except BadRequest as error:  # what the schema would refuse had it known the model
            status, message = HTTPStatus.BAD_REQUEST, str(error)
        except RetainInputError as error:
            status, message = HTTPStatus.UNPROCESSABLE_ENTITY, str(error)
        # BentoML sends a Response returned by an API as it is, with the context's status.
        ctx.response.status_code = status
        refusal = JSONResponse({"error": message}, status_code=status, headers=headers)
        return cast(PredictResponse, refusal)

    def _ready(self, ctx: bentoml.Context) -> Scorer:
        token = self.settings.api_token
        if token:
            given = ctx.request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
                raise _Unauthorized(_UNAUTHORIZED)
        if self.scorer is None:
            # Not the error itself: anyone may call, and it can name a tracking URI with its
            # credentials.
            raise _NotLoaded(
                "the model could not be loaded; the server log says why"
                if self.load_failed
                else "the model is not loaded yet"
            )
        return self.scorer


def redact_credentials(text: str) -> str:
    """The text with the ``user:password@`` of every URI in it removed (also after a single slash,
    as a URI read as a path is written)."""
    return _CREDENTIALS.sub(r"\1", text)


_CREDENTIALS = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*:/{1,2})[^/@\s'\"]+@")


class _WithoutRequestValues(logging.Filter):
    """BentoML logs a 400 with its ValidationError, whose text quotes each wrong value
    (``input_value``): an e-mail or a name sent in a request would land in the server log. The
    record keeps the field paths and the error types, without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            problems = ", ".join(
                f"{'.'.join(str(part) for part in problem['loc']) or '(body)'} ({problem['type']})"
                for problem in error.errors(include_input=False, include_context=False)
            )
            record.msg = f"{record.getMessage()}: {error.error_count()} validation error(s) "
            record.msg += f"for {error.title}: {problems}"
            record.args = ()
            record.exc_info = record.exc_text = None
        return True


def _hide_request_values() -> None:
    """Put the filter on the logger BentoML logs a request's errors with (once per process)."""
    logger = logging.getLogger(_BENTOML_REQUEST_LOG)
    if not any(isinstance(f, _WithoutRequestValues) for f in logger.filters):
        logger.addFilter(_WithoutRequestValues())


_BENTOML_REQUEST_LOG = "bentoml._internal.server.http_app"  # its log_exception


class _Unauthorized(Exception):
    """No valid bearer token (HTTP 401)."""


class _NotLoaded(Exception):
    """No model to answer with, yet or at all (HTTP 503)."""


# The decorator made RetentionService a bentoml Service, which mypy sees as the plain class.
# No settings given: each worker's middleware reads them when the application is built. The first
# added is the outer one: a request without a token or too large never takes an in-flight place.
cast(Any, RetentionService).add_asgi_middleware(Gatekeeper)
cast(Any, RetentionService).add_asgi_middleware(LoadShedding)
