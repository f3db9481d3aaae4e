"""The settings registry: Config's fields make the `serve` options; values are checked once."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from chatroom.cli import main
from chatroom.config import Config, ConfigError, Setting, settings

RANGED = [s for s in settings() if s.min is not None or s.max is not None]


@pytest.fixture(autouse=True)
def no_chatroom_environment(monkeypatch):
    for entry in settings():
        monkeypatch.delenv(entry.env_var, raising=False)


def serve_params(*args: str) -> dict:
    """What ``chatroom serve ARGS`` would build its Config from (nothing is started)."""
    return main.commands["serve"].make_context("serve", list(args)).params


def serve(tmp_path: Path, *args: str, env: dict | None = None):
    return CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path), *args], env=env)


def below(entry: Setting) -> float:
    """The largest value of the setting's type just out of its range at the bottom."""
    return entry.min if entry.min_open else entry.min - 1


def sample(entry: Setting, tmp_path: Path) -> tuple[str, object]:
    """A valid value other than the default, as text and as the value it becomes."""
    if entry.type is bool:
        return "1", True
    if entry.parse is not None:
        return " a, b ,,", ("a", "b")
    if entry.allowed():
        choice = next(c for c in entry.allowed() if c != entry.default)
        return choice, choice
    if entry.type is Path:
        return str(tmp_path), tmp_path
    if entry.type in (int, float):
        value = entry.type((entry.min or 0) if entry.default is None else entry.default) + 1
        return str(value), value
    return "some text", "some text"


def test_the_defaults_of_serve_are_those_of_config():
    assert Config(**serve_params()) == Config()


@pytest.mark.parametrize("entry", settings(), ids=lambda s: s.name)
def test_every_setting_is_read_from_its_option_and_its_environment_variable(
    entry, tmp_path, monkeypatch
):
    text, value = sample(entry, tmp_path)
    flag = [entry.flag] if entry.type is bool else [entry.flag, text]
    assert serve_params(*flag)[entry.name] == value
    monkeypatch.setenv(entry.env_var, text)
    assert serve_params()[entry.name] == value


@pytest.mark.parametrize("entry", RANGED, ids=lambda s: s.name)
@pytest.mark.parametrize("source", ["option", "environment"])
def test_an_out_of_range_value_is_one_line_and_exit_2(entry, source, tmp_path):
    bad = [below(entry)] if entry.min is not None else []
    bad += [entry.max + 1] if entry.max is not None else []
    for value in map(entry.type, bad):
        if source == "option":
            result = serve(tmp_path, entry.flag, str(value))
        else:
            result = serve(tmp_path, env={entry.env_var: str(value)})
        assert result.exit_code == 2, result.output
        assert result.output == f"chatroom: {entry.name} must be {describe(entry)}, not {value}\n"


def describe(entry: Setting) -> str:
    if entry.min is not None and entry.max is not None:
        if entry.min_open:
            return f"more than {entry.min} and at most {entry.max}"
        return f"{entry.min}..{entry.max}"
    return f"more than {entry.min}" if entry.min_open else f"at least {entry.min}"


@pytest.mark.parametrize("entry", RANGED, ids=lambda s: s.name)
def test_config_checks_the_same_ranges_when_built_in_code(entry, tmp_path):
    lowest = entry.min + (1 if entry.min_open else 0)
    # The smallest values of the settings whose lower bound is another setting.
    related = {"max_frame_bytes": 1024, "ping_timeout": 0.5}
    Config(data_dir=tmp_path, **{**related, entry.name: lowest})  # accepted
    with pytest.raises(ConfigError, match=f"^{entry.name} must be"):
        Config(data_dir=tmp_path, **{entry.name: below(entry)})


def test_choices_are_checked_in_code_and_listed_in_help(tmp_path):
    with pytest.raises(ConfigError, match=r"^log_format must be one of text, json, not 'xml'$"):
        Config(data_dir=tmp_path, log_format="xml")
    result = serve(tmp_path, "--durability", "sometimes")
    assert result.exit_code == 2 and "'sometimes' is not one of 'fast', 'strict'" in result.output
    help_text = CliRunner().invoke(main, ["serve", "--help"]).output
    assert "--log-format [text|json]" in help_text and "--durability [fast|strict]" in help_text


def test_help_shows_the_ranges_config_checks():
    help_text = " ".join(CliRunner().invoke(main, ["serve", "--help"]).output.split())
    for shown in ("1<=x<=65535", "1<=x<=100000", "x>=1024", "x>0", "default: (0: off); 0<=x"):
        assert shown in help_text


def test_a_value_that_is_no_number_is_refused_by_click(tmp_path):
    result = serve(tmp_path, "--port", "http")
    assert result.exit_code == 2 and "'http' is not a valid integer" in result.output


def test_comma_separated_lists_drop_spaces_and_empty_parts(tmp_path):
    params = serve_params("--trusted-proxies", " 10.0.0.0/8, ::1 ,")
    assert Config(**params).trusted_proxies == ("10.0.0.0/8", "::1")
    origins = serve_params("--allowed-origins", "https://a.example/, http://b.example:8080")
    assert Config(**origins).allowed_origins == ("https://a.example", "http://b.example:8080")


def test_checks_across_settings_stay_in_config(tmp_path):
    result = serve(tmp_path, "--max-frame-bytes", "4096", "--max-queued-bytes", "2048")
    assert result.exit_code == 2
    assert result.output == "chatroom: max_queued_bytes must be >= max_frame_bytes\n"
    result = serve(tmp_path, "--ping-interval", "5", "--ping-timeout", "6")
    assert result.exit_code == 2
    assert result.output == "chatroom: ping_timeout must be at most ping_interval\n"
