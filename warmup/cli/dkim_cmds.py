"""``warmup dkim keygen``, and the DKIM keys of ``check`` and ``run``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from warmup.adapters.dkim_keys import (
    DKIMKeyError,
    generate_key,
    load_signing_key,
    txt_record,
    write_key,
)
from warmup.cli.common import EXIT_CONFIG, err_console, fail, out_console
from warmup.config import Config
from warmup.core.auth.dkim import SigningKey, aligned_domain, from_domain, split_message

__all__ = ["dkim", "report_dkim", "signing_keys", "warn_if_unsigned"]


def signing_keys(config: Config) -> list[SigningKey]:
    """Every ``dkim.keys`` entry loaded (paths relative to the working
    directory); exit 2 naming the entry when one cannot be used."""
    keys: list[SigningKey] = []
    for index, spec in enumerate(config.settings.dkim.keys):
        try:
            keys.append(load_signing_key(spec, base=Path()))
        except DKIMKeyError as exc:
            fail(f"{config.path}: dkim.keys[{index}].key: {exc}", EXIT_CONFIG)
    return keys


def report_dkim(config: Config, console: Console) -> None:
    """``warmup check``'s DKIM lines: each key loaded, the domains covered."""
    dkim_settings = config.settings.dkim
    if not dkim_settings.keys:
        console.print(
            "  [yellow]warning[/]: no dkim.keys: mail goes out unsigned "
            "(`warmup dkim keygen` makes a key)"
        )
        return
    keys = signing_keys(config)
    for key in keys:
        console.print(
            f"  DKIM {key.algorithm} key {key.selector}._domainkey.{key.domain}: loaded"
        )
    domains = sorted({key.domain for key in keys})
    for domain in domains:
        if all(k.algorithm != "rsa-sha256" for k in keys if k.domain == domain):
            console.print(
                f"  [yellow]warning[/]: {domain} has only Ed25519 keys; many "
                "receivers verify RSA only: add an RSA key next to it"
            )
    console.print(
        f"  DKIM signs mail From {', '.join(domains)} and their subdomains; "
        f"other From domains: {dkim_settings.unsigned} (dkim.unsigned)"
    )


def warn_if_unsigned(config: Config, template: bytes) -> None:
    """`warmup enqueue`: say so when no key covers the template's From domain."""
    settings = config.settings.dkim
    if not settings.keys:
        return
    domain = from_domain(split_message(template)[0])
    if domain and aligned_domain(domain, (k.domain for k in settings.keys)):
        return
    what = f"From domain {domain}" if domain else "a template without From"
    effect = (
        "it will be held in the queue" if settings.unsigned == "hold" else "unsigned"
    )
    err_console().print(
        f"[yellow]warning[/]: no dkim.keys entry covers {what}: {effect} "
        "(dkim.unsigned)",
        highlight=False,
    )


@click.group()
def dkim() -> None:
    """DKIM signing keys."""


@dkim.command()
@click.argument("domain")
@click.option("--selector", required=True, help="The DKIM selector (s= tag).")
@click.option(
    "--algorithm",
    type=click.Choice(["rsa", "ed25519"]),
    default="rsa",
    show_default=True,
    help="Ed25519 (RFC 8463) only as a second signature next to RSA.",
)
@click.option("--bits", default=2048, show_default=True, type=click.IntRange(1024))
@click.option(
    "--out",
    "out_path",
    metavar="PATH",
    help="Where to write the PEM key (default: SELECTOR.DOMAIN.pem); never "
    "overwritten.",
)
def keygen(
    domain: str, selector: str, algorithm: str, bits: int, out_path: str | None
) -> None:
    """Write a new private key for DOMAIN (mode 0600) and print the DNS TXT
    record to publish at SELECTOR._domainkey.DOMAIN."""
    domain = domain.strip().rstrip(".").lower()
    path = Path(out_path or f"{selector}.{domain}.pem")
    try:
        key = generate_key(algorithm, bits)
        write_key(key, path)
    except DKIMKeyError as exc:
        fail(str(exc), EXIT_CONFIG)
    record = txt_record(key)
    # TXT strings hold at most 255 bytes: longer records are split into several.
    chunks = " ".join(f'"{record[i : i + 255]}"' for i in range(0, len(record), 255))
    console = out_console()
    console.print(f"wrote {path} (mode 0600)", highlight=False)
    console.print("publish this DNS record:", highlight=False)
    console.print(
        f"{selector}._domainkey.{domain}. IN TXT {chunks}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        "then add to config.yaml:\n  dkim:\n    keys:\n"
        f"      - {{domain: {domain}, selector: {selector}, key: {path}}}",
        highlight=False,
    )
