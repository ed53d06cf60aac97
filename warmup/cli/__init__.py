"""The ``warmup`` command line: the composition root."""

from warmup.cli.main import cli, main

__all__ = ["cli", "main"]
