"""Shared by the end-to-end tests: loading a list through the real CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner

from warmup.cli import cli

TEMPLATE = b"From: shop@shop.example\nSubject: Hi {{ name }}\n\nHello {{ name }}\n"


async def enqueue_via_cli(
    directory: Path, config: Path, addresses: list[str], campaign: str = "e2e"
) -> str:
    """`warmup enqueue --json` (in a thread: the CLI runs its own event loop)."""
    listing = directory / f"{campaign}.csv"
    listing.write_text("email,name\n" + "".join(f"{a},N\n" for a in addresses))
    template = directory / "t.eml"
    template.write_bytes(TEMPLATE)
    args = [
        "-c",
        str(config),
        "enqueue",
        str(listing),
        "--template",
        str(template),
        "--campaign",
        campaign,
        "--json",
    ]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert result.exit_code == 0, result.output
    return result.output
