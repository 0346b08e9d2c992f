"""The thresholds of the action plan: lifecycle segments, loyalty tiers, outreach timing, audiences.

Every field has a documented default, so ``ActionSettings()`` is a complete plan. A marketing team
changes what it wants in a TOML or JSON file read by :meth:`ActionSettings.from_file`, one table per
part::

    [segments]
    high_value_quantile = 0.9
    at_risk_churn = 0.6

    [tiers]
    names = ["Member", "Silver", "Gold"]
    amounts = [50.0, 200.0]

    [outreach]
    lead_days = 5

Fields the file leaves out come from ``RETAIN_ACTIONS_<PART>__<FIELD>`` environment variables (for
example ``RETAIN_ACTIONS_OUTREACH__LEAD_DAYS=5``; lists as JSON), then from the defaults. A value in
the file wins over a variable. The settings are frozen. An unknown ``RETAIN_ACTIONS_*`` variable is an
error that lists the parts, and an unknown key is an error (a typo must not pass silently) that
lists the valid keys at the level of the mistake (the table names for an unknown table, that
table's keys for an unknown key), and so is a bad value: both are
:class:`~retain.errors.RetainInputError` naming the field.

The settings file of ``retain audiences --settings`` also holds a ``[discounts]`` table
(:class:`~retain.actions.discounts.DiscountSettings`) and a ``[report]`` table
(:class:`~retain.jobs.action_settings.ReportSettings`); ``retain audiences --print-settings`` prints
every key of every table with its default and meaning, as TOML that loads back unchanged
(:func:`settings_toml`).

Optional fields (``high_value_clv``, ``amounts``, ``max_size``) default to ``None`` and, when set,
replace the behaviour described beside them; so a file that leaves them out means the default.
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import os
import textwrap
import tomllib
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any, Final, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from retain.errors import RetainInputError

__all__ = [
    "ENV_PREFIX",
    "ActionSettings",
    "AudienceSettings",
    "OutreachSettings",
    "SegmentRules",
    "TierSettings",
    "settings_toml",
]

ENV_PREFIX: Final = "RETAIN_ACTIONS_"
# The settings file's tables read by other models than ActionSettings (retain.jobs.action_settings
# reads them): named in the error about an unknown table.
OTHER_FILE_TABLES: Final = ("discounts", "report")
_SUFFIXES: Final = (".toml", ".json")


class _Part(BaseModel):
    """One table of the settings file: frozen, and an unknown key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SegmentRules(_Part):
    """Thresholds of the lifecycle segments (:mod:`retain.actions.segments`, which lists the rules
    and their order). Whether a customer is overdue is decided by :class:`OutreachSettings`."""

    new_max_days: float = Field(default=90.0, ge=0)
    """``newcomer``: one purchase day so far (``frequency == 0``), made fewer than this many days ago
    (``T``)."""
    lapsed_p_alive: float = Field(default=0.1, ge=0, le=1)
    """``lapsed``: BG/NBD P(alive) below this..."""
    lapsed_days: float = Field(default=365.0, gt=0)
    """... or no purchase for more than this many days."""
    high_value_quantile: float = Field(default=0.8, gt=0, lt=1)
    """High value: predicted CLV above this quantile of the scored base (the top 20%)."""
    high_value_clv: float | None = Field(default=None, ge=0)
    """High value: predicted CLV at or above this amount; when set, replaces the quantile."""
    at_risk_churn: float = Field(default=0.5, ge=0, le=1)
    """``high value, slipping``: high value and churn probability at or above this."""
    champion_max_churn: float = Field(default=0.3, ge=0, le=1)
    """``high value, secure``: high value and churn probability below this."""


