"""Action settings: documented defaults, files (TOML, JSON) and variables, and clear refusals."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retain.actions import (
    ActionSettings,
    AudienceSettings,
    OutreachSettings,
    SegmentRules,
    TierSettings,
)
from retain.actions.discounts import DiscountSettings
from retain.cli import app
from retain.errors import RetainInputError
from retain.jobs.action_settings import ReportSettings, load_action_settings, load_report_settings


@pytest.fixture(autouse=True)
def no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RETAIN_ACTIONS_* variable of the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("RETAIN_ACTIONS_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = ActionSettings()
    assert settings.segments == SegmentRules(
        new_max_days=90,
        lapsed_p_alive=0.1,
        lapsed_days=365,
        high_value_quantile=0.8,
        high_value_clv=None,
        at_risk_churn=0.5,
        champion_max_churn=0.3,
    )
    assert settings.tiers.names == ["Bronze", "Silver", "Gold", "Platinum"]
    assert settings.tiers.quantiles == [0.5, 0.8, 0.95]
    assert settings.tiers.amounts is None
    assert settings.outreach == OutreachSettings(lead_days=3, gap_factor=1.0, grace_days=7)
    assert settings.audience == AudienceSettings(
        min_churn_probability=0.5,
        min_value_at_risk=0,
        max_size=None,
        exclude_actions=["let go", "nurture", "no discount"],
    )


CHANGED = ActionSettings(
    segments=SegmentRules(high_value_clv=250.0, at_risk_churn=0.65, new_max_days=30),
    tiers=TierSettings(names=["Member", "VIP", "Inner circle"], amounts=[100.0, 1_000.5]),
    outreach=OutreachSettings(lead_days=5, grace_days=0, gap_factor=1.5),
    audience=AudienceSettings(max_size=500, exclude_actions=["let go", "no discount"]),
)


@pytest.mark.parametrize("suffix", [".toml", ".json", ".TOML"])
def test_a_settings_file_round_trip(tmp_path: Path, suffix: str) -> None:
    path = CHANGED.to_file(tmp_path / f"actions{suffix}")
    assert ActionSettings.from_file(path) == CHANGED
    assert ActionSettings.from_file(ActionSettings().to_file(tmp_path / f"d{suffix}")) == (
        ActionSettings()
    )


def test_a_toml_file_written_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "actions.toml"
    path.write_text(
        '[segments]\nhigh_value_quantile = 0.9\n\n[tiers]\nnames = ["A", "B"]\nquantiles = [0.7]\n'
    )
    settings = ActionSettings.from_file(path)
    assert settings.segments.high_value_quantile == 0.9
    assert settings.segments.at_risk_churn == 0.5  # left out: the default
    assert settings.tiers.names == ["A", "B"]
    assert settings.outreach == OutreachSettings()


def test_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "actions.json"
    path.write_text(json.dumps({"outreach": {"lead_days": 10}}))
    assert ActionSettings.from_file(path).outreach.lead_days == 10


def test_variables_fill_in_what_the_file_leaves_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETAIN_ACTIONS_OUTREACH__LEAD_DAYS", "9")
    monkeypatch.setenv("RETAIN_ACTIONS_OUTREACH__GRACE_DAYS", "2")
    monkeypatch.setenv("RETAIN_ACTIONS_TIERS__NAMES", '["Low", "High"]')
    monkeypatch.setenv("RETAIN_ACTIONS_TIERS__QUANTILES", "[0.9]")
    assert ActionSettings().outreach.lead_days == 9
    assert ActionSettings().tiers.names == ["Low", "High"]
    path = tmp_path / "actions.toml"
    path.write_text("[outreach]\nlead_days = 5\n")
    settings = ActionSettings.from_file(path)
    assert settings.outreach.lead_days == 5  # the file wins
    assert settings.outreach.grace_days == 2  # the variable fills in


def test_a_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIN_ACTIONS_OUTREACH__LEAD_DAYS", "soon")
    with pytest.raises(RetainInputError, match=r"outreach\.lead_days"):
        ActionSettings()


def test_an_unknown_setting_is_refused_with_its_name_and_file(tmp_path: Path) -> None:
    path = tmp_path / "actions.toml"
    path.write_text("[outreach]\nlead_day = 5\n")
    with pytest.raises(
        RetainInputError, match=r"outreach\.lead_day: unknown setting.*actions\.toml"
    ):
        ActionSettings.from_file(path)
    with pytest.raises(RetainInputError, match="discounts: unknown table"):
        ActionSettings(discounts={})


def test_an_unknown_table_lists_the_tables(tmp_path: Path) -> None:
    """The issue's ``[retargeting]``: the error names the tables a settings file can hold."""
    path = tmp_path / "actions.toml"
    path.write_text("[retargeting]\nmax_size = 100\n")
    tables = "segments, tiers, outreach, audience, discounts, report"
    with pytest.raises(
        RetainInputError, match=f"retargeting: unknown table; the tables are {tables}"
    ):
        ActionSettings.from_file(path)
    with pytest.raises(RetainInputError, match=f"the tables are {tables}.*actions\\.toml"):
        load_action_settings(path)


