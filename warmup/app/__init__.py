"""Async use cases built on the core and the ports in :mod:`warmup.app.ports`."""
