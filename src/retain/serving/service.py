"""The HTTP service: ``bentoml serve`` (or ``retain serve``) from the project root.

Endpoints: ``POST /predict`` (customers with their histories), ``POST /predict_features`` (feature
rows), and BentoML's own ``/livez``, ``/readyz`` (503 until the model is loaded), ``/metrics``
(Prometheus) and ``/docs.json`` (OpenAPI).

Errors are the caller's to fix and say so: 422 for a request that breaks the schema (the field and
the problem, from pydantic) or cannot be scored (the customers and why), 413 past the size limits,
401 without the configured bearer token, 503 before the model is loaded. A 500 is a bug of ours.

Batching: a request carries up to ``max_customers`` customers and is scored as one table, which is
where the throughput is (one feature query and one booster call per model for all of them).
Server-side adaptive batching of single-customer requests is not used: it would add its wait to
every request's latency to save what one request costs on its own, about 20 ms of CPU.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from http import HTTPStatus

import bentoml
from bentoml.exceptions import BentoMLException

from retain.errors import RetainInputError
from retain.serving.schemas import FeatureRequest, PredictRequest, PredictResponse
from retain.serving.scoring import RequestTooLarge, Scorer
from retain.serving.settings import ServingSettings

__all__ = ["RetentionService"]

log = logging.getLogger("retain.serving")


@bentoml.service(
    name="retain",
    workers=1,
    traffic={"timeout": 60, "max_concurrency": 32},
)
class RetentionService:
    """Churn risk, next purchase and CLV for customers sent with their histories."""

    def __init__(self) -> None:
        self.settings = ServingSettings()
        self.scorer: Scorer | None = None
        self.load_error: str | None = None
        # Loading (MLflow, unpickling) happens beside start-up, so /livez answers at once and
        # /readyz says 503 until the model is there.
        threading.Thread(target=self._load, name="retain-model-loader", daemon=True).start()

    def _load(self) -> None:
        try:
            scorer = Scorer.load(self.settings)
        except Exception as error:  # reported on /readyz callers' requests and in the log
            self.load_error = f"{type(error).__name__}: {error}"
            log.exception("retain: the model could not be loaded")
            return
        self.scorer = scorer
        log.warning("retain: serving model version %s from %s", scorer.version, scorer.source)

    def __is_ready__(self) -> bool:
        return self.scorer is not None

    @bentoml.api(route="/predict")
    def predict(self, request: PredictRequest, /, *, ctx: bentoml.Context) -> PredictResponse:
        """Scores, reasons and the recommended action for each customer, as of a day."""
        scorer = self._ready(ctx)
        return self._answer(lambda: scorer.predict(request))

    @bentoml.api(route="/predict_features")
    def predict_features(
        self, request: FeatureRequest, /, *, ctx: bentoml.Context
    ) -> PredictResponse:
        """The same from feature rows (``retain features`` output) instead of histories."""
        scorer = self._ready(ctx)
        return self._answer(lambda: scorer.predict_features(request))

    # -- helpers ----------------------------------------------------------------------------------

    def _ready(self, ctx: bentoml.Context) -> Scorer:
        token = self.settings.api_token
        if token:
            given = ctx.request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
                raise BentoMLException(
                    "authorization: a valid 'Authorization: Bearer <token>' header is required",
                    error_code=HTTPStatus.UNAUTHORIZED,
                )
        if self.scorer is None:
            detail = f" ({self.load_error})" if self.load_error else ""
            raise BentoMLException(
                f"the model is not loaded yet{detail}", error_code=HTTPStatus.SERVICE_UNAVAILABLE
            )
        return self.scorer

    @staticmethod
    def _answer(work: Callable[[], PredictResponse]) -> PredictResponse:
        try:
            return work()
        except RequestTooLarge as error:
            raise BentoMLException(
                str(error), error_code=HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            ) from error
        except RetainInputError as error:
            raise BentoMLException(
                str(error), error_code=HTTPStatus.UNPROCESSABLE_ENTITY
            ) from error
