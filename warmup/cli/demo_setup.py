"""Everything `warmup demo` builds: a temp project, simulated ISPs, a list."""

from __future__ import annotations

import random
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from warmup.adapters.db.store import SQLStore
from warmup.app.enqueue import EnqueueReport, enqueue_rows
from warmup.app.ports import TemplateRecord
from warmup.app.rows import SourceRow
from warmup.config import Config, load_config
from warmup.config.files import BUILTIN_SCHEDULES
from warmup.core.recipients.template import parse_template
from warmup.sim.population import DOMAINS, synthetic_rows

__all__ = [
    "COMPLAINT_SHARE",
    "DEMO_ISPS",
    "STRICTNESS",
    "DemoProject",
    "bounce_maildir",
    "database_url",
    "load_list",
    "make_project",
]

DEMO_ISPS = ("gmail", "microsoft", "yahoo", "apple")
# Microsoft is known as the strictest with new IPs: the demo's simulated Microsoft
# tolerates half of what its schedule asks, so throttles and backing off show.
STRICTNESS = {"microsoft": 0.5}
# Recipients who report the mail as spam (ARF), on top of the DSN share the
# simulated ISPs have anyway: 1 in 2,000, under Gmail's 0.3 % line on purpose.
COMPLAINT_SHARE = 0.0005
TEMPLATE = b"""\
From: Example Shop <news@shop.example>
To: {{ first_name }} <{{ email }}>
Subject: {{ first_name }}, our winter collection is here
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello {{ first_name }},

Our winter collection is here. Unsubscribe: https://shop.example/u?e={{ email }}
"""


@dataclass(slots=True)
class DemoProject:
    directory: Path
    config: Config
    config_path: Path


def bounce_maildir(root: Path) -> Path:
    """Where the simulated ISPs mail their DSNs and complaints."""
    return root / "bouncebox"


def database_url(root: Path) -> str:
    """The demo's SQLite database in its directory."""
    return f"sqlite:///{root / 'warmup.db'}"


def make_project(
    *, ips: int, ports: dict[str, int], directory: Path | None, scale: float = 1.0
) -> DemoProject:
    """A config and schedules (rates times ``scale``) in a temp dir: `warmup -c
    <it>` works afterwards."""
    root = directory or Path(tempfile.mkdtemp(prefix="warmup-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(BUILTIN_SCHEDULES, root / "schedules", dirs_exist_ok=True)
    _scale_schedule_files(root / "schedules", scale)
    lines = [
        "# Written by `warmup demo`: simulated ISPs on loopback, SQLite in this dir.",
        f"database: {database_url(root)}",
        "timezone: Asia/Tokyo",
        "schedules: schedules/",
        "ips:",
        *(
            f"  - {{address: 127.0.0.{2 + n}, helo: mta{n + 1}.demo.example}}"
            for n in range(ips)
        ),
        "delivery:",
        "  routes:",
        *(f"    {isp}: 127.0.0.1:{port}" for isp, port in ports.items()),
        "  connections_per_lane: 2",
        "  batch_size: 200",
        "  timeouts: {connect: 5s, command: 10s, data: 20s, dns: 2s}",
        "  # One process on a virtual clock: a heartbeat every 4 virtual hours,",
        "  # not on each 5-minute step (30 s by default).",
        "  ip_lease: 12h",
        "  tls: {starttls: off}",
        "bounces:",
        "  return_path: bounces@bounce.demo.example",
        f"  maildir: {bounce_maildir(root)}",
    ]
    path = root / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return DemoProject(directory=root, config=load_config(path), config_path=path)


def _scale_schedule_files(directory: Path, scale: float) -> None:
    """Ramp rates times ``scale`` (at least 1/h) in the demo's copies of the
    schedules, so `warmup status` and `warmup report` on the demo's config show
    the plan it really followed."""
    if scale == 1:
        return
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        steps = data.get("ramp") or []
        for step in steps:
            step["per_hour"] = max(1, round(step["per_hour"] * scale))
        after = data.get("after_ramp")
        if isinstance(after, dict) and "per_hour" in after and steps:
            after["per_hour"] = max(
                steps[-1]["per_hour"], round(after["per_hour"] * scale)
            )
        header = f"# Copied by `warmup demo` with every rate times {scale:g}.\n"
        body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        path.write_text(header + body, encoding="utf-8")


async def load_list(
    store: SQLStore, *, recipients: int, seed: int, now: datetime
) -> EnqueueReport:
    """The synthetic list, queued through the same code as `warmup enqueue`."""
    template = parse_template(TEMPLATE, source="demo template")
    record = TemplateRecord(
        name="demo.eml", sha256="demo-" + str(seed).zfill(59), content=TEMPLATE
    )
    campaign = await store.ensure_campaign("demo", record, now)
    isp_of = {domain: isp for domain, isp, _ in DOMAINS}.get
    rows = (
        SourceRow(line=n + 1, values=values)
        for n, values in enumerate(synthetic_rows(recipients, random.Random(seed), now))
    )
    return await enqueue_rows(
        store,
        campaign.id,
        rows,
        placeholders=template.placeholders,
        header_placeholders=template.header_placeholders,
        isp_of=isp_of,
        now=now,
        batch_size=5000,
    )
