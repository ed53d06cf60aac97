"""The one-click unsubscribe endpoint of ``warmup run`` (aiohttp's web server).

``POST /u/TOKEN`` with the form body ``List-Unsubscribe=One-Click`` (RFC 8058)
suppresses the address the token names and answers 200. ``GET /u/TOKEN`` only
shows a page with a button that makes that POST: link scanners and previews
follow GETs, so a GET never changes anything. A token that does not verify, or
names no recipient of ours, gets 404 and changes nothing. Bodies over
:data:`MAX_BODY_BYTES` get 413, other methods 405, unparsable HTTP 400 (aiohttp's
parser closes that connection; the server goes on).

Why aiohttp: a well-kept asyncio HTTP/1.1 server (llhttp parser) that bounds
request lines, header fields and bodies itself and answers malformed requests
with 400, so none of that is hand-written here; ``prometheus-client`` keeps its
own endpoint. aiohttp has no time limit on reading request headers: put the
endpoint behind the reverse proxy that ``unsubscribe.base_url`` names, which bounds
slow clients, rather than on the open internet.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from warmup.app.unsubscribe import Unsubscriber
from warmup.core.errors import StoreError, WarmupError
from warmup.core.recipients.unsubscribe import ONE_CLICK_BODY
from warmup.core.settings import UnsubscribeSettings

__all__ = [
    "BODY_TIMEOUT_SECONDS",
    "MAX_BODY_BYTES",
    "RUNNER_OPTIONS",
    "serving_unsubscribe",
    "unsubscribe_app",
]

logger = logging.getLogger(__name__)

#: The one-click body is 26 bytes; a browser's form POST is about as small.
MAX_BODY_BYTES = 1024
#: How the aiohttp server runs: short request lines and header fields (a token
#: is ~40 characters), idle keep-alive connections closed after 15 s, and the
#: unread rest of a refused body drained for at most 0.5 s, not aiohttp's 10 s.
RUNNER_OPTIONS: dict[str, Any] = {
    "access_log": None,  # the token in the path names a recipient
    "handle_signals": False,
    "max_line_size": 2048,
    "max_field_size": 4096,
    "keepalive_timeout": 15,
    "lingering_time": 0.5,
}
#: Seconds a client has to send the body once its headers are in.
BODY_TIMEOUT_SECONDS = 10.0
# Database work at once: a flood of requests waits here, not in the pool.
_CONCURRENT = 8
_FIELD, _VALUE = ONE_CLICK_BODY.split("=")
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; form-action 'self'",
}
_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body><p>{text}</p>{form}</body></html>
"""
_FORM = (
    '<form method="post">'
    '<input type="hidden" name="{field}" value="{value}">'
    '<button type="submit">Unsubscribe</button></form>'
)


def _page(status: int, title: str, text: str, form: str = "") -> web.Response:
    body = _PAGE.format(title=html.escape(title), text=html.escape(text), form=form)
    return web.Response(
        status=status, text=body, content_type="text/html", headers=_HEADERS
    )


def _closing(response: web.Response) -> web.Response:
    """Close after answering: the rest of the body is not worth reading."""
    response.force_close()
    return response


def unsubscribe_app(
    unsubscriber: Unsubscriber, *, body_timeout: float = BODY_TIMEOUT_SECONDS
) -> web.Application:
    """The aiohttp application: routes ``/u/{token}`` for GET (and HEAD) and POST.
    A body that does not arrive within ``body_timeout`` seconds gets 408."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    gate = asyncio.Semaphore(_CONCURRENT)

    async def confirm(request: web.Request) -> web.Response:
        if unsubscriber.check(request.match_info["token"]) is None:
            return _page(404, "Unknown link", "This unsubscribe link is not valid.")
        form = _FORM.format(field=_FIELD, value=_VALUE)
        return _page(200, "Unsubscribe", "Stop receiving these messages?", form=form)

    async def one_click(request: web.Request) -> web.Response:
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            return _closing(_page(413, "Too large", "Request body too large."))
        try:
            async with asyncio.timeout(body_timeout):
                form = await request.post()
        except TimeoutError:
            return _closing(_page(408, "Too slow", "The body did not arrive in time."))
        except (web.HTTPRequestEntityTooLarge, ValueError):
            return _closing(_page(413, "Too large", "Body too large or unreadable."))
        if form.get(_FIELD) != _VALUE:
            return _page(400, "Bad request", f"Expected the body {ONE_CLICK_BODY}.")
        try:
            async with gate:
                done = await unsubscriber.by_token(
                    request.match_info["token"], source="one-click"
                )
        except StoreError as exc:
            logger.error("unsubscribe: %s", exc)
            return _page(503, "Try again", "Please try again in a few minutes.")
        if done is None:
            return _page(404, "Unknown link", "This unsubscribe link is not valid.")
        return _page(200, "Unsubscribed", "You are unsubscribed.")

    app.router.add_get("/u/{token}", confirm)
    app.router.add_post("/u/{token}", one_click)
    return app


@asynccontextmanager
async def serving_unsubscribe(
    settings: UnsubscribeSettings, unsubscriber: Unsubscriber
) -> AsyncIterator[tuple[str, int] | None]:
    """Serve ``unsubscribe.listen`` while the block runs; yields the bound
    (host, port), or None when no ``listen`` is configured."""
    if settings.listen_host is None:
        yield None
        return
    runner = web.AppRunner(unsubscribe_app(unsubscriber), **RUNNER_OPTIONS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.listen_host, settings.listen_port)
        try:
            await site.start()
        except OSError as exc:
            raise WarmupError(
                f"cannot serve one-click unsubscribe on {settings.listen_host}:"
                f"{settings.listen_port} (unsubscribe.listen): {exc}"
            ) from exc
        host, port = runner.addresses[0][:2]
        logger.info("serving one-click unsubscribe on http://%s:%d/u/", host, port)
        yield str(host), int(port)
    finally:
        await runner.cleanup()
