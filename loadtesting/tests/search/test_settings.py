"""Each hone-in setting is defined once: its field makes its option, and the option maps back to it."""

import argparse
from dataclasses import fields

import pytest

from lampi_load.search.settings import SearchSettings, add_options, from_options, recorded_fraction, resolution


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_options(parser.add_argument_group("hone-in search"))
    return parser


def test_no_options_give_the_default_settings():
    assert from_options(parser().parse_args([])) == SearchSettings()


def test_every_setting_has_an_option_with_its_docstring_as_help():
    options = {action.dest: action for action in parser()._actions if action.dest.startswith("hone_")}
    assert len(options) == len(fields(SearchSettings))
    assert options["hone_spawn_rate"].help == "Users started per second, in the probe's ramp and in each level's ramp."
    assert all(action.help for action in options.values())
    parser().format_help()  # a stray % in a docstring would break argparse's help


def test_options_map_back_with_percentages_and_zero_as_off():
    args = ["--hone-hold", "20", "--hone-max-users", "500", "--hone-resolution-pct", "10", "--hone-max-p95-ms", "0"]
    settings = from_options(parser().parse_args([*args, "--hone-expected-rps-per-user", "0.5"]))
    assert settings.hold == 20.0
    assert settings.max_users == 500
    assert isinstance(settings.max_users, int)  # a user count, never 500.0
    assert settings.resolution_fraction == pytest.approx(0.10)
    assert settings.max_p95_ms is None
    assert settings.expected_rps_per_user == 0.5


def test_a_mistyped_value_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["--hone-max-users", "many"])
    assert "--hone-max-users: invalid int value" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--hone-spawn-rate", "0"], "--hone-spawn-rate 0: give users per second above 0"),
        (["--hone-hold", "-5"], "--hone-hold -5: give seconds above 0"),
        (["--hone-resolution-users", "0"], "--hone-resolution-users 0: give at least 1 user"),
        (["--hone-resolution-pct", "150"], "--hone-resolution-pct 150: give a percentage from 0 to under 100"),
        (["--hone-max-users", "0"], "--hone-max-users 0: give at least 1 user"),
        (["--hone-usable-p95-ms", "-1"], "--hone-usable-p95-ms -1: give ms above 0, or 0 for off"),
        (["--hone-max-p95-ms", "-1"], "--hone-max-p95-ms -1: give ms above 0, or 0 for off"),
        (["--hone-levels", "100,ten"], "--hone-levels 100,ten: give user counts from 1 to --hone-max-users"),
        (["--hone-levels", "100,0"], "--hone-levels 100,0: give user counts from 1 to --hone-max-users"),
        (["--hone-levels", "100,,110"], "--hone-levels 100,,110: give user counts"),
        (["--hone-max-users", "50", "--hone-levels", "60"], "--hone-levels 60: give user counts from 1 to "),
    ],
)
def test_settings_the_search_cannot_run_with_are_refused_naming_the_option(args, line):
    # A spawn rate of 0 never ramps; a resolution of 0 users never ends its bisection.
    with pytest.raises(ValueError, match="^" + line.replace("+", r"\+")):
        from_options(parser().parse_args(args))


def test_a_recorded_verdict_gives_each_answer_its_own_resolution_fraction():
    settings = {"resolution_fraction": 0.05, "usable_resolution_fraction": 0.10}
    assert recorded_fraction(settings) == 0.05
    assert recorded_fraction(settings, "max_users_usable") == 0.10
    # Verdicts from before the usable search had its own resolution used the error-free one for both.
    assert recorded_fraction({"resolution_fraction": 0.05}, "max_users_usable") == 0.05
    assert recorded_fraction({}, "max_users_usable") is None


def test_the_resolution_is_a_fraction_of_the_users_but_never_under_resolution_users():
    assert resolution(10, 0.05, 100) == 10
    assert resolution(10, 0.05, 1000) == 50
    assert resolution(10, 0.10, 965) == 96.5


def test_given_levels_are_read_in_order_with_repeats():
    assert from_options(parser().parse_args(["--hone-levels", "102, 112,102"])).given_levels() == [102, 112, 102]
    assert from_options(parser().parse_args([])).given_levels() == []
