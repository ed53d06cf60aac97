"""Reading config.yaml and the schedules directory from disk."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from warmup.config.reader import MAX_YAML_BYTES, Context
from warmup.config.schedules import check_schedule_set, parse_schedule
from warmup.config.settings import Config, Settings, parse_settings
from warmup.core.errors import ConfigError, ConfigIssue
from warmup.core.lanes.schedule import Schedule

__all__ = [
    "BUILTIN_SCHEDULES",
    "EXAMPLE_CONFIG",
    "load_config",
    "read_config",
    "resolve_config_path",
]

PACKAGE_DIR = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = PACKAGE_DIR / "config.example.yaml"
BUILTIN_SCHEDULES = PACKAGE_DIR / "schedules"


def resolve_config_path(option: str | None) -> Path:
    """``--config`` if given, else ./config.yaml, else the shipped example."""
    if option:
        return Path(option)
    local = Path("config.yaml")
    return local if local.exists() else EXAMPLE_CONFIG


def load_config(path: Path) -> Config:
    """Read and validate a config file and its schedules.

    Raises ConfigError listing every issue found.
    """
    config, ctx = read_config(path)
    if config is None or ctx.issues:
        raise ConfigError(ctx.issues)
    return config


def read_config(path: Path) -> tuple[Config | None, Context]:
    """Like :func:`load_config`, but hand back the context (issues, keys read)."""
    ctx = Context(file=str(path))
    text = _read(path, ctx.issues)
    if text is None:
        return None, ctx
    settings = parse_settings(text, ctx)
    if ctx.unreadable:
        return None, ctx
    directory = Path(settings.schedules_dir)
    if not directory.is_absolute():
        directory = path.parent / directory
    schedules = _load_schedule_dir(directory, settings, ctx)
    config = Config(
        path=path,
        settings=settings,
        schedules=schedules,
        warnings=tuple(ctx.deprecations),
    )
    return config, ctx


def _read(path: Path, issues: list[ConfigIssue]) -> str | None:
    """A config or schedule file's text; a special file (a FIFO, /dev/zero) or one
    over MAX_YAML_BYTES is refused unread, so it can neither hang nor flood us."""

    def refuse(message: str) -> None:
        issues.append(ConfigIssue(file=str(path), path="", message=message))

    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        refuse("file not found")
        return None
    except OSError as exc:
        refuse(f"cannot read: {exc.strerror}")
        return None
    with os.fdopen(fd, "rb") as file:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                refuse("not a regular file")
                return None
            data = file.read(MAX_YAML_BYTES + 1)
        except OSError as exc:
            refuse(f"cannot read: {exc.strerror}")
            return None
    if len(data) > MAX_YAML_BYTES:
        refuse(f"larger than {MAX_YAML_BYTES // 1024} KiB; not a config file")
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        refuse(f"cannot read: {exc}")
        return None


def _load_schedule_dir(
    directory: Path, settings: Settings, ctx: Context
) -> dict[str, Schedule]:
    if not directory.is_dir():
        ctx.issue("schedules", f"not a directory, got {str(directory)!r}")
        return {}
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        ctx.issue("schedules", f"no schedule files (*.yaml) in {str(directory)!r}")
        return {}
    schedules: list[Schedule] = []
    for file in files:
        text = _read(file, ctx.issues)
        if text is None:
            continue
        file_ctx = Context(file=str(file))
        schedule = parse_schedule(
            text,
            file=str(file),
            stem=file.stem,
            rates=settings.rates,
            deferral_cap=settings.deferral_cap,
            ctx=file_ctx,
        )
        ctx.issues.extend(file_ctx.issues)
        ctx.deprecations.extend(file_ctx.deprecations)
        ctx.known.update(f"schedule:{key}" for key in file_ctx.known)
        if schedule is not None:
            schedules.append(schedule)
    check_schedule_set(schedules, Context(file=str(directory), issues=ctx.issues))
    return {schedule.isp: schedule for schedule in schedules}
