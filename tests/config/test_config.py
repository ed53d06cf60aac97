"""Config and schedule validation: every problem reported, with file, line, path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from warmup.config import EXAMPLE_CONFIG, load_config
from warmup.config.files import BUILTIN_SCHEDULES, read_config
from warmup.core.errors import ConfigError

GOOD_SCHEDULE = """\
isp: {isp}
match: {{domains: [{domain}]}}
window: {{start: "01:00", end: "05:00"}}
ramp:
  - {{days: 1-3, per_hour: 60}}
  - {{days: 4-6, per_hour: 120}}
"""
GOOD_CONFIG = """\
database: sqlite:///x.db
timezone: UTC
schedules: schedules/
ips:
  - {address: 127.0.0.2, helo: a.example.com}
"""


def _project(tmp_path: Path, config: str = GOOD_CONFIG, **schedules: str) -> Path:
    directory = tmp_path / "schedules"
    directory.mkdir()
    files = {
        "default": GOOD_SCHEDULE.format(isp="default", domain="example.org"),
        "gmail": GOOD_SCHEDULE.format(isp="gmail", domain="gmail.com"),
        **schedules,
    }
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text)
    path = tmp_path / "config.yaml"
    path.write_text(config)
    return path


def _issues(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(issue) for issue in info.value.issues]


def test_the_example_config_and_shipped_schedules_load() -> None:
    config = load_config(EXAMPLE_CONFIG)
    assert set(config.schedules) >= {
        "gmail",
        "microsoft",
        "yahoo",
        "apple",
        "docomo",
        "au",
        "softbank",
        "default",
    }
    assert config.settings.timezone == "Asia/Tokyo"
    assert config.schedules["gmail"].window.hours == 4


def test_gmail_reference_table() -> None:
    gmail = load_config(EXAMPLE_CONFIG).schedules["gmail"]
    expected = {
        1: 60,
        3: 60,
        4: 120,
        7: 180,
        10: 240,
        13: 360,
        16: 720,
        19: 1080,
        22: 1440,
        23: 1440,
    }
    assert {day: gmail.per_hour(day) for day in expected} == expected
    assert gmail.last_day == 23
    assert gmail.matches_domain("GMAIL.com")
    assert gmail.matches_mx("gmail-smtp-in.l.google.com.")


def test_three_mistakes_in_two_files_are_all_reported(tmp_path: Path) -> None:
    config = GOOD_CONFIG.replace("timezone: UTC", "timezone: Mars/Olympus") + (
        "delivery:\n  conections_per_lane: 3\n"
    )
    bad_gmail = GOOD_SCHEDULE.format(isp="gmail", domain="gmail.com").replace(
        "per_hour: 120", "per_hour: 30"
    )
    issues = _issues(_project(tmp_path, config, gmail=bad_gmail))
    assert len(issues) == 3
    assert any(
        "config.yaml:2: timezone: unknown time zone" in i and "'Mars/Olympus'" in i
        for i in issues
    )
    assert any(
        "config.yaml:7: delivery.conections_per_lane: unknown key "
        "(did you mean 'connections_per_lane'?)" in i
        for i in issues
    )
    assert any(
        "gmail.yaml:6: ramp[1].per_hour: must be >= 60 (previous step), got 30" in i
        for i in issues
    )


@pytest.mark.parametrize(
    ("ramp", "message"),
    [
        ("  - {days: 2-3, per_hour: 60}\n", "ramp[0].days: must start at day 1, got 2"),
        (
            "  - {days: 1-2, per_hour: 60}\n  - {days: 4, per_hour: 90}\n",
            "ramp[1].days: must start at day 3, got 4",
        ),
        ("  - {days: 1-2, per_hour: 0}\n", "ramp[0].per_hour: must be a positive"),
        ("  - {days: 3-1, per_hour: 5}\n", "ramp[0].days: expected a range"),
        ("  - {days: 1, per_hour: 5, burst: 9}\n", "ramp[0].burst: unknown key"),
        ("", "ramp: is required"),
    ],
)
def test_ramp_rules(tmp_path: Path, ramp: str, message: str) -> None:
    text = "isp: gmail\nramp:\n" + ramp if ramp else "isp: gmail\n"
    issues = _issues(_project(tmp_path, gmail=text))
    assert any(message in issue for issue in issues), issues


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ('{start: "01:00", end: "01:00"}', "window.end: must differ from start"),
        ("{start: 1:00, end: 05:00}", "in quotes"),
        ("{start: 01:00, end: 05:00}", None),
        ('{start: "25:00", end: "05:00"}', "window.start: expected a time"),
        ('{start: "01:00"}', "window.end: is required"),
    ],
)
def test_window_rules(tmp_path: Path, window: str, message: str | None) -> None:
    text = f"isp: gmail\nwindow: {window}\nramp:\n  - {{days: 1, per_hour: 5}}\n"
    path = _project(tmp_path, gmail=text)
    if message is None:  # unquoted 01:00 is a string to PyYAML: fine
        assert load_config(path).schedules["gmail"].window.hours == 4
        return
    issues = _issues(path)
    assert any(message in issue for issue in issues), issues


def test_cross_file_rules(tmp_path: Path) -> None:
    clash = GOOD_SCHEDULE.format(isp="yahoo", domain="gmail.com")
    misnamed = GOOD_SCHEDULE.format(isp="gmail", domain="aol.com")
    issues = _issues(_project(tmp_path, yahoo=clash, aol=misnamed))
    assert any(
        "match.domains[0]: domain 'gmail.com' is already claimed" in i for i in issues
    )
    assert any(
        "aol.yaml" in i and "isp: must match the file name 'aol'" in i for i in issues
    )


def test_a_default_schedule_is_required(tmp_path: Path) -> None:
    path = _project(tmp_path)
    (tmp_path / "schedules" / "default.yaml").unlink()
    assert any("no 'default' schedule" in issue for issue in _issues(path))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "ips: [{address: 999.1.1.1, helo: a.example}]\n",
            "ips[0].address: not an IP address, got '999.1.1.1'",
        ),
        ("ips: [{address: 127.0.0.2, helo: 'bad host'}]\n", "ips[0].helo: not a host"),
        (
            "ips:\n  - {address: 127.0.0.2, helo: a.b}\n"
            "  - {address: 127.0.0.2, helo: c.d}\n",
            "ips[1].address: listed twice",
        ),
        (
            "ips: []\ndelivery: {routes: {gmail: 'nohost:'}}\n",
            "delivery.routes.gmail: expected host:port",
        ),
        (
            "ips: []\ndelivery: {retry: {intervals: [15m, soon]}}\n",
            "delivery.retry.intervals[1]: expected a duration",
        ),
        ("ips: []\ndelivery: {tls: {starttls: maybe}}\n", "delivery.tls.starttls"),
        (
            "ips: []\ndelivery: {ip_lease: 1s}\n",
            "delivery.ip_lease: must be at least 3s",
        ),
        (
            "ips: []\nrelay: {allowed_networks: [10.0.0.0/33]}\n",
            "relay.allowed_networks[0]: not a network",
        ),
        (
            "ips: []\nrates: {complaint_rate: 3}\n",
            "rates.complaint_rate: must be between 0 and 1, got 3.0",
        ),
        ("ips: []\nbounces: {return_path: nobody}\n", "bounces.return_path"),
        ("ips: []\ndns: {confirm_after: soon}\n", "dns.confirm_after: expected a"),
        ("ips: []\ndns: {recheck_after: 0s}\n", "dns.recheck_after: must be longer"),
        ("ips: []\ndns: {confirm_afer: 1h}\n", "dns.confirm_afer"),
        ("ips: []\nips: []\n", "found duplicate key 'ips'"),
        ("ips: [\n", "bad YAML"),
        ("- just\n- a list\n", "expected a mapping"),
        ("", "ips: is required"),
    ],
)
def test_settings_rules(tmp_path: Path, config: str, message: str) -> None:
    issues = _issues(_project(tmp_path, config))
    assert any(message in issue for issue in issues), issues


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    assert _issues(tmp_path / "nope.yaml") == [
        f"{tmp_path / 'nope.yaml'}: file not found"
    ]


def _documented_keys(data: object, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            keys.add(path)
            keys |= _documented_keys(value, path)
    elif isinstance(data, list):
        for item in data:
            keys |= _documented_keys(item, f"{prefix}[]")
    return keys


def test_every_config_key_the_code_reads_is_documented_in_the_example() -> None:
    config, ctx = read_config(EXAMPLE_CONFIG)
    assert config is not None and not ctx.issues
    documented = _documented_keys(yaml.safe_load(EXAMPLE_CONFIG.read_text()))
    read = {key for key in ctx.known if not key.startswith("schedule:")}
    # Free-form maps (routes) document an example entry, not a fixed key.
    assert sorted(read - documented) == []


def test_every_schedule_key_the_code_reads_appears_in_gmail_yaml() -> None:
    _, ctx = read_config(EXAMPLE_CONFIG)
    documented = _documented_keys(
        yaml.safe_load((BUILTIN_SCHEDULES / "gmail.yaml").read_text())
    )
    read = {
        key.removeprefix("schedule:")
        for key in ctx.known
        if key.startswith("schedule:")
    }
    assert sorted(read - documented) == []


def test_relative_schedules_dir_is_relative_to_the_config(tmp_path: Path) -> None:
    shutil.copytree(BUILTIN_SCHEDULES, tmp_path / "rules")
    path = tmp_path / "c.yaml"
    path.write_text(GOOD_CONFIG.replace("schedules/", "rules/"))
    assert "gmail" in load_config(path).schedules
