"""Discount settings: defaults, validation, and the lines the report prints."""

from __future__ import annotations

import pytest

from retain.actions.discounts import DiscountSettings
from retain.errors import RetainInputError


def test_defaults() -> None:
    settings = DiscountSettings()
    assert settings.levels == [0.0, 0.05, 0.10, 0.20]
    assert settings.offered_levels == [0.05, 0.10, 0.20]
    assert settings.margin_rate == 0.30
    assert settings.budget is None
    assert settings.response_rates == {0.05: 0.03, 0.10: 0.06, 0.20: 0.10}
    assert settings.min_net_value == 0.0


def test_levels_are_sorted_and_include_no_discount() -> None:
    settings = DiscountSettings(levels=[0.2, 0.1], response_rates={0.1: 0.05, 0.2: 0.08})
    assert settings.levels == [0.0, 0.1, 0.2]


def test_rates_from_text_keys() -> None:
    """Configuration files give mapping keys as text."""
    settings = DiscountSettings(levels=[0, 0.15], response_rates={"0.15": "0.07"})
    assert settings.response_rates == {0.15: 0.07}


def test_describe_prints_the_assumptions() -> None:
    lines = DiscountSettings(budget=5000).describe()
    text = "\n".join(lines)
    assert all(isinstance(line, str) and line for line in lines)
    assert "5%, 10%, 20%" in text
    assert "30% of revenue" in text
    assert "5,000.00" in text
    assert "5% -> 0.03, 10% -> 0.06, 20% -> 0.1" in text
    assert "rate x (1 - P(purchase in 30 days)) x P(alive)" in text
    assert "would have placed anyway" in text
    assert "no cap" in "\n".join(DiscountSettings().describe())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"levels": [0.05, 1.5]}, "levels"),
        ({"levels": [0.05, 0.05]}, "repeated"),
        ({"margin_rate": 0}, "margin_rate"),
        ({"budget": -1}, "budget"),
        ({"response_rates": {0.05: 0.03, 0.10: 0.06}}, "no rate for the level.*20%"),
        ({"response_rates": {0.05: 2, 0.10: 0.06, 0.20: 0.1}}, "probabilities"),
        ({"min_net_value": -1}, "min_net_value"),
        ({"budjet": 10}, "budjet"),
    ],
)
def test_bad_settings(values: dict[str, object], message: str) -> None:
    with pytest.raises(RetainInputError, match=message):
        DiscountSettings(**values)


def test_an_unknown_key_is_named_with_the_valid_keys() -> None:
    """A typo in a [discounts] table is refused, and the error says what the table takes."""
    with pytest.raises(
        RetainInputError,
        match=r"budjet: unknown setting; \[discounts\] takes levels, margin_rate, budget, "
        "response_rates, min_net_value",
    ):
        DiscountSettings(budjet=10)


def test_settings_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        DiscountSettings().budget = 5.0  # type: ignore[misc]
