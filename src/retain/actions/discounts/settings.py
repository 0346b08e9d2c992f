"""What a discount campaign may offer, what it costs, and what the rule mode assumes.

The economics, in one place (every function of the package uses them):

- **Incremental margin** of an offer = ``margin_rate`` x the revenue it adds: the revenue of the
  customer's orders in the campaign window if they get the offer, minus the revenue they would have
  spent anyway. Revenue is counted at full price (before the discount).
- **Cost** of an offer = the discount level x the revenue of every order it is used on, including
  the orders the customer would have placed anyway. This is why a discount sent to a customer who
  buys anyway is pure waste: it adds no margin and costs ``level`` x their whole basket.
- **Net value** = incremental margin - cost. A customer gets the level with the best net value that
  the budget (a cap on the total expected cost) allows, and no discount at all when no level is
  worth more than ``min_net_value``.

Without campaign history, the **rule mode** assumes the response: the extra probability of a purchase
in the next 30 days is ``response_rates[level] x (1 - p_purchase_30d) x p_alive``. It vanishes for
customers certain to buy anyway (no headroom) and for customers who are gone (nobody left to
persuade). The rates are assumptions, not estimates: :meth:`DiscountSettings.describe` prints them,
and the report shows them beside the audience they produced.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from retain.errors import RetainInputError

__all__ = ["DiscountSettings"]


def _percent(level: float) -> str:
    """0.05 -> '5%', 0.125 -> '12.5%'."""
    return f"{level * 100:.4g}%"


class DiscountSettings(BaseModel):
    """The levels on offer, the margin, the budget, and the rule mode's assumed response rates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    levels: list[float] = Field(default=[0.0, 0.05, 0.10, 0.20])
    """Discount levels on offer, as fractions of the price; 0 (no discount) is always an option."""
    margin_rate: float = Field(default=0.30, gt=0, le=1)
    """Gross margin as a fraction of (full-price) revenue: incremental margin = this x incremental
    revenue."""
    budget: float | None = Field(default=None, ge=0)
    """Cap on the total expected discount cost of a campaign; None: no cap (every customer with a
    positive net value gets their best level)."""
    response_rates: dict[float, float] = Field(
        default_factory=lambda: {0.05: 0.03, 0.10: 0.06, 0.20: 0.10}
    )
    """Rule mode: level -> the extra purchase probability it gives an alive customer with no
    intention of buying; scaled by ``(1 - p_purchase_30d) x p_alive``."""
    min_net_value: float = Field(default=0.0, ge=0)
    """Offers worth no more than this (in currency, per customer) are not made; raise it to skip
    offers that are worth less than sending them."""

    def __init__(self, **values: Any) -> None:
        """Settings from keyword arguments; a bad value is a :class:`RetainInputError` naming the
        field (not a pydantic traceback), and an unknown key one that lists the valid keys (a
        typo in a ``[discounts]`` table must not leave a default in place unnoticed)."""
        try:
            super().__init__(**values)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, problem['loc'])) or 'settings'}: "
                + (
                    f"unknown setting; [discounts] takes {', '.join(type(self).model_fields)}"
                    if problem["type"] == "extra_forbidden"
                    else problem["msg"]
                )
                for problem in error.errors()
            )
            raise RetainInputError(f"discount settings: {problems}") from error

    @field_validator("levels")
    @classmethod
    def _check_levels(cls, levels: list[float]) -> list[float]:
        bad = [level for level in levels if not 0 <= level < 1]
        if bad:
            raise ValueError(f"levels must be fractions in [0, 1), not {bad}")
        if len(set(levels)) != len(levels):
            raise ValueError(f"levels are repeated: {levels}")
        return sorted({0.0, *(float(level) for level in levels)})

    @field_validator("response_rates")
    @classmethod
    def _check_rates(cls, rates: dict[float, float]) -> dict[float, float]:
        bad = {level: rate for level, rate in rates.items() if not 0 <= rate <= 1}
        if bad:
            raise ValueError(f"response rates must be probabilities in [0, 1], not {bad}")
        return {float(level): float(rate) for level, rate in sorted(rates.items())}

    @model_validator(mode="after")
    def _rates_for_every_level(self) -> Self:
        missing = [level for level in self.offered_levels if level not in self.response_rates]
        if missing:
            raise ValueError(
                "response_rates has no rate for the level(s) "
                f"{', '.join(_percent(level) for level in missing)}"
            )
        return self

    @property
    def offered_levels(self) -> list[float]:
        """The levels above zero: the discounts that can actually be sent."""
        return [level for level in self.levels if level > 0]

    def describe(self) -> list[str]:
        """The assumptions in plain words, one line each, for the report."""
        offered = ", ".join(_percent(level) for level in self.offered_levels) or "none"
        rates = ", ".join(
            f"{_percent(level)} -> {self.response_rates[level]:.3g}"
            for level in self.offered_levels
        )
        margin = _percent(self.margin_rate)
        budget = (
            "no cap: every customer with a positive net value gets their best level"
            if self.budget is None
            else f"{self.budget:,.2f} of expected discount cost in total"
        )
        lines = [
            f"Discount levels on offer: {offered} (or no discount).",
            f"Gross margin: {margin} of revenue; incremental margin = {margin} x the revenue an "
            "offer adds (full price, in the campaign window).",
            "Cost of an offer: the level x the revenue of every order it is used on, including "
            "orders the customer would have placed anyway (so discounting sure buyers is waste).",
            "Net value = incremental margin - cost; each customer gets the level with the best net "
            "value within the budget, and none when no level is worth more than "
            f"{self.min_net_value:,.2f}.",
            f"Budget: {budget}.",
            "With campaign history (uplift mode): the extra purchases and revenue each level brings "
            "are estimated per customer from treated and held-out customers (T- or X-learner on "
            "LightGBM).",
            "Without it (rule mode), the assumed response: extra probability of a purchase in the "
            "next 30 days = rate x (1 - P(purchase in 30 days)) x P(alive), with rates "
            f"{rates}; revenue per order = the customer's average order value.",
        ]
        return lines
