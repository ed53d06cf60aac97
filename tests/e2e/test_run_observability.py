"""`warmup run` as a real process, watched from outside: its JSON log lines on
stderr, with the recipient masked, and its Prometheus endpoint during the run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import enqueue_via_cli
from warmup.testing.smtp import ScriptedSMTPServer

SCHEDULE = """\
isp: gmail
match: {domains: [gmail.com]}
ramp:
  - {days: 1-9, per_hour: 36000}
"""
DEFAULT = "isp: default\nramp:\n  - {days: 1, per_hour: 5}\n"
BLOCKED = "john.doe@gmail.com"
BLOCK_REPLY = f"550 5.7.1 <{BLOCKED}>: message rejected by policy"
LANE = {"ip": "127.0.0.2", "isp": "gmail"}


def _project(directory: Path, port: int) -> Path:
    (directory / "schedules").mkdir()
    (directory / "schedules" / "gmail.yaml").write_text(SCHEDULE)
    (directory / "schedules" / "default.yaml").write_text(DEFAULT)
    config = directory / "config.yaml"
    config.write_text(
        f"database: sqlite:///{directory / 'warmup.db'}\ntimezone: UTC\n"
        "schedules: schedules/\n"
        "ips:\n  - {address: 127.0.0.2, helo: mta.test}\n"
        f"delivery:\n  routes: {{gmail: '127.0.0.1:{port}'}}\n"
        "  timeouts: {connect: 5s, command: 5s, data: 5s}\n"
        "  tls: {starttls: 'off'}\n"
        "bounces: {return_path: bounces@bounce.test}\n"
        "metrics: {listen: '127.0.0.1:0', refresh: 0.2s}\n"
    )
    return config


class Stderr:
    """Collects a process's stderr lines as they come; waits for a matching one."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.lines.append(line.decode().rstrip("\n"))
            self._changed.set()
        self._changed.set()

    async def wait_for(
        self, match: Callable[[dict[str, Any]], bool], within: float = 60
    ) -> dict[str, Any]:
        async def scan() -> dict[str, Any]:
            seen = 0
            while True:  # ends when found, or by the timeout below
                for line in self.lines[seen:]:
                    entry = json.loads(line)
                    if match(entry):
                        return dict(entry)
                seen = len(self.lines)
                assert not self._task.done(), "\n".join(self.lines[-20:])
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(scan(), within)

    async def finish(self) -> list[str]:
        await asyncio.wait_for(self._task, 10)
        return self.lines


def _scrape(port: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.labels == LANE or (sample.labels.get("state") == "paused")
    }


async def _metrics_once_blocked(port: int) -> dict[str, float]:
    """Scrape until a refresh (every 0.2 s) has seen the block; at most 30 s."""
    samples: dict[str, float] = {}
    for _ in range(300):
        samples = await asyncio.to_thread(_scrape, port)
        if samples.get("warmup_lane_blocked_total"):
            return samples
        await asyncio.sleep(0.1)
    raise AssertionError(f"no block in the metrics: {samples}")


async def test_json_logs_mask_recipients_and_metrics_list_the_lane(
    tmp_path: Path,
) -> None:
    def reply(peer: str, command: str, argument: str) -> str | None:
        return BLOCK_REPLY if command == "RCPT" and argument == BLOCKED else None

    addresses = [f"user{i}@gmail.com" for i in range(4)] + [BLOCKED]
    async with ScriptedSMTPServer(reply_for=reply) as server:
        config = _project(tmp_path, server.port)
        await enqueue_via_cli(tmp_path, config, addresses)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "warmup", "--log-format", "json", "-c", str(config),
            "run", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "WARMUP_VERP_SECRET": "test-secret"},
        )  # fmt: skip
        assert process.stderr is not None
        stderr = Stderr(process.stderr)
        try:
            serving = await stderr.wait_for(lambda e: "metrics_port" in e)
            event = await stderr.wait_for(lambda e: "policy" in e["message"])
            samples = await _metrics_once_blocked(serving["metrics_port"])
        finally:
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 15)
        lines = await stderr.finish()
    assert code == 0, "\n".join(lines[-20:])
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert serving["level"] == "info" and serving["metrics_host"] == "127.0.0.1"
    assert event["logger"] == "warmup.app.outcome"
    assert "<j***@gmail.com>" in event["message"]
    assert not any("john.doe" in line for line in lines)
    assert samples["warmup_lane_sent_total"] == 5
    assert samples["warmup_lane_delivered_total"] == 4
    assert samples["warmup_lane_blocked_total"] == 1
    assert samples["warmup_lane_state"] == 1  # the lane's "paused" sample
    assert samples["warmup_lane_allowance_per_hour"] >= 0