class TierSettings(_Part):
    """Loyalty tiers by predicted CLV, lowest first (:mod:`retain.actions.tiers`).

    A customer is in the highest tier whose cut their CLV is above (a quantile cut) or at or above
    (an amount): with the defaults, Bronze up to the median, Silver above it, Gold above the 80th
    percentile, Platinum for the top 5%.
    """

    names: list[str] = Field(default=["Bronze", "Silver", "Gold", "Platinum"], min_length=2)
    """Tier names, lowest first."""
    quantiles: list[float] = Field(default=[0.5, 0.8, 0.95])
    """Lower cut of each tier but the first, as a quantile of the scored base's CLV."""
    amounts: list[float] | None = None
    """Lower cut of each tier but the first, as a CLV amount; when set, replaces the quantiles."""

    @model_validator(mode="after")
    def _check_cuts(self) -> Self:
        if len(set(self.names)) != len(self.names) or any(not n.strip() for n in self.names):
            raise ValueError(f"tier names must be distinct and not blank, not {self.names}")
        cuts, kind = (
            (self.amounts, "amounts") if self.amounts is not None else (self.quantiles, "quantiles")
        )
        if len(cuts) != len(self.names) - 1:
            raise ValueError(
                f"{len(self.names)} tiers need {len(self.names) - 1} {kind} (one cut between each "
                f"pair of tiers), not {len(cuts)}"
            )
        if any(not math.isfinite(c) for c in cuts) or any(b <= a for a, b in pairwise(cuts)):
            raise ValueError(f"tier {kind} must be finite and increasing, not {cuts}")
        if self.amounts is None and any(not 0 < q < 1 for q in cuts):
            raise ValueError(f"tier quantiles must be between 0 and 1 (exclusive), not {cuts}")
        return self


class OutreachSettings(_Part):
    """When to contact each customer, and when a customer counts as overdue
    (:mod:`retain.actions.outreach`)."""

    lead_days: int = Field(default=3, ge=0)
    """Contact this many days before the expected next purchase (never before the as-of day)."""
    gap_factor: float = Field(default=1.0, gt=0)
    """Overdue: days since the last purchase above ``gap_factor`` times the usual gap..."""
    grace_days: float = Field(default=7.0, ge=0)
    """... plus this many days. The usual gap is the mean time between a repeat customer's
    purchase days; one-time buyers have none and are never overdue."""


class AudienceSettings(_Part):
    """Who goes in the retargeting audience (:mod:`retain.actions.audiences`)."""

    min_churn_probability: float = Field(default=0.5, ge=0, le=1)
    """Only customers at least this likely to churn: retargeting is for lapsing customers."""
    min_value_at_risk: float = Field(default=0.0, ge=0)
    """Only customers with at least this much value at risk (churn probability x CLV); a customer
    with none is never in the audience."""
    max_size: int | None = Field(default=None, ge=1)
    """At most this many customers, highest value at risk first; default: no limit."""
    exclude_actions: list[str] = Field(default=["let go", "nurture", "no discount"])
    """Recommended actions (:mod:`retain.actions.recommend`) kept out of the audience, so that it
    holds the customers whose action is ``win back`` or ``reactivate``: ``let go`` customers
    (lapsed, not valuable, P(alive) under 5%) are not worth paid media, and a ``nurture`` or ``no
    discount`` customer is on their own rhythm or likely to buy anyway, whatever their churn risk
    over the horizon (a usual gap longer than the horizon makes it high)."""


class ActionSettings(BaseSettings):
    """Every threshold of the action plan; each part can be set by environment variables
    ``RETAIN_ACTIONS_<PART>__<FIELD>`` or by a file (:meth:`from_file`)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    segments: SegmentRules = Field(default_factory=SegmentRules)
    tiers: TierSettings = Field(default_factory=TierSettings)
    outreach: OutreachSettings = Field(default_factory=OutreachSettings)
    audience: AudienceSettings = Field(default_factory=AudienceSettings)

    def __init__(self, **values: Any) -> None:
        """Settings from the arguments, then ``RETAIN_ACTIONS_*`` variables, then the defaults; a
        bad value is a :class:`RetainInputError` naming the field (not a pydantic traceback)."""
        _check_variables()
        try:
            super().__init__(**values)
        except SettingsError as error:  # a variable that is not valid JSON for its field
            raise RetainInputError(f"action settings: {error}") from error
        except ValidationError as error:
            raise RetainInputError(f"action settings: {_problems(error)}") from error

    @classmethod
    def from_file(cls, path: str | Path) -> ActionSettings:
        """Settings from a TOML or JSON file (by its suffix); what it leaves out comes from the
        environment, then the defaults."""
        path = Path(path)
        if path.suffix.lower() not in _SUFFIXES:
            raise RetainInputError(f"action settings: {path} is neither a .toml nor a .json file")
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as error:
            raise RetainInputError(f"action settings: no file at {path}") from error
        try:
            values = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
            raise RetainInputError(f"action settings: cannot read {path}: {error}") from error
        if not isinstance(values, dict):
            raise RetainInputError(f"action settings: {path} must hold a table of settings")
        try:
            return cls(**values)
        except RetainInputError as error:
            raise RetainInputError(f"{error} (in {path})") from error

    def to_file(self, path: str | Path) -> Path:
        """Write every setting to a TOML or JSON file (by its suffix) that :meth:`from_file`
        reads back as these settings."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in _SUFFIXES:
            raise RetainInputError(f"action settings: {path} is neither a .toml nor a .json file")
        values = self.model_dump(exclude_none=True)
        text = _toml(values) if suffix == ".toml" else json.dumps(values, indent=2) + "\n"
        path.write_text(text, encoding="utf-8")
        return path


