"""What the actions step reads besides the scores: its settings file and a campaign history.

One TOML or JSON file holds the action plan's tables (``[segments]``, ``[tiers]``, ``[outreach]``,
``[audience]``), the discount settings (``[discounts]``) and the report's own (``[report]``: the
currency its money figures are labelled with; or ``RETAIN_REPORT_*`` variables)::

    [report]
    currency = "GBP"

A bad file is a :class:`~retain.errors.RetainInputError` naming the file and the key, raised
before any scoring starts.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from retain.data.contract import MANIFEST_FILE, SCORES_FILE
from retain.errors import RetainInputError

if TYPE_CHECKING:
    from retain.actions import ActionSettings
    from retain.actions.discounts import DiscountSettings

__all__ = [
    "ReportSettings",
    "load_action_settings",
    "load_report_settings",
    "read_campaign_history",
    "read_scores",
]

_REPORT_TABLE: Final = "report"


class ReportSettings(BaseSettings):
    """How the report labels its figures: a ``[report]`` table in the action settings file, or
    ``RETAIN_REPORT_<FIELD>`` environment variables (the file wins)."""

    model_config = SettingsConfigDict(env_prefix="RETAIN_REPORT_", extra="forbid", frozen=True)

    currency: str | None = Field(default=None, min_length=1, max_length=8, pattern=r"^\S+$")
    """The currency of the transactions' amounts, as it should be shown: a code such as GBP or
    EUR, or a symbol. retain converts nothing; the amounts stay as they are. Default: none, and
    money figures are labelled "amount" (the unit of the amount column)."""

    def __init__(self, **values: Any) -> None:
        """A bad value is a :class:`RetainInputError` naming the field."""
        try:
            super().__init__(**values)
        except (SettingsError, ValidationError) as error:
            raise RetainInputError(f"report settings: {error}") from error


def read_scores(folder: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``scores.parquet`` (a file, or a folder of part files as the Spark engine writes it) and
    ``manifest.json`` of a scoring output."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RetainInputError(
            f"scores: {folder} is not a folder (give the output of retain score)"
        )
    path = folder / SCORES_FILE
    if not path.exists():
        raise RetainInputError(f"scores: no {SCORES_FILE} in {folder}")
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        raise RetainInputError(f"scores: no {MANIFEST_FILE} in {folder}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RetainInputError(f"scores: cannot read {manifest_path}: {error}") from error
    if not isinstance(manifest, dict) or "as_of" not in manifest:
        raise RetainInputError(f"scores: {manifest_path} has no as_of")
    try:
        scores = pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise RetainInputError(f"scores: cannot read {path}: {error}") from error
    if scores.empty:
        raise RetainInputError(f"scores: {path} holds no customer")
    if "customer_id" not in scores:
        raise RetainInputError(f"scores: {path} has no customer_id column")
    return scores, manifest


def load_action_settings(path: str | Path | None) -> tuple[ActionSettings, DiscountSettings]:
    """The action plan's settings and the discount settings, from one TOML or JSON file.

    The file's ``[discounts]`` table holds :class:`~retain.actions.discounts.DiscountSettings`
    fields (levels, margin_rate, response_rates, ...); its other tables are
    :class:`~retain.actions.ActionSettings` parts (segments, tiers, outreach, audience). Without a
    file: the defaults (and the ``RETAIN_ACTIONS_*`` variables).
    """
    from retain.actions import ActionSettings
    from retain.actions.discounts import DiscountSettings

    if path is None:
        return ActionSettings(), DiscountSettings()
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise RetainInputError(f"settings: {path} is neither a .toml nor a .json file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise RetainInputError(f"settings: no file at {path}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise RetainInputError(f"settings: cannot read {path}: {error}") from error
    try:
        values = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise RetainInputError(f"settings: cannot read {path}: {error}") from error
    if not isinstance(values, dict):
        raise RetainInputError(f"settings: {path} must hold tables of settings")
    values.pop(_REPORT_TABLE, None)  # the report's own table: load_report_settings
    discounts = values.pop("discounts", {})
    if not isinstance(discounts, dict):
        raise RetainInputError(f"settings: [discounts] in {path} must be a table")
    try:
        return ActionSettings(**values), DiscountSettings(**discounts)
    except RetainInputError as error:
        raise RetainInputError(f"{error} (in {path})") from error


def load_report_settings(path: str | Path | None) -> ReportSettings:
    """The ``[report]`` table of the settings file that :func:`load_action_settings` reads (what
    it leaves out from ``RETAIN_REPORT_*`` variables, then the defaults); without a file, the
    variables and the defaults. The file was read once already, so its errors were reported."""
    if path is None:
        return ReportSettings()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        values = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise RetainInputError(f"settings: cannot read {path}: {error}") from error
    table = values.get(_REPORT_TABLE, {}) if isinstance(values, dict) else {}
    if not isinstance(table, dict):
        raise RetainInputError(f"settings: [{_REPORT_TABLE}] in {path} must be a table")
    try:
        return ReportSettings(**table)
    except RetainInputError as error:
        raise RetainInputError(f"{error} (in {path})") from error


def read_campaign_history(path: str | Path) -> pd.DataFrame:
    """A campaign history file (CSV or parquet): one row per customer with ``customer_id``,
    ``treatment`` (the discount level they got, 0 for the control group), ``purchased`` (0/1),
    ``revenue`` and the features (their scores at the campaign's start)."""
    path = Path(path)
    if not path.exists():
        raise RetainInputError(f"campaign history: no file at {path}")
    name = path.name.lower()
    try:
        if name.endswith(".parquet") or path.is_dir():
            history = pd.read_parquet(path)
        elif name.endswith((".csv", ".csv.gz")):
            history = pd.read_csv(path, dtype={"customer_id": "str"})
        else:
            raise RetainInputError(
                f"campaign history: {path} is neither parquet nor CSV (.parquet or .csv)"
            )
    except (OSError, ValueError, pd.errors.ParserError) as error:
        if isinstance(error, RetainInputError):
            raise
        raise RetainInputError(f"campaign history: cannot read {path}: {error}") from error
    if history.empty:
        raise RetainInputError(f"campaign history: {path} holds no row")
    if "customer_id" in history:
        history["customer_id"] = history["customer_id"].astype("str")
    return history
