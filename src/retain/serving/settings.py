"""How the service finds its model, what it accepts, and who may call it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServingSettings"]


class ServingSettings(BaseSettings):
    """Each field can be set by an environment variable ``RETAIN_SERVE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="RETAIN_SERVE_")

    model_uri: str | None = None
    """A registered model URI; default ``models:/retain@champion`` at the tracking URI
    (``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``)."""
    model_dir: Path = Path("models")
    """Where ``retain export`` writes a model for deployments without a registry; used when it
    holds one and no ``model_uri`` is set."""
    max_customers: int = 1_000
    """Most customers per request (HTTP 413 above)."""
    max_transactions: int = 10_000
    """Most transactions (and most events) per customer (HTTP 413 above)."""
    max_in_flight: int = 16
    """Most prediction requests in progress at once per worker; past it, an immediate 503 (load
    shedding)."""
    workers: Annotated[int, Field(ge=1)] | Literal["cpu_count"] = "cpu_count"
    """Worker processes, each with its own copy of the model. Scoring is mostly Python, which one
    process runs on one core at a time, so the default is one per CPU: ``cpu_count``, which BentoML
    counts when the server starts, within a container's CPU quota (``os.cpu_count()`` would see
    every core of the host and load a model copy for each)."""
    api_token: str | None = None
    """When set, every prediction request needs ``Authorization: Bearer <token>`` (HTTP 401)."""