def _check_variables() -> None:
    """Refuse a ``RETAIN_ACTIONS_*`` variable that names no part: pydantic-settings would ignore
    it, so a typo in a deployment's environment would silently leave a default in place. (A typo
    in a field name, ``..._OUTREACH__LEAD_DAY``, is refused by the part itself.)"""
    parts = [name.upper() for name in ActionSettings.model_fields]
    unknown = sorted(
        name
        for name in os.environ
        if name.upper().startswith(ENV_PREFIX)
        and name.upper().removeprefix(ENV_PREFIX).split("__")[0] not in parts
    )
    if unknown:
        raise RetainInputError(
            f"action settings: unknown variable(s) {', '.join(unknown)}; the variables are "
            f"{ENV_PREFIX}<PART>__<FIELD> with PART one of {', '.join(parts)}"
        )


def _problems(error: ValidationError) -> str:
    """Each problem as ``field: what is wrong`` (with the bad value, when it is a single one)."""
    messages = []
    for problem in error.errors():
        where = ".".join(map(str, problem["loc"])) or "settings"
        if problem["type"] == "value_error":  # one of our checks: its message says it all
            messages.append(f"{where}: {problem.get('ctx', {}).get('error', problem['msg'])}")
        elif problem["type"] == "extra_forbidden":
            messages.append(f"{where}: {_unknown(problem['loc'])}")
        else:
            messages.append(f"{where}: {problem['msg']}, not {problem['input']!r}")
    return "; ".join(messages)


def _unknown(loc: tuple[int | str, ...]) -> str:
    """What an unknown key is, with the valid keys at its level: table names for a table, the
    table's keys for a key of a known table."""
    if len(loc) == 1:
        tables = [*ActionSettings.model_fields, *OTHER_FILE_TABLES]
        return f"unknown table; the tables are {', '.join(tables)}"
    field = ActionSettings.model_fields.get(str(loc[0]))
    part = field.annotation if field is not None else None
    if isinstance(part, type) and issubclass(part, BaseModel):
        return f"unknown setting; [{loc[0]}] takes {', '.join(part.model_fields)}"
    return "unknown setting"


def settings_toml(tables: Mapping[str, BaseModel], header: str = "") -> str:
    """Settings as TOML, every key with its meaning above it (the field's docstring) and its
    value; an unset optional key (``None``) is a commented-out line, since TOML has no null.
    Reading the text back gives the same settings."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for name, settings in tables.items():
        docs = _field_docs(type(settings))
        lines += ["", f"[{name}]"]
        for key in type(settings).model_fields:
            value = getattr(settings, key)
            for line in textwrap.wrap(docs.get(key, ""), 96):
                lines.append(f"# {line}")
            if value is None:
                lines.append(f"# {key} =   (not set)")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def _field_docs(model: type[BaseModel]) -> dict[str, str]:
    """The docstrings written under each field of a settings class, as one line each."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(model)))
    except (OSError, TypeError):  # no source at hand: keys and values without their meaning
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for field, after in pairwise(body):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[field.target.id] = " ".join(after.value.value.split())
    return docs


def _toml(values: dict[str, dict[str, Any]]) -> str:
    """The settings as TOML: one table per part, of numbers, strings and lists of them."""
    tables = []
    for part, fields in values.items():
        lines = [f"[{part}]"]
        lines += [f"{name} = {_toml_value(value)}" for name, value in fields.items()]
        tables.append("\n".join(lines))
    return "\n\n".join(tables) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # keys as strings: TOML keys are (and pydantic reads them back)
        pairs = (f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }"
    raise TypeError(f"no TOML for {value!r}")