def test_an_unknown_key_lists_its_tables_keys(tmp_path: Path) -> None:
    """The issue's ``audience.foo``: the error names the keys of [audience], not the tables."""
    path = tmp_path / "actions.toml"
    path.write_text("[audience]\nfoo = 1\n")
    keys = "min_churn_probability, min_value_at_risk, max_size, exclude_actions"
    with pytest.raises(
        RetainInputError, match=f"audience\\.foo: unknown setting; \\[audience\\] takes {keys}"
    ):
        load_action_settings(path)


def test_print_settings_lists_every_key_as_toml_that_loads_back(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["audiences", "--print-settings"])
    assert result.exit_code == 0, result.output
    text = result.output
    parsed = tomllib.loads(text)
    models = {
        "segments": SegmentRules,
        "tiers": TierSettings,
        "outreach": OutreachSettings,
        "audience": AudienceSettings,
        "discounts": DiscountSettings,
        "report": ReportSettings,
    }
    assert list(parsed) == list(models)
    for table, model in models.items():
        for key in model.model_fields:  # every key, set or (an optional one) commented out
            assert f"\n{key} = " in text or f"\n# {key} = " in text, (table, key)
    assert "# Discount levels on offer" in text  # with its meaning
    path = tmp_path / "printed.toml"
    path.write_text(text)
    actions, discounts = load_action_settings(path)
    assert actions == ActionSettings()
    assert discounts == DiscountSettings()
    assert load_report_settings(path) == ReportSettings.model_construct()


def test_the_settings_help_names_the_tables_and_the_printout() -> None:
    result = CliRunner().invoke(app, ["audiences", "--help"], env={"COLUMNS": "200"})
    help_text = " ".join(result.output.split())
    assert ", ." not in help_text  # the "segments, tiers, outreach, audience, ."
    assert "[audience], [discounts] and [report]; --print-settings shows every key" in help_text


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"outreach": {"lead_days": -1}}, r"outreach\.lead_days: .*greater than or equal to 0"),
        ({"segments": {"high_value_quantile": 1.0}}, r"segments\.high_value_quantile"),
        ({"tiers": {"quantiles": [0.5, 0.4, 0.9]}}, r"tiers: tier quantiles must be .*increasing"),
        ({"tiers": {"quantiles": [0.5, 0.8]}}, "4 tiers need 3 quantiles .* not 2"),
        ({"tiers": {"names": ["A", "B"], "amounts": [1.0, 2.0]}}, "2 tiers need 1 amounts"),
        ({"tiers": {"names": ["A", "B"], "quantiles": [1.5]}}, "between 0 and 1"),
        ({"tiers": {"names": ["A", "A"], "quantiles": [0.5]}}, "distinct"),
        ({"audience": {"max_size": 0}}, r"audience\.max_size"),
    ],
)
def test_bad_values_are_refused(values: dict[str, dict[str, object]], message: str) -> None:
    with pytest.raises(RetainInputError, match=message):
        ActionSettings(**values)


def test_amount_cuts_need_not_be_quantiles() -> None:
    tiers = TierSettings(names=["A", "B"], amounts=[1_000.0])
    assert tiers.amounts == [1_000.0]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("missing.toml", None, "no file at"),
        ("actions.yaml", "a: 1", "neither a .toml nor a .json file"),
        ("broken.toml", "[outreach\nlead_days = 5", "cannot read"),
        ("broken.json", "{", "cannot read"),
        ("list.json", "[1, 2]", "must hold a table"),
    ],
)
def test_unreadable_files_are_refused(
    tmp_path: Path, name: str, text: str | None, message: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(RetainInputError, match=message):
        ActionSettings.from_file(path)


def test_to_file_refuses_other_formats(tmp_path: Path) -> None:
    with pytest.raises(RetainInputError, match=r"neither a \.toml nor a \.json file"):
        ActionSettings().to_file(tmp_path / "actions.yaml")


def test_an_unknown_variable_is_refused_with_the_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic-settings ignores a variable that names no field: a typo would go unnoticed."""
    monkeypatch.setenv("RETAIN_ACTIONS_OUTREACH__LEAD_DAYS", "4")  # valid: not named
    monkeypatch.setenv("RETAIN_ACTIONS_OUTRECH__LEAD_DAYS", "5")
    with pytest.raises(
        RetainInputError,
        match=r"unknown variable\(s\) RETAIN_ACTIONS_OUTRECH__LEAD_DAYS; .*"
        r"PART one of SEGMENTS, TIERS, OUTREACH, AUDIENCE",
    ):
        ActionSettings()


def test_settings_are_frozen() -> None:
    settings = ActionSettings()
    with pytest.raises(ValueError, match="frozen"):
        settings.outreach.lead_days = 9  # type: ignore[misc]
    with pytest.raises(ValueError, match="frozen"):
        settings.outreach = OutreachSettings()  # type: ignore[misc]
