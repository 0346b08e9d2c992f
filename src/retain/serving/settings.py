"""How the service finds its model, what it accepts, and who may call it.

The settings are read when they are built (``ServingSettings()``), which the service does when it
starts, not when its module is imported: a test or a deployment may set the variables after the
import. They are frozen, and an unknown ``RETAIN_SERVE_*`` variable or keyword is an error that
names it and lists the valid ones (a typo must not leave a default in place unnoticed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from retain.errors import RetainInputError

__all__ = ["ENV_PREFIX", "ServingSettings"]

ENV_PREFIX: Final = "RETAIN_SERVE_"


class ServingSettings(BaseSettings):
    """Each field can be set by an environment variable ``RETAIN_SERVE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

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
    max_body_bytes: Annotated[int, Field(ge=1)] = 64 * 1024 * 1024
    """Largest request body, in bytes (HTTP 413 above), checked on its ``Content-Length`` and on
    the bytes received before anything is parsed: BentoML would otherwise read and validate any
    size (a 200 MB body took 2.4 s and 800 MB of a worker's memory to be refused)."""
    max_in_flight: int = 16
    """Most prediction requests in progress at once per worker; past it, an immediate 503 (load
    shedding)."""
    workers: Annotated[int, Field(ge=1)] | Literal["cpu_count"] = "cpu_count"
    """Worker processes, each with its own copy of the model. Scoring is mostly Python, which one
    process runs on one core at a time, so the default is one per CPU: ``cpu_count``, which BentoML
    counts when the server starts, within a container's CPU quota (``os.cpu_count()`` would see
    every core of the host and load a model copy for each)."""
    state_dir: Path | None = None
    """The service's own folder (the workers' loading lock): made private (0700) if missing, and
    refused if another user owns it or others may write to it, so that no local user can hold the
    lock and stall loading. Default: ``$XDG_CACHE_HOME/retain-serve``, else
    ``~/.cache/retain-serve``."""
    api_token: str | None = None
    """When set, every prediction request needs ``Authorization: Bearer <token>`` (HTTP 401).
    Unset, the service answers anyone (and warns at start-up); set but empty is an error, since it
    looks like a token and would leave the service open."""

    @field_validator("api_token")
    @classmethod
    def _token_not_empty(cls, token: str | None) -> str | None:
        if token is not None and not token.strip():
            raise ValueError("empty; unset the variable to serve without a token, or give a token")
        return token

    def __init__(self, **values: Any) -> None:
        """Settings from the arguments, then the ``RETAIN_SERVE_*`` variables, then the defaults;
        a bad value, an unknown variable or an unknown keyword is a :class:`RetainInputError`
        naming it."""
        fields = [name.upper() for name in type(self).model_fields]
        unknown = sorted(
            name
            for name in os.environ
            if name.upper().startswith(ENV_PREFIX)
            and name.upper().removeprefix(ENV_PREFIX) not in fields
        )
        if unknown:
            raise RetainInputError(
                f"serving settings: unknown variable(s) {', '.join(unknown)}; the variables are "
                f"{', '.join(ENV_PREFIX + name for name in fields)}"
            )
        try:
            super().__init__(**values)
        except SettingsError as error:  # a variable that cannot be parsed for its field
            raise RetainInputError(f"serving settings: {error}") from error
        except ValidationError as error:
            raise RetainInputError(f"serving settings: {_problems(error)}") from error


def _problems(error: ValidationError) -> str:
    """Each problem as ``field (RETAIN_SERVE_<FIELD>): what is wrong``."""
    messages = []
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] else "settings"
        where = f"{field} ({ENV_PREFIX}{field.upper()})"
        if problem["type"] == "extra_forbidden":
            keys = ", ".join(ServingSettings.model_fields)
            messages.append(f"{field}: unknown setting; the settings are {keys}")
        elif field in _SECRET:  # never quoted, not even in an error
            messages.append(f"{where}: {problem['msg']}")
        else:
            messages.append(f"{where}: {problem['msg']}, not {problem['input']!r}")
    return "; ".join(messages)


_SECRET: Final = frozenset({"api_token"})
