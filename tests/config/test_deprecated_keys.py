"""Renamed config keys stay accepted for one release as deprecated aliases: read as
the new key, with one warning line naming the file, the old dotted key and the new
one; `warmup check` (and every command that loads the config) prints it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from warmup.cli import cli
from warmup.config import EXAMPLE_CONFIG, load_config
from warmup.core.errors import ConfigError
from warmup.core.lanes.schedule import Advance, Rates

SCHEDULE = """\
isp: {isp}
match: {{domains: [{domain}]}}
ramp:
  - {{days: 1-3, per_hour: 60}}
{extra}"""
CONFIG = """\
database: sqlite:///x.db
ips:
  - {address: 127.0.0.2, helo: a.example.com}
"""


def _project(tmp_path: Path, config: str, gmail_extra: str = "") -> Path:
    directory = tmp_path / "schedules"
    directory.mkdir()
    (directory / "default.yaml").write_text(
        SCHEDULE.format(isp="default", domain="example.org", extra="")
    )
    (directory / "gmail.yaml").write_text(
        SCHEDULE.format(isp="gmail", domain="gmail.com", extra=gmail_extra)
    )
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG + config)
    return path


def test_thresholds_is_read_as_rates_with_one_warning(tmp_path: Path) -> None:
    path = _project(tmp_path, "thresholds:\n  min_sample: 7\n  complaint_rate: 0.01\n")
    config = load_config(path)
    assert config.settings.rates == Rates(min_sample=7, complaint_rate=0.01)
    assert config.schedules["gmail"].reactions.rates.min_sample == 7
    assert config.warnings == (
        f"{path}:4: warning: thresholds is deprecated and will be removed in the "
        "next release; use rates",
    )


def test_thresholds_and_rates_together_is_an_error(tmp_path: Path) -> None:
    path = _project(tmp_path, "thresholds: {min_sample: 7}\nrates: {min_sample: 9}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [str(issue) for issue in info.value.issues] == [
        f"{path}:4: thresholds: deprecated name of rates, also given here"
    ]


def test_a_bad_value_under_the_old_name_is_reported_at_its_line(
    tmp_path: Path,
) -> None:
    path = _project(tmp_path, "thresholds:\n  complaint_rate: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [str(issue) for issue in info.value.issues] == [
        f"{path}:5: rates.complaint_rate: must be between 0 and 1, got 3.0"
    ]


@pytest.mark.parametrize("section", ["thresholds", "rates"])
def test_config_deferral_rate_caps_every_advance_max_deferral_rate(
    tmp_path: Path, section: str
) -> None:
    path = _project(tmp_path, f"{section}:\n  deferral_rate: 0.04\n")
    config = load_config(path)
    for schedule in config.schedules.values():
        assert schedule.advance.max_deferral_rate == 0.04
    assert config.warnings[-1] == (
        f"{path}:5: warning: rates.deferral_rate is deprecated and will be removed "
        "in the next release; use advance.max_deferral_rate"
    )


def test_config_deferral_rate_above_the_advance_limit_changes_nothing(
    tmp_path: Path,
) -> None:
    # Before, the stricter of the two knobs decided; a looser old knob decided nothing.
    config = load_config(_project(tmp_path, "rates: {deferral_rate: 0.5}\n"))
    assert config.schedules["gmail"].advance == Advance()
    assert len(config.warnings) == 1


def test_schedule_deferral_rate_caps_its_own_advance(tmp_path: Path) -> None:
    extra = "advance: {max_deferral_rate: 0.08}\nreactions:\n  rates:\n"
    extra += "    deferral_rate: 0.03\n"
    path = _project(tmp_path, "rates: {deferral_rate: 0.06}\n", gmail_extra=extra)
    config = load_config(path)
    assert config.schedules["gmail"].advance.max_deferral_rate == 0.03
    assert config.schedules["default"].advance.max_deferral_rate == 0.06
    schedule_file = tmp_path / "schedules" / "gmail.yaml"
    assert (
        f"{schedule_file}:8: warning: reactions.rates.deferral_rate is deprecated "
        "and will be removed in the next release; use advance.max_deferral_rate"
    ) in config.warnings


def test_a_bad_deprecated_deferral_rate_is_an_error(tmp_path: Path) -> None:
    path = _project(tmp_path, "rates: {deferral_rate: lots}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [str(issue) for issue in info.value.issues] == [
        f"{path}:4: rates.deferral_rate: expected a number, got 'lots'"
    ]


def test_check_prints_the_warning_line_and_succeeds(tmp_path: Path) -> None:
    path = _project(tmp_path, "thresholds: {min_sample: 7}\n")
    result = CliRunner().invoke(cli, ["-c", str(path), "check"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert warnings == [
        f"{path}:4: warning: thresholds is deprecated and will be removed in the "
        "next release; use rates"
    ]


def test_the_shipped_files_use_no_deprecated_key() -> None:
    assert load_config(EXAMPLE_CONFIG).warnings == ()
