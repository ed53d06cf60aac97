"""``warmup demo``: the main job with zero set-up."""

from __future__ import annotations

import click

__all__ = ["demo"]


@click.command()
def demo() -> None:
    """Warm IPs at simulated ISPs over simulated weeks (needs the engine)."""
    click.echo(
        "warmup demo needs the warm-up engine (dispatcher, simulated ISPs), which has "
        "not landed yet.\nWhat works today: warmup check, warmup schedule show gmail, "
        "warmup plan, warmup enqueue, warmup suppress."
    )
