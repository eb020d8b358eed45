"""SessionFileMiddleware: the pure ASGI layer that applies :class:`SessionFiles` in front of Gradio.

Split from :mod:`chat_app.access` (one concept per module; the scheme is described there):
this module holds the HTTP side (the browser cookie, session registration from queue/join
bodies and heartbeats, 404 for files of other sessions, 413 for uploads over the cap).
``chat_app.access`` re-exports it and :data:`COOKIE`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

from chat_app.session_files import SessionFiles

__all__ = ["COOKIE", "SessionFileMiddleware"]

#: Name of the browser cookie that ties requests to the sessions they opened.
COOKIE = "spex_browser"
_ANONYMOUS = ""  # requests without the cookie (a plain HTTP client)
_FILE_MARKERS = ("/gradio_api/file=", "/gradio_api/file/")


def _cookie(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header counts as none
                return _ANONYMOUS
            if COOKIE in jar:
                return jar[COOKIE].value
    return _ANONYMOUS


def _header(scope: dict[str, Any], key: bytes) -> str:
    for name, value in scope.get("headers", ()):
        if name == key:
            return value.decode("latin-1")
    return ""


def _set_cookie(scope: dict[str, Any], value: str) -> tuple[bytes, bytes]:
    secure = scope.get("scheme") == "https" or _header(scope, b"x-forwarded-proto").lower() == "https"
    # over HTTPS (e.g. a Space shown inside huggingface.co's frame) the cookie must be allowed
    # in a third-party frame: SameSite=None; Secure; Partitioned
    attrs = "; SameSite=None; Secure; Partitioned" if secure else "; SameSite=Lax"
    return b"set-cookie", f"{COOKIE}={value}; Path=/; HttpOnly{attrs}".encode("latin-1")


async def _plain(send: Callable[..., Any], status: int, text: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())] + extra})
    await send({"type": "http.response.body", "body": body})


class SessionFileMiddleware:
    """ASGI middleware: cookie on first contact, session registration, file checks, upload cap."""

    def __init__(self, app: Any, files: SessionFiles) -> None:
        self.app = app
        self.files = files

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        browser = _cookie(scope)
        extra: list[tuple[bytes, bytes]] = []
        known = browser  # the cookie this request came with ("" = none)
        if not browser:
            # issued now; a session opened by this very request is tied to it (behind Gradio's SSR proxy
            # the first page is not served from here, so the first queue/join may arrive without a cookie)
            browser = self.files.new_browser_id()
            extra.append(_set_cookie(scope, browser))
        path: str = scope.get("path", "")
        method = scope.get("method", "GET")

        if method in ("GET", "HEAD"):
            for marker in _FILE_MARKERS:
                at = path.find(marker)
                if at >= 0:
                    allowed = self.files.may_read(browser, path[at + len(marker):])
                    if allowed is False:
                        await _plain(send, 404, "Not found.", extra)
                        return
                    break
            if "/gradio_api/heartbeat/" in path:
                self.files.register(browser, path.rsplit("/", 1)[-1])

        if method == "POST" and path.endswith("/gradio_api/queue/join"):
            body, receive = await _buffer(receive)
            try:
                self.files.register(browser, str(json.loads(body or b"{}").get("session_hash") or ""))
            except (ValueError, AttributeError):
                pass  # Gradio answers the malformed body itself

        if method == "POST" and path.endswith("/gradio_api/upload"):
            await self._upload(scope, receive, send, known, extra)
            return

        await self.app(scope, receive, _with_headers(send, extra))

    async def _upload(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any],
                      browser: str, extra: list[tuple[bytes, bytes]]) -> None:
        try:
            incoming = int(_header(scope, b"content-length") or 0)
        except ValueError:
            incoming = 0
        reason = self.files.admit(browser, incoming)
        if reason:
            await _plain(send, 413, reason, extra)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        if start.get("status") == 200:
            try:
                paths = [str(p) for p in json.loads(body)]
            except (ValueError, TypeError):
                paths = []
            if self.files.record_uploads(browser, paths):
                await _plain(send, 413, self.files.admit(browser, 0) or
                             "Upload refused: the server's limit for unused uploads is reached; try again later.",
                             extra)
                return
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start.get("status", 500), "headers": headers + extra})
        await send({"type": "http.response.body", "body": body})


async def _buffer(receive: Callable[..., Any]) -> tuple[bytes, Callable[..., Any]]:
    """Read a request body and give back a ``receive`` that replays it."""
    parts, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts), receive
        parts.append(message.get("body", b""))
        more = message.get("more_body", False)
    body, sent = b"".join(parts), False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _with_headers(send: Callable[..., Any], extra: list[tuple[bytes, bytes]]) -> Callable[..., Any]:
    if not extra:
        return send

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = dict(message, headers=list(message.get("headers", [])) + extra)
        await send(message)

    return wrapped
